"""The perceptual figures of seed 004 (Narayanaswamy et al. 2020, its published evaluation code), as pure functions.

- **Spectral SNR** (dB): 10·log10(Σ|S|² / Σ(|S| − |Ŝ|)²) of the STFT magnitudes of reference s and estimate ŝ
  (Hann window of `SPECTRAL_N_FFT` = 256 samples, hop 128, centred with zero padding: the seed's settings).
  Higher is better; it ignores phase, so it rewards a spectrogram that looks right.
- **Envelope distance**: the RMS difference of the two signals' amplitude envelopes |s + j·H{s}| (H: the Hilbert
  transform). Lower is better; in the signals' own units (our clips are RMS-normalised, so it is comparable
  across rows of one dataset).

Both take (L,) float arrays; neither needs the sources in any order beyond the pair given.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import hilbert

SPECTRAL_N_FFT = 256
SPECTRAL_HOP = 128
TINY = 1e-20


def _magnitudes(signal: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| (frames, n_fft // 2 + 1) with a periodic Hann window, centred by n_fft // 2 zeros on each side."""
    padded = np.pad(np.asarray(signal, dtype=np.float64), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.abs(np.fft.rfft(frames * window, axis=-1))


def spectral_snr(reference: np.ndarray, estimate: np.ndarray, n_fft: int = SPECTRAL_N_FFT,
                 hop: int = SPECTRAL_HOP) -> float:
    """Spectral SNR in dB of (L,) `estimate` against (L,) `reference`; +inf for identical magnitudes."""
    if reference.shape != estimate.shape or reference.ndim != 1:
        raise ValueError(f"spectral_snr needs two (L,) signals of one length; got {reference.shape} and "
                         f"{estimate.shape}")
    ref, est = _magnitudes(reference, n_fft, hop), _magnitudes(estimate, n_fft, hop)
    error = float(np.sum((ref - est) ** 2))
    return float(10 * np.log10(max(float(np.sum(ref ** 2)), TINY) / error)) if error > 0 else float("inf")


def envelope(signal: np.ndarray) -> np.ndarray:
    """Amplitude envelope |analytic signal| (L,)."""
    return np.abs(hilbert(np.asarray(signal, dtype=np.float64)))


def envelope_distance(reference: np.ndarray, estimate: np.ndarray) -> float:
    """RMS difference of the amplitude envelopes of two (L,) signals."""
    if reference.shape != estimate.shape or reference.ndim != 1:
        raise ValueError(f"envelope_distance needs two (L,) signals of one length; got {reference.shape} and "
                         f"{estimate.shape}")
    return float(np.sqrt(np.mean((envelope(reference) - envelope(estimate)) ** 2)))
