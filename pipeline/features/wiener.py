"""Soft (Wiener) masks with the mixture phase, eq. 9: y_k = ISTFT( ŝ_k² / Σ_c ŝ_c² ⊙ X ).

Used by the time-domain training losses and by every separation method, so both see the same estimates.
"""
from __future__ import annotations

import torch

from pipeline.config import StftConfig
from pipeline.features.stft import istft, stft

EPS = 1e-8


def wiener_pairs(source_magnitudes: torch.Tensor, pairs, mixture_spectrum: torch.Tensor, length: int,
                 spec: StftConfig) -> torch.Tensor:
    """Waveform estimates of (mixture, class) pairs.

    source_magnitudes: (N, T, F) ŝ of each pair (`pairs`: a `pipeline.models.vae.Pairs`);
    mixture_spectrum: (B, T, F) complex. Returns (N, length). A mixture's masks are taken over its own pairs,
    so its estimates add up to the mixture.
    """
    power = source_magnitudes.square()
    total = pairs.sum_per_mixture(power, mixture_spectrum.shape[0])[pairs.mixture]
    mask = power / (total + EPS)
    return istft(mask * mixture_spectrum[pairs.mixture], length, spec)


def wiener_separate(source_magnitudes: torch.Tensor, mixture: torch.Tensor, spec: StftConfig) -> torch.Tensor:
    """Dense form: source_magnitudes (B, K, T, F) (zeros for absent classes), mixture (B, L) -> (B, K, L).

    An all-zero class gets a zero mask, hence a silent estimate.
    """
    if source_magnitudes.dim() != 4 or mixture.dim() != 2 or source_magnitudes.shape[0] != mixture.shape[0]:
        raise ValueError(f"expected source magnitudes (B, K, T, F) and mixture (B, L), got "
                         f"{tuple(source_magnitudes.shape)} and {tuple(mixture.shape)}")
    spectrum = stft(mixture, spec).unsqueeze(1)                     # (B, 1, T, F)
    power = source_magnitudes.square()
    mask = power / (power.sum(dim=1, keepdim=True) + EPS)
    return istft(mask * spectrum, mixture.shape[-1], spec)
