"""Inverse inference: the variational auto-decoder (VAD) of method.md, "Inference" (§3.3, §3.5, eq. 13).

The encoder is dropped and the class decoders f_k are frozen (evaluation mode: batch norm uses its running
statistics, so every problem is independent of the others in its batch). For a mixture magnitude x (T, F) the
latent posteriors N(μ_k, σ_k²) start at random and Adam minimises

    D_GKL(x ‖ Σ_k h_k f_k(z_k)) + β Σ_{k active} KL(N(μ_k, σ_k²) ‖ N(0, I)),   z_k = μ_k + σ_k ε

with a fresh ε at every iteration (the AE ablation, `shape.variational == False`: z = μ and no KL term).

- **joint**: h = sigmoid(θ) ∈ (0, 1) is optimised with the latents, every class active; labels are h > 0.5 (at
  least the largest h).
- **exhaustive**: h is fixed to each candidate combination c ∈ {0,1}^K; only the active classes have latents;
  per mixture the combination with the lowest final objective (z = μ, plus the KL term) wins. Oracle labels are
  the case of one combination per mixture.

Batching: mixtures × combinations × restarts form one flat set of P problems, solved by ONE optimisation (split
into chunks of at most `max_problems` problems to bound memory). The latents of the active (problem, class) pairs
are one (N, D) tensor decoded class by class (`Pairs`); the loss is the SUM of the problems' objectives, so each
problem gets exactly its own gradient and Adam, being elementwise, treats the problems independently.

Randomness comes only from the `generator` argument: the initial μ of every pair of the whole problem set and
the seed of the noise stream are drawn from it up front, and each iteration's ε is drawn for the whole set and
indexed by the chunk, so the result does not depend on `max_problems`. Early stopping is per problem (a problem
whose objective has settled is frozen; the loop ends when all are), which keeps that independence too.
"""
from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from tqdm import tqdm

from pipeline.models import losses
from pipeline.models.vae import NonNegativeVAE, Pairs

log = logging.getLogger(__name__)

DEFAULT_MAX_PROBLEMS = 1024


@dataclass(frozen=True)
class InverseConfig:
    """Settings of the latent optimisation.

    tolerance: a problem stops when its objective over the last `window` iterations varies by less than
    `tolerance` relative to its latest value ((max − min) / |latest|); 0 disables early stopping.
    init_scale: μ ~ N(0, init_scale²); init_var: σ² at the start; h_init_logit: θ at the start (joint).
    """

    iterations: int = 200
    learning_rate: float = 0.05
    restarts: int = 1
    tolerance: float = 1e-4
    window: int = 20
    beta: float = 10.0
    init_scale: float = 1.0
    init_var: float = 1.0
    h_init_logit: float = 0.0

    def __post_init__(self) -> None:
        checks = {"iterations": self.iterations >= 0, "learning_rate": self.learning_rate > 0,
                  "restarts": self.restarts >= 1, "tolerance": self.tolerance >= 0, "window": self.window >= 1,
                  "beta": self.beta >= 0, "init_scale": self.init_scale >= 0, "init_var": self.init_var > 0,
                  "h_init_logit": math.isfinite(self.h_init_logit)}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"InverseConfig.{name} = {getattr(self, name)!r} is out of range")


@dataclass(frozen=True)
class InverseResult:
    """The chosen solution of every mixture.

    sources: (B, K, T, F) decoded magnitudes at z = μ times h (zeros for inactive classes), ≥ 0.
    weights: (B, K) h used (0/1 for exhaustive, sigmoid(θ) for joint).
    labels: (B, K) {0, 1} estimated classes.
    objective: (B,) final objective of the chosen solution (z = μ, plus β·KL).
    iterations: iterations run (the most over chunks; fewer than configured when early stopping ended it).
    """

    sources: torch.Tensor
    weights: torch.Tensor
    labels: torch.Tensor
    objective: torch.Tensor
    iterations: int


def all_combinations(num_classes: int, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """Every non-empty subset of K classes, or only the subsets with the given sizes, as (C, K) float 0/1.

    Order: by subset size (as given in `sizes`, else 1..K), then lexicographic in the class indices.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    sizes = list(range(1, num_classes + 1)) if sizes is None else list(sizes)
    bad = [size for size in sizes if not 1 <= size <= num_classes]
    if bad or not sizes:
        raise ValueError(f"subset sizes must be in 1..{num_classes} (and at least one), got {sizes}")
    rows = []
    for size in sizes:
        for subset in itertools.combinations(range(num_classes), size):
            row = [0.0] * num_classes
            for k in subset:
                row[k] = 1.0
            rows.append(row)
    return torch.tensor(rows)


def inverse_joint(model: NonNegativeVAE, magnitudes: torch.Tensor, config: InverseConfig,
                  generator: torch.Generator, max_problems: int = DEFAULT_MAX_PROBLEMS,
                  progress: bool = False) -> InverseResult:
    """Joint VAD: latents and relaxed weights h = sigmoid(θ) of every class, optimised together.

    magnitudes: (B, T, F) mixture magnitudes, T and F the model's. B × restarts problems.
    """
    _check_magnitudes(model, magnitudes)
    k = model.shape.num_classes
    combinations = torch.ones(magnitudes.shape[0], 1, k)
    return _solve(model, magnitudes, combinations, True, config, generator, max_problems, progress)


def inverse_exhaustive(model: NonNegativeVAE, magnitudes: torch.Tensor, combinations: torch.Tensor,
                       config: InverseConfig, generator: torch.Generator, max_problems: int = DEFAULT_MAX_PROBLEMS,
                       progress: bool = False) -> InverseResult:
    """Exhaustive VAD: h fixed to each candidate combination, the lowest final objective wins per mixture.

    magnitudes: (B, T, F); combinations: (C, K) 0/1 shared by every mixture, or (B, C, K) per mixture (oracle
    labels: (B, 1, K)); every combination needs at least one class. B × C × restarts problems.
    """
    _check_magnitudes(model, magnitudes)
    b, k = magnitudes.shape[0], model.shape.num_classes
    given = tuple(combinations.shape)
    if combinations.dim() == 2:
        combinations = combinations.unsqueeze(0).expand(b, -1, -1)
    if combinations.dim() != 3 or combinations.shape[0] != b or combinations.shape[2] != k \
            or combinations.shape[1] < 1:
        raise ValueError(f"combinations must be (C, K={k}) or (B={b}, C, K={k}) with C ≥ 1, "
                         f"got {given}")
    combinations = combinations.detach().to("cpu", torch.float32)
    if not bool(((combinations == 0) | (combinations == 1)).all()):
        raise ValueError("combinations must contain only 0 and 1")
    if not bool((combinations.sum(dim=-1) > 0).all()):
        raise ValueError("every combination needs at least one active class; got an all-zero row")
    return _solve(model, magnitudes, combinations, False, config, generator, max_problems, progress)


def _check_magnitudes(model: NonNegativeVAE, magnitudes: torch.Tensor) -> None:
    shape = model.shape
    if magnitudes.dim() != 3 or magnitudes.shape[0] < 1 or magnitudes.shape[1:] != (shape.frames, shape.bins):
        raise ValueError(f"magnitudes must be (B ≥ 1, T={shape.frames}, F={shape.bins}) for this model, "
                         f"got {tuple(magnitudes.shape)}")
    if not bool(torch.isfinite(magnitudes).all()) or bool((magnitudes < 0).any()):
        raise ValueError("magnitudes must be finite and non-negative")


@dataclass
class _ProblemSet:
    """The flat set of P problems (mixture-major, then combination, then restart) and its N active pairs."""

    mixture: torch.Tensor      # (P,) long: the mixture of each problem
    labels: torch.Tensor       # (P, K) 0/1 active classes (the fixed h of exhaustive)
    pairs: Pairs               # the N active pairs of all problems, class-grouped
    pair_index: torch.Tensor   # (P, K) long: row of each active pair in `pairs`, −1 where inactive


def _solve(model: NonNegativeVAE, magnitudes: torch.Tensor, combinations: torch.Tensor, joint: bool,
           config: InverseConfig, generator: torch.Generator, max_problems: int, progress: bool) -> InverseResult:
    """Solve every (mixture, combination, restart) problem; keep the best problem of each mixture."""
    if max_problems < 1:
        raise ValueError(f"max_problems must be at least 1, got {max_problems}")
    started = time.perf_counter()
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    x = magnitudes.detach().to(device, dtype)
    b, c, k = combinations.shape
    r, d = config.restarts, model.shape.latent
    labels = combinations.repeat_interleave(r, dim=1).reshape(b * c * r, k)
    pairs = Pairs.from_labels(labels)
    pair_index = torch.full((labels.shape[0], k), -1, dtype=torch.long)
    pair_index[pairs.mixture, pairs.classes] = torch.arange(pairs.mixture.shape[0])
    problems = _ProblemSet(torch.arange(b).repeat_interleave(c * r), labels, pairs, pair_index)
    n, p = pairs.mixture.shape[0], labels.shape[0]

    # Every random draw for the whole set happens here, before chunking.
    mu0 = config.init_scale * torch.randn(n, d, generator=generator, device=generator.device)
    noise_seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device).item())
    mu0 = mu0.to(device, dtype)

    mu = torch.empty(n, d, device=device, dtype=dtype)
    logvar = torch.full((n, d), math.log(config.init_var), device=device, dtype=dtype)
    theta = torch.full((p, k), config.h_init_logit, device=device, dtype=dtype)
    objective = torch.empty(p, device=device, dtype=dtype)
    iterations = 0
    with frozen(model), torch.enable_grad():
        for start in range(0, p, max_problems):
            stop = min(start + max_problems, p)
            iterations = max(iterations, _optimise_chunk(model, x, problems, start, stop, joint, config, mu0,
                                                         noise_seed, mu, logvar, theta, objective, progress))
        best = objective.view(b, c * r).argmin(dim=1) + torch.arange(b, device=device) * (c * r)   # (B,)
        best = best.cpu()
        chosen_labels = labels[best]                                                        # (B, K)
        weights = torch.sigmoid(theta[best]) if joint else chosen_labels.to(device, dtype)
        sources = _decode_chosen(model, chosen_labels, pair_index[best], mu, weights, max_problems)
    if joint:
        estimated = (weights > 0.5).float()
        estimated[torch.arange(b), weights.argmax(dim=1)] = 1.0
    else:
        estimated = chosen_labels.to(device, dtype)
    log.info("inverse %s: %d mixtures, %d problems, %d pairs, %d iterations, %.2f s",
             "joint" if joint else "exhaustive", b, p, n, iterations, time.perf_counter() - started)
    return InverseResult(sources=sources, weights=weights.detach(), labels=estimated,
                         objective=objective[best.to(device)].detach(), iterations=iterations)


def _optimise_chunk(model: NonNegativeVAE, x: torch.Tensor, problems: _ProblemSet, start: int, stop: int,
                    joint: bool, config: InverseConfig, mu0: torch.Tensor, noise_seed: int, mu_out: torch.Tensor,
                    logvar_out: torch.Tensor, theta_out: torch.Tensor, objective_out: torch.Tensor,
                    progress: bool) -> int:
    """Optimise problems [start, stop); write their final μ, log σ², θ and objective. Returns iterations run."""
    device, dtype = x.device, x.dtype
    variational = model.shape.variational
    count = stop - start
    labels = problems.labels[start:stop]
    pairs = Pairs.from_labels(labels)
    rows = problems.pair_index[start + pairs.mixture, pairs.classes]          # (Nc,) rows in the whole set
    whole = rows.shape[0] == problems.pairs.mixture.shape[0]                 # one chunk: rows are 0..N−1
    pairs = Pairs(pairs.mixture.to(device), pairs.classes.to(device), pairs.counts)
    rows = rows.to(device)
    target = x[problems.mixture[start:stop].to(device)]                       # (Pc, T, F)

    mu = mu0[rows].clone().requires_grad_(True)
    logvar = logvar_out[rows].clone().requires_grad_(variational)
    theta = theta_out[start:stop].clone().requires_grad_(joint)
    params = [mu] + ([logvar] if variational else []) + ([theta] if joint else [])
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    noise = torch.Generator(device=device).manual_seed(noise_seed)
    history = torch.empty(config.window + 1, count, device=device, dtype=dtype)
    settled = torch.zeros(count, dtype=torch.bool, device=device)
    total_pairs, latent = problems.pairs.mixture.shape[0], mu.shape[1]
    done, any_settled = 0, False
    for it in tqdm(range(config.iterations), desc="inverse", unit="it", disable=not progress, leave=False):
        if variational:
            eps = torch.randn(total_pairs, latent, generator=noise, device=device, dtype=dtype)
            z = mu + torch.exp(0.5 * logvar) * (eps if whole else eps[rows])
        else:
            z = mu
        value = _objective(model, target, pairs, z, mu, logvar if variational else None,
                           torch.sigmoid(theta) if joint else None, config.beta)
        optimizer.zero_grad(set_to_none=True)
        value.sum().backward()  # a SUM: every problem gets exactly its own gradient
        frozen_pairs = settled[pairs.mixture] if any_settled else None
        kept = [(tensor, mask, tensor.detach()[mask].clone())
                for tensor, mask in ((mu, frozen_pairs), (logvar, frozen_pairs), (theta, settled))] \
            if any_settled else []
        optimizer.step()
        with torch.no_grad():
            for tensor, mask, saved in kept:  # settled problems stay where they stopped
                tensor[mask] = saved
        done = it + 1
        history[it % history.shape[0]] = value.detach()
        if config.tolerance > 0 and it >= config.window:
            spread = history.max(dim=0).values - history.min(dim=0).values
            settled |= spread <= config.tolerance * value.detach().abs().clamp_min(1e-12)
            if bool(settled.all()):
                break
            any_settled = bool(settled.any())
    with torch.no_grad():
        final = _objective(model, target, pairs, mu, mu, logvar if variational else None,
                           torch.sigmoid(theta) if joint else None, config.beta)
        mu_out[rows] = mu.detach()
        logvar_out[rows] = logvar.detach()
        theta_out[start:stop] = theta.detach()
        objective_out[start:stop] = final
    return done


def _objective(model: NonNegativeVAE, target: torch.Tensor, pairs: Pairs, z: torch.Tensor, mu: torch.Tensor,
               logvar: torch.Tensor | None, weights: torch.Tensor | None, beta: float) -> torch.Tensor:
    """Per-problem objective (P,): D_GKL(x ‖ Σ h f(z)) + β Σ KL over the active pairs.

    target: (P, T, F); z, mu, logvar: (N, D) of the class-grouped pairs; weights: (P, K) h, or None for h = 1.
    """
    decoded = model.decode(z, pairs)                                           # (N, T, F)
    if weights is not None:
        decoded = decoded * weights[pairs.mixture, pairs.classes][:, None, None]
    value = losses.generalized_kl(target, pairs.sum_per_mixture(decoded, target.shape[0]))
    if logvar is not None:
        value = value + beta * pairs.sum_per_mixture(losses.gaussian_kl(mu, logvar), target.shape[0])
    return value


@torch.no_grad()
def _decode_chosen(model: NonNegativeVAE, labels: torch.Tensor, pair_index: torch.Tensor, mu: torch.Tensor,
                   weights: torch.Tensor, max_problems: int) -> torch.Tensor:
    """Sources (B, K, T, F) = h · f_k(μ_k) of the chosen problems (labels, pair_index: (B, K)), zeros elsewhere."""
    b, k = labels.shape
    shape = model.shape
    sources = mu.new_zeros(b, k, shape.frames, shape.bins)
    for start in range(0, b, max_problems):
        stop = min(start + max_problems, b)
        pairs = Pairs.from_labels(labels[start:stop])
        z = mu[pair_index[start + pairs.mixture, pairs.classes].to(mu.device)]
        mixture, classes = (pairs.mixture + start).to(mu.device), pairs.classes.to(mu.device)
        decoded = model.decode(z, Pairs(pairs.mixture.to(mu.device), classes, pairs.counts))
        sources[mixture, classes] = decoded * weights[mixture, classes][:, None, None]
    return sources


@contextmanager
def frozen(model: torch.nn.Module):
    """Evaluation mode and no weight gradients inside; every module's mode and every requires_grad restored."""
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    model.eval()
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode
        for param, flag in flags:
            param.requires_grad_(flag)
