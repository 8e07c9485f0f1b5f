"""Reading audio files: decode anything libsndfile reads, downmix to mono, resample with soxr.

torchaudio is deliberately not used: its PyPI wheels are CUDA builds that fail to import next to a CPU torch.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

log = logging.getLogger(__name__)

# soxr's "HQ" is librosa's default (`soxr_hq`); the quick/low modes alias audibly.
RESAMPLE_QUALITY = "HQ"


class AudioError(ValueError):
    """An audio file cannot be used; the message names the file and what is wrong with it."""


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file (wav, flac, ogg, ... whatever soundfile reads).

    Returns `(samples, sample_rate)` with samples float32 of shape (frames, channels).
    Raises AudioError for unreadable, empty or non-finite audio.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {path} does not exist")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(f"{path}: cannot decode audio ({err}); expected a file soundfile reads (wav, flac, ogg)") from err
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples")
    if not np.isfinite(samples).all():
        bad = int(np.size(samples) - np.isfinite(samples).sum())
        raise AudioError(f"{path}: {bad} NaN or infinite samples; expected finite audio")
    return samples, int(rate)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array into a float32 (frames,) signal."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    return samples.mean(axis=1, dtype=np.float32)


def resample(signal: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample a 1-D or (frames, channels) signal with soxr at high quality."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
    if rate_in == rate_out:
        return np.ascontiguousarray(signal, dtype=np.float32)
    return soxr.resample(np.ascontiguousarray(signal, dtype=np.float32), rate_in, rate_out,
                         quality=RESAMPLE_QUALITY).astype(np.float32, copy=False)


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read a file as a mono float32 signal at `sample_rate`."""
    samples, rate = read_audio(path)
    return resample(to_mono(samples), rate, sample_rate)
