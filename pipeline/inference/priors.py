"""Separation with generative priors (seed 004): projected gradient descent on the latents of class generators.

Every class k of the dataset has a generator G_k (here: the VAE's frozen class decoder f_k, a magnitude
generator). For a mixture, the latents z_k of every class start at zero; each step is an Adam step on the seed's
objective (`prior_losses.objective`: how well Σ_k G_k(z_k) explains the mixture spectrogram, how little the
generated sources share structure, how well each frame's energy is carried) followed by the projection of each
z_k onto the generators' support: the box [−r, r]^D or the ball |z| ≤ r. No class labels are used: every
generator takes part, so each output is its class's estimate and no permutation search is needed. Batched over
mixtures and classes (all B·K latents in one tensor, each class's decoder run once per step); deterministic
(zero start, no sampling).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.inference.inverse import frozen
from pipeline.inference.prior_losses import Weights, objective
from pipeline.models.vae import NonNegativeVAE

PROJECTIONS = ("box", "ball")


@dataclass(frozen=True)
class PriorConfig:
    """steps of Adam at `learning_rate`, each followed by the projection (`box` or `ball`) of `radius`."""

    weights: Weights
    poolings: int = 3
    steps: int = 100
    learning_rate: float = 0.05
    projection: str = "box"
    radius: float = 3.0

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise ValueError(f"PriorConfig.projection = {self.projection!r}; expected one of {PROJECTIONS}")
        checks = {"poolings": 1 <= self.poolings <= 3, "steps": self.steps >= 0,
                  "learning_rate": self.learning_rate > 0, "radius": self.radius > 0}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"PriorConfig.{name} = {getattr(self, name)!r} is out of range")


@dataclass(frozen=True)
class PriorResult:
    """sources (B, K, T, F) generated at the final latents; latents (B, K, D); objective (B,) at the start
    (z = 0) and at the end."""

    sources: torch.Tensor
    latents: torch.Tensor
    initial: torch.Tensor
    final: torch.Tensor


def project(latents: torch.Tensor, projection: str, radius: float) -> torch.Tensor:
    """The nearest point of the box [−r, r]^D (`box`) or of the ball |z| ≤ r (`ball`) to each latent (..., D)."""
    if projection == "box":
        return latents.clamp(-radius, radius)
    if projection == "ball":
        norms = latents.norm(dim=-1, keepdim=True)
        return latents * (radius / norms.clamp_min(radius))
    raise ValueError(f"projection {projection!r}; expected one of {PROJECTIONS}")


def generate(model: NonNegativeVAE, latents: torch.Tensor) -> torch.Tensor:
    """Every class's generator on its latents: (B, K, D) -> (B, K, T, F) ≥ 0."""
    return model.decode_all(latents)


def separate_with_priors(model: NonNegativeVAE, magnitudes: torch.Tensor, config: PriorConfig) -> PriorResult:
    """PGD from z = 0 for mixtures (B, T, F) with every class generator of `model` (frozen, evaluation mode)."""
    shape = model.shape
    if magnitudes.dim() != 3 or magnitudes.shape[1:] != (shape.frames, shape.bins):
        raise ValueError(f"magnitudes must be (B, T={shape.frames}, F={shape.bins}) for this model; got "
                         f"{tuple(magnitudes.shape)}")
    if not bool(torch.isfinite(magnitudes).all()) or bool((magnitudes < 0).any()):
        raise ValueError("magnitudes must be finite and non-negative")
    param = next(model.parameters())
    target = magnitudes.detach().to(param.device, param.dtype)
    latents = torch.zeros(target.shape[0], shape.num_classes, shape.latent, device=param.device, dtype=param.dtype,
                          requires_grad=True)
    optimizer = torch.optim.Adam([latents], lr=config.learning_rate)
    with frozen(model), torch.enable_grad():
        with torch.no_grad():
            initial = objective(target, generate(model, latents), config.weights, config.poolings)["total"]
        for _ in range(config.steps):
            value = objective(target, generate(model, latents), config.weights, config.poolings)["total"]
            optimizer.zero_grad(set_to_none=True)
            value.sum().backward()  # a sum: each mixture gets its own gradient
            optimizer.step()
            with torch.no_grad():
                latents.copy_(project(latents, config.projection, config.radius))
        with torch.no_grad():
            sources = generate(model, latents)
            final = objective(target, sources, config.weights, config.poolings)["total"]
    return PriorResult(sources, latents.detach(), initial, final)
