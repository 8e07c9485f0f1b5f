"""The one STFT every stage uses (method.md): 400-point periodic Hann window, hop 200, centred.

At 8,600 Hz a 1-s clip (8,600 samples) gives F = 201 bins and T = 44 frames. Spectrograms are returned in the
paper's orientation, time before frequency: shape (..., T, F). `istft(stft(x), length=len(x))` recovers x.
"""
from __future__ import annotations

import torch

from pipeline.config import StftConfig as StftSpec


def hann_window(spec: StftSpec, device: torch.device | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The analysis/synthesis window. torch.stft's default is rectangular; the method needs a periodic Hann,
    whose shifts by n_fft/2 sum to one."""
    return torch.hann_window(spec.n_fft, periodic=True, device=device, dtype=dtype)


def stft(waveform: torch.Tensor, spec: StftSpec = StftSpec()) -> torch.Tensor:
    """Complex STFT: (..., L) real -> (..., T, F) complex."""
    if waveform.shape[-1] < spec.n_fft // 2 + 1:
        raise ValueError(f"waveform of {waveform.shape[-1]} samples is too short for an STFT with n_fft={spec.n_fft}")
    batch_shape = waveform.shape[:-1]
    flat = waveform.reshape(-1, waveform.shape[-1])
    spectrum = torch.stft(flat, spec.n_fft, hop_length=spec.hop_length, window=hann_window(spec, flat.device, flat.dtype),
                          center=True, return_complex=True)  # (B, F, T)
    # contiguous (T, F): every later elementwise op, gather and matmul then runs on dense rows
    return spectrum.transpose(-1, -2).contiguous().view(*batch_shape, spectrum.shape[-1], spec.bins)


def istft(spectrum: torch.Tensor, length: int, spec: StftSpec = StftSpec()) -> torch.Tensor:
    """Inverse of `stft`: (..., T, F) complex -> (..., length) real."""
    if spectrum.shape[-1] != spec.bins:
        raise ValueError(f"spectrum has {spectrum.shape[-1]} bins, expected F = {spec.bins} (shape (..., T, F))")
    batch_shape = spectrum.shape[:-2]
    flat = spectrum.reshape(-1, *spectrum.shape[-2:]).transpose(-1, -2)  # (B, F, T)
    real_dtype = spectrum.real.dtype if spectrum.is_complex() else spectrum.dtype
    window = hann_window(spec, flat.device, real_dtype)
    wave = torch.istft(flat, spec.n_fft, hop_length=spec.hop_length, window=window, center=True, length=length)
    return wave.reshape(*batch_shape, length)


def magnitude(waveform: torch.Tensor, spec: StftSpec = StftSpec()) -> torch.Tensor:
    """Magnitude spectrogram |STFT|: (..., L) -> (..., T, F), non-negative."""
    return stft(waveform, spec).abs()
