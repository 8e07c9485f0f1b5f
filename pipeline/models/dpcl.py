"""Partition-based separators of seed 003 (D'Amato 2018): deep clustering (DPCL), source contrastive estimation
(SCE) and end-to-end deep clustering (DPCL++). They learn which bin belongs to which source, not which class.

The network: a stacked BLSTM over the mixture's log-magnitude frames (standardised per mixture) and a linear
projection to an E-dimensional embedding per time-frequency bin, unit-normed (`embed`: (B, T, F) -> (B, T, F, E)).
- DPCL learns V so that VVᵀ matches the ideal binary affinity YYᵀ (`affinity_loss`, never forming TF × TF).
- SCE adds one learned vector per training source identity (here: per class of the dataset) and pulls each bin's
  embedding towards its dominant source's vector, away from the others' (`contrastive_loss`, with negative
  sampling over the identities not dominant in the bin).
- DANet (`attractor_masks`, the deep attractor network the seed names beside them): each source's attractor is
  the mean embedding of the bins it dominates (training: the ideal binary mask; inference: the k-means
  centroids), and its soft mask is the softmax over sources of embedding · attractor; trained with the seed's
  L2 between the ideal-binary-masked and the soft-masked mixture, Σ_s ‖X ⊙ (m_s − m̃_s)‖² (the attractors come
  in the order of the ideal masks, so no permutation is needed).
- DPCL++ (`enhanced_masks`): soft k-means (stiffness β) on the embeddings, then the enhancement BLSTM over
  [separated, mixture] log-magnitudes of each cluster, whose outputs a softmax over clusters turns into soft
  masks; trained with a permutation-invariant L2 loss (`permutation_invariant_l2`), fine-tuned from DPCL.
Silent bins (more than `silence_db` below the mixture's loudest bin) are left out of every loss and of k-means.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.models import kmeans
from pipeline.models.checkpoint import save_atomic, versions
from pipeline.models.network_file import load_network

DPCL_FORMAT = 1                  # the model file's layout: {"format", "kind": "dpcl", "shape", "state_dict", ...}
SYSTEMS = ("dpcl", "sce", "danet", "dpcl++")
LOG_FLOOR = 1e-6                 # added to magnitudes before the log


def variant_name(dataset: str, system: str) -> str:
    """`d1` + `dpcl++` -> `d1-dpcl++` (model file info, training reports, the evaluation rows' `variant`)."""
    return f"{dataset}-{system}"


def model_file(models_dir: str | Path, system: str) -> Path:
    """Where `train_dpcl@<dataset>` writes `system`: `<models_dir>/dpcl/<system>/model.pt`."""
    return Path(models_dir) / "dpcl" / system / "model.pt"


def cluster_slots(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per mixture, its present classes first (in class order): labels (B, K) -> (order (B, C), active (B, C)),
    C the most sources of any mixture of the batch."""
    count = (labels > 0.5).sum(dim=1)
    order = torch.argsort((labels < 0.5).to(torch.int8), dim=1, stable=True)[:, :int(count.max())]
    active = torch.arange(order.shape[1], device=labels.device) < count.unsqueeze(1)
    return order, active


@dataclass(frozen=True)
class DpclShape:
    """The network's sizes: which system, frequency bins, BLSTM units per direction and layers, embedding size;
    SCE: identities (learned source vectors); DPCL++: enhancement BLSTM units per direction and layers."""

    system: str
    bins: int
    hidden: int
    layers: int
    embedding: int
    identities: int = 0
    enhance_hidden: int = 0
    enhance_layers: int = 0

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise ValueError(f"system {self.system!r}; expected one of {SYSTEMS}")
        if min(self.bins, self.hidden, self.layers, self.embedding) < 1:
            raise ValueError(f"bins {self.bins}, hidden {self.hidden}, layers {self.layers}, embedding "
                             f"{self.embedding}: expected >= 1")
        if (self.system == "sce") != (self.identities >= 2):
            raise ValueError(f"{self.system}: {self.identities} identities; SCE needs >= 2, the others none")
        if (self.system == "dpcl++") != (min(self.enhance_hidden, self.enhance_layers) >= 1):
            raise ValueError(f"{self.system}: enhancement {self.enhance_hidden} x {self.enhance_layers}; DPCL++ "
                             "needs both >= 1, the others none")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def build(self) -> "EmbeddingSeparator":
        """A freshly initialised network of this shape (from the global RNG; see train.setup.build_model)."""
        return EmbeddingSeparator(self)


def log_features(magnitudes: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """log(|X| + floor), standardised by the mean and deviation over all bins of `reference` (default: the same
    magnitudes), per item: (..., T, F) -> (..., T, F)."""
    logs = torch.log(magnitudes + LOG_FLOOR)
    base = logs if reference is None else torch.log(reference + LOG_FLOOR)
    mean = base.mean(dim=(-2, -1), keepdim=True)
    std = base.std(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
    return (logs - mean) / std


def silence_weights(magnitudes: torch.Tensor, silence_db: float) -> torch.Tensor:
    """1 for bins within `silence_db` (negative, e.g. −40) of the mixture's loudest bin, else 0: (B, T, F)."""
    peak = magnitudes.amax(dim=(-2, -1), keepdim=True)
    return (magnitudes > peak * 10 ** (silence_db / 20)).to(magnitudes.dtype)


class EmbeddingSeparator(nn.Module):
    """BLSTM embeddings (DPCL, SCE) with SCE's identity vectors or DPCL++'s enhancement network."""

    def __init__(self, shape: DpclShape):
        super().__init__()
        self.shape = shape
        self.blstm = nn.LSTM(shape.bins, shape.hidden, shape.layers, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * shape.hidden, shape.bins * shape.embedding)
        if shape.system == "sce":
            self.identities = nn.Parameter(torch.randn(shape.identities, shape.embedding) / shape.embedding ** 0.5)
        if shape.system == "dpcl++":
            self.enhance = nn.LSTM(2 * shape.bins, shape.enhance_hidden, shape.enhance_layers, batch_first=True,
                                   bidirectional=True)
            self.enhance_out = nn.Linear(2 * shape.enhance_hidden, shape.bins)

    def embed(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """Mixture magnitudes (B, T, F) -> unit-norm embeddings (B, T, F, E)."""
        if magnitudes.dim() != 3 or magnitudes.shape[-1] != self.shape.bins:
            raise ValueError(f"expected mixture magnitudes (B, T, {self.shape.bins}), got {tuple(magnitudes.shape)}")
        hidden = self.blstm(log_features(magnitudes))[0]
        batch, frames = magnitudes.shape[:2]
        embeddings = self.project(hidden).view(batch, frames, self.shape.bins, self.shape.embedding)
        return nn.functional.normalize(embeddings, dim=-1)

    @staticmethod
    def attractor_masks(embeddings: torch.Tensor, attractors: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """DANet's soft masks (B, C, T, F): softmax over the active clusters of v_tf · a_c, embeddings
        (B, T, F, E), attractors (B, C, E), active (B, C); 0 for inactive clusters."""
        logits = torch.einsum("btfe,bce->bctf", embeddings, attractors)
        logits = logits.masked_fill(~active[:, :, None, None], float("-inf"))
        return torch.softmax(logits, dim=1)

    def enhanced_masks(self, magnitudes: torch.Tensor, embeddings: torch.Tensor, weights: torch.Tensor,
                       active: torch.Tensor, beta: float, soft_steps: int, hard_steps: int,
                       generator: torch.Generator) -> torch.Tensor:
        """DPCL++'s soft masks (B, C, T, F) (they sum to 1 over the active clusters, 0 for inactive ones):
        hard k-means (no gradient) gives the start, `soft_steps` of soft k-means (β) the separated magnitudes
        γ_c ⊙ X, and the enhancement BLSTM over [log γ_c X, log X] the logits z_c; softmax over clusters."""
        batch, frames, bins = magnitudes.shape
        clusters = active.shape[1]
        points = embeddings.reshape(batch, frames * bins, -1)
        _, start = kmeans.kmeans(points.detach(), weights.reshape(batch, -1), active, hard_steps, 1, generator)
        gamma, _ = kmeans.soft_kmeans(points, weights.reshape(batch, -1), start, active, beta, soft_steps)
        separated = gamma.transpose(1, 2).reshape(batch, clusters, frames, bins) * magnitudes.unsqueeze(1)
        mixture = magnitudes.unsqueeze(1).expand_as(separated)
        inputs = torch.cat([log_features(separated, mixture), log_features(mixture)], dim=-1)
        hidden = self.enhance(inputs.reshape(batch * clusters, frames, 2 * bins))[0]
        logits = self.enhance_out(hidden).view(batch, clusters, frames, bins)
        logits = logits.masked_fill(~active[:, :, None, None], float("-inf"))
        return torch.softmax(logits, dim=1)


def ideal_binary_mask(sources: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One-hot of the dominant present source per bin: source magnitudes (B, K, T, F), labels (B, K) -> (B, T, F, K)
    (absent classes never dominate)."""
    if sources.dim() != 4 or labels.shape != sources.shape[:2]:
        raise ValueError(f"ideal_binary_mask: sources {tuple(sources.shape)} must be (B, K, T, F) and labels "
                         f"{tuple(labels.shape)} (B, K)")
    masked = sources.masked_fill(labels[:, :, None, None] < 0.5, float("-inf"))
    return nn.functional.one_hot(masked.argmax(dim=1), sources.shape[1]).to(sources.dtype)


def attractor_targets(embeddings: torch.Tensor, assignment: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Attractors (B, C, E): the weighted mean embedding of the bins assigned to each cluster, embeddings
    (B, N, E), assignment (B, N, C) one-hot (zeros for a cluster no bin belongs to), weights (B, N)."""
    weighted = assignment * weights.unsqueeze(-1)                                     # (B, N, C)
    return (weighted.transpose(1, 2) @ embeddings) / weighted.sum(dim=1).clamp_min(1e-8).unsqueeze(-1)


def affinity_loss(embeddings: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """‖ŴVVᵀŴ − ŴYYᵀŴ‖²_F / N² per mixture, N the non-silent bins, in its low-rank form
    ‖VᵀV‖² − 2‖VᵀY‖² + ‖YᵀY‖² (V, Y with silent rows zeroed): embeddings (B, N, E), targets (B, N, K) one-hot,
    weights (B, N) {0, 1} -> (B,)."""
    if embeddings.dim() != 3 or targets.shape[:2] != embeddings.shape[:2] or weights.shape != embeddings.shape[:2]:
        raise ValueError(f"affinity_loss: embeddings {tuple(embeddings.shape)} (B, N, E), targets "
                         f"{tuple(targets.shape)} (B, N, K) and weights {tuple(weights.shape)} (B, N)")
    v, y = embeddings * weights.unsqueeze(-1), targets * weights.unsqueeze(-1)
    vv, vy, yy = v.transpose(1, 2) @ v, v.transpose(1, 2) @ y, y.transpose(1, 2) @ y
    total = vv.square().sum(dim=(1, 2)) - 2 * vy.square().sum(dim=(1, 2)) + yy.square().sum(dim=(1, 2))
    return total / weights.sum(dim=1).clamp_min(1).square()


def contrastive_loss(embeddings: torch.Tensor, identities: torch.Tensor, dominant: torch.Tensor,
                     present: torch.Tensor, weights: torch.Tensor, negatives: int, negative_weight: float,
                     generator: torch.Generator | None) -> torch.Tensor:
    """SCE with negative sampling (seed 003, eq. of section 4.4), mean over the non-silent bins per mixture:

        −(1/M) Σ_{s present} log σ(Y_s v·o_s) − μ (1/K) Σ_{k=1..K} log σ(−v·o_{n_k})

    with Y_s = +1 for the bin's dominant source and −1 for the other M − 1 present ones, and n_k drawn uniformly
    from the identities other than the dominant one (K = `negatives`, μ = `negative_weight`). Without a
    generator (validation) the sampled term is replaced by its expectation (the mean over every non-dominant
    identity), so it is deterministic. embeddings (B, N, E), identities (S, E), dominant (B, N) long,
    present (B, S) {0, 1}, weights (B, N) {0, 1} -> (B,)."""
    scores = embeddings @ identities.T                                                # v·o_s (B, N, S)
    count = identities.shape[0]
    sign = 2 * nn.functional.one_hot(dominant, count).to(scores.dtype) - 1          # Y (B, N, S)
    present = present.to(scores.dtype).unsqueeze(1)
    positive = -(nn.functional.logsigmoid(sign * scores) * present).sum(-1) / present.sum(-1).clamp_min(1)
    if negatives > 0 and negative_weight > 0:
        if generator is None:
            others = 1 - nn.functional.one_hot(dominant, count).to(scores.dtype)
            negative = -(nn.functional.logsigmoid(-scores) * others).sum(-1) / (count - 1)
        else:
            draw = torch.randint(0, count - 1, (*dominant.shape, negatives), generator=generator,
                                 device=dominant.device)
            draw = draw + (draw >= dominant.unsqueeze(-1)).long()                    # skip the dominant one
            negative = -nn.functional.logsigmoid(-torch.gather(scores, 2, draw)).mean(-1)
        positive = positive + negative_weight * negative
    return (positive * weights).sum(1) / weights.sum(1).clamp_min(1)


def permutation_invariant_l2(estimates: torch.Tensor, targets: torch.Tensor, active: torch.Tensor
                             ) -> torch.Tensor:
    """min over assignments π of the active clusters to the active targets of Σ_c mean_tf (X_c − X̃_π(c))²:
    estimates, targets (B, C, T, F), active (B, C) (the first M of C per mixture) -> (B,)."""
    if estimates.shape != targets.shape or estimates.dim() != 4 or active.shape != estimates.shape[:2]:
        raise ValueError(f"permutation_invariant_l2: estimates {tuple(estimates.shape)}, targets "
                         f"{tuple(targets.shape)} (B, C, T, F), active {tuple(active.shape)} (B, C)")
    clusters = estimates.shape[1]
    pairwise = (targets.unsqueeze(2) - estimates.unsqueeze(1)).square().mean(dim=(-2, -1))   # (B, C_t, C_e)
    allowed = active.unsqueeze(2) == active.unsqueeze(1)          # active targets only to active estimates
    pairwise = pairwise.masked_fill(~allowed, float("inf"))
    perms = torch.tensor(list(itertools.permutations(range(clusters))), device=estimates.device)  # (P, C)
    costs = pairwise[:, torch.arange(clusters, device=estimates.device), perms]      # (B, P, C)
    return costs.sum(-1).min(dim=1).values


def save_dpcl(path: str | Path, model: EmbeddingSeparator, state_dict: dict[str, torch.Tensor],
              classes: list[str], info: dict[str, Any]) -> None:
    """Write a DPCL / SCE / DPCL++ model file (atomically): weights on CPU, shape, classes and `info`."""
    save_atomic(path, {"format": DPCL_FORMAT, "kind": "dpcl", "shape": model.shape.as_dict(),
                       "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
                       "classes": list(classes), "versions": versions(), **info})


def load_dpcl(path: str | Path, device: torch.device | str = "cpu") -> tuple[EmbeddingSeparator, dict[str, Any]]:
    """A model file of this module -> (network in evaluation mode on `device`, its info); ValueError naming the
    file for anything else."""
    return load_network(path, "dpcl", DPCL_FORMAT, "DPCL/SCE/DPCL++",
                        lambda shape: EmbeddingSeparator(DpclShape(**shape)), device)
