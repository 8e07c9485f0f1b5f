"""Magnitudes -> audio by Griffin-Lim, batched in torch with the project's STFT (`pipeline.features.stft`).

The fast variant of Perraudin et al. (2013), librosa's default: each iteration projects the current spectrum onto
the consistent spectra (ISTFT then STFT), keeps the phase, and extrapolates with `momentum`.
"""
from __future__ import annotations

import torch

from pipeline.config import StftConfig
from pipeline.features.stft import istft, stft


def griffin_lim(magnitudes: torch.Tensor, length: int, spec: StftConfig, iterations: int,
                generator: torch.Generator | None = None, momentum: float = 0.99) -> torch.Tensor:
    """(B, T, F) non-negative magnitudes -> (B, length) waveforms; random initial phase from `generator`."""
    if magnitudes.dim() != 3 or magnitudes.shape[-1] != spec.bins:
        raise ValueError(f"griffin_lim expects magnitudes (B, T, F={spec.bins}), got {tuple(magnitudes.shape)}")
    if iterations < 0 or not 0 <= momentum < 1:
        raise ValueError(f"iterations = {iterations} must be >= 0 and momentum = {momentum} in [0, 1)")
    phase = torch.rand(magnitudes.shape, generator=generator, dtype=magnitudes.dtype) * (2 * torch.pi)
    spectrum = torch.polar(magnitudes, phase.to(magnitudes.device))
    previous = torch.zeros_like(spectrum)
    for _ in range(iterations):
        rebuilt = stft(istft(spectrum, length, spec), spec)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        previous = rebuilt
        spectrum = magnitudes * accelerated / accelerated.abs().clamp_min(1e-16)
    return istft(spectrum, length, spec)


def spectral_convergence(magnitudes: torch.Tensor, waveforms: torch.Tensor, spec: StftConfig) -> torch.Tensor:
    """‖|STFT(x)| − M‖_F / ‖M‖_F per item: (B, T, F), (B, L) -> (B,); 0 when x has exactly the magnitudes M."""
    error = stft(waveforms, spec).abs() - magnitudes
    return error.flatten(1).norm(dim=1) / magnitudes.flatten(1).norm(dim=1).clamp_min(1e-12)
