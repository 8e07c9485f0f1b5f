"""The four terms of seed 004's objective (Narayanaswamy et al. 2020, as its published code computes them).

Spectrograms are (..., T, F) magnitudes; every term returns one value per leading index (per mixture). The
"resolutions" of a spectrogram are itself and `poolings` successive 2 × 2 average poolings (an odd edge is
averaged over the cells it has, as TensorFlow's `avg_pool(..., padding='SAME')` of the seed does).

- `multires_spectral` (L_ms): Σ_levels Σ_{t,f} |A_l − B_l|, the L1 distance at every resolution.
- `exclusion` (the correlation penalty behind L_sd and L_mc; Zhang et al. 2018's exclusion loss): at every
  resolution and along time and frequency, the gradients g_a, g_b of the two spectrograms are squashed,
  ψ_a = tanh(g_a / 2), ψ_b = tanh(α g_b / 2) with α = 2·mean|g_a| / mean|g_b|, and their overlap
  (mean ψ_a² ψ_b²)^(1/4) is averaged over the 2 directions and the levels. 0 when the two never change at the
  same place; larger the more their structures coincide.
- `source_dissimilarity` (L_sd): the exclusion of every pair of generated sources (i < j), summed.
- `mixture_correlation` (L_mc): minus the exclusion between the synthetic and the real mixture.
- `frequency_continuity` (L_fc): Σ_t (Σ_f log(1 + M) + ε F) / (Σ_f log(1 + M̂) + ε F), real M over synthetic M̂
  per frame (the seed's code; its paper prints another formula). Smaller when the synthetic mixture carries the
  energy of every frame.

The seed applies L_ms, L_sd and L_mc to log(1 + |STFT|) and L_fc to |STFT|; `objective` does the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-6      # the seed's ε in the frequency-continuity ratio (per cell)
TINY = 1e-12    # keeps ratios and fractional powers finite where a spectrogram is flat


def pyramid(spectrogram: torch.Tensor, poolings: int) -> list[torch.Tensor]:
    """(..., T, F) -> [it, pooled once, ..., pooled `poolings` times] by 2 × 2 averages (ceil at odd edges)."""
    if spectrogram.dim() < 2:
        raise ValueError(f"a spectrogram needs (..., T, F); got shape {tuple(spectrogram.shape)}")
    lead, (frames, bins) = spectrogram.shape[:-2], spectrogram.shape[-2:]
    level = spectrogram.reshape(-1, 1, frames, bins)
    levels = [level]
    for _ in range(poolings):
        level = F.avg_pool2d(level, 2, 2, ceil_mode=True)
        levels.append(level)
    return [x.reshape(*lead, *x.shape[-2:]) for x in levels]


def multires_spectral(target: torch.Tensor, synthetic: torch.Tensor, poolings: int) -> torch.Tensor:
    """L_ms: (..., T, F) × 2 -> (...,) summed L1 distance over the resolutions."""
    _same_shape(target, synthetic)
    return sum((a - b).abs().sum(dim=(-2, -1)) for a, b in zip(pyramid(target, poolings),
                                                                  pyramid(synthetic, poolings)))


def exclusion(a: torch.Tensor, b: torch.Tensor, poolings: int) -> torch.Tensor:
    """The exclusion (structure-correlation) of two spectrograms: (..., T, F) × 2 -> (...,)."""
    _same_shape(a, b)
    terms = []
    for level_a, level_b in zip(pyramid(a, poolings), pyramid(b, poolings)):
        for dim in (-2, -1):
            if level_a.shape[dim] < 2:
                continue
            grad_a, grad_b = torch.diff(level_a, dim=dim), torch.diff(level_b, dim=dim)
            alpha = 2 * grad_a.abs().mean(dim=(-2, -1), keepdim=True) / (
                grad_b.abs().mean(dim=(-2, -1), keepdim=True) + TINY)
            psi_a, psi_b = torch.tanh(grad_a / 2), torch.tanh(alpha * grad_b / 2)
            terms.append((psi_a.square() * psi_b.square()).mean(dim=(-2, -1)).add(TINY).pow(0.25))
    if not terms:
        raise ValueError(f"spectrograms of shape {tuple(a.shape)} have no gradient to compare")
    return torch.stack(terms).sum(dim=0) / (2 * (poolings + 1))


def source_dissimilarity(sources: torch.Tensor, poolings: int) -> torch.Tensor:
    """L_sd: (B, K, T, F) generated sources -> (B,) Σ_{i<j} exclusion(s_i, s_j); 0 for K = 1."""
    if sources.dim() != 4:
        raise ValueError(f"sources must be (B, K, T, F); got shape {tuple(sources.shape)}")
    first, second = torch.triu_indices(sources.shape[1], sources.shape[1], offset=1, device=sources.device)
    if first.numel() == 0:
        return sources.new_zeros(sources.shape[0])
    return exclusion(sources[:, first], sources[:, second], poolings).sum(dim=1)


def mixture_correlation(target: torch.Tensor, synthetic: torch.Tensor, poolings: int) -> torch.Tensor:
    """L_mc: (..., T, F) × 2 -> (...,) minus the exclusion of the real and the synthetic mixture."""
    return -exclusion(target, synthetic, poolings)


def frequency_continuity(target: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor:
    """L_fc: (..., T, F) magnitudes × 2 -> (...,) Σ over frames of the ratio of log-compressed frame energies."""
    _same_shape(target, synthetic)
    bins = target.shape[-1]
    real = torch.log1p(target).sum(dim=-1) + EPS * bins
    made = torch.log1p(synthetic).sum(dim=-1) + EPS * bins
    return (real / made).sum(dim=-1)


@dataclass(frozen=True)
class Weights:
    """β of L_ms, L_sd, L_mc, L_fc."""

    ms: float
    sd: float
    mc: float
    fc: float


def objective(target: torch.Tensor, sources: torch.Tensor, weights: Weights, poolings: int
              ) -> dict[str, torch.Tensor]:
    """The seed's objective of generated sources (B, K, T, F) ≥ 0 for real mixtures (B, T, F) ≥ 0.

    The synthetic mixture is Σ_k sources (magnitudes add, as the VAE's own mixture model assumes). Returns each
    term and `total` = Σ β · term, all (B,).
    """
    if sources.dim() != 4 or target.dim() != 3 or sources.shape[0] != target.shape[0] \
            or sources.shape[2:] != target.shape[1:]:
        raise ValueError(f"expected sources (B, K, T, F) and mixtures (B, T, F); got {tuple(sources.shape)} and "
                         f"{tuple(target.shape)}")
    synthetic = sources.sum(dim=1)
    log_target, log_synthetic = torch.log1p(target), torch.log1p(synthetic)
    terms = {"ms": multires_spectral(log_target, log_synthetic, poolings),
             "sd": source_dissimilarity(torch.log1p(sources), poolings),
             "mc": mixture_correlation(log_target, log_synthetic, poolings),
             "fc": frequency_continuity(target, synthetic)}
    terms["total"] = (weights.ms * terms["ms"] + weights.sd * terms["sd"] + weights.mc * terms["mc"]
                      + weights.fc * terms["fc"])
    return terms


def _same_shape(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(f"expected two spectrograms (..., T, F) of one shape; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
