"""Cutting recordings into fixed-length clips and levelling them (method.md: 1-s clips, RMS-normalised)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SILENCE_FLOOR = 1e-12  # keeps log10 finite for digital silence


@dataclass(frozen=True)
class Clip:
    """One fixed-length piece of a recording.

    `offset` is the index, in the resampled recording, of the clip's first sample; it is negative when a
    recording shorter than a clip was centred with zero padding.
    """

    offset: int
    samples: np.ndarray  # float32, shape (clip_samples,)


def cut_clips(signal: np.ndarray, clip_samples: int, min_tail_fraction: float) -> list[Clip]:
    """Cut a mono signal into consecutive clips of `clip_samples`.

    A recording no longer than one clip is centred and zero-padded (as the paper does for short utterances).
    A longer one is cut at 0, L, 2L, ...; its last piece is zero-padded at the end and kept only when it holds at
    least `min_tail_fraction` of a clip.
    """
    if signal.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (samples,), got shape {signal.shape}")
    n = signal.shape[0]
    if n <= clip_samples:
        left = (clip_samples - n) // 2
        clip = np.zeros(clip_samples, dtype=np.float32)
        clip[left:left + n] = signal
        return [Clip(offset=-left, samples=clip)]
    clips = []
    for start in range(0, n, clip_samples):
        piece = signal[start:start + clip_samples]
        if piece.shape[0] < clip_samples:
            if piece.shape[0] < min_tail_fraction * clip_samples:
                break
            piece = np.pad(piece, (0, clip_samples - piece.shape[0]))
        clips.append(Clip(offset=start, samples=np.ascontiguousarray(piece, dtype=np.float32)))
    return clips


def rms(signal: np.ndarray, axis: int = -1) -> np.ndarray:
    """Root-mean-square level along `axis` (float64 accumulation)."""
    return np.sqrt(np.mean(np.square(signal, dtype=np.float64), axis=axis))


def to_db(level: np.ndarray | float) -> np.ndarray:
    """Amplitude level to dB re full scale."""
    return 20.0 * np.log10(np.maximum(level, SILENCE_FLOOR))


def silent_clips(levels_db: np.ndarray, *, relative_db: float, threshold_db: float, floor_db: float) -> np.ndarray:
    """Which clips of one recording are silent, from their RMS levels in dBFS, shape (clips,) -> bool (clips,).

    Silent: below `floor_db` (digital silence, whatever the recording), or both more than `relative_db` below the
    recording's loudest clip and below `threshold_db`. A recording made quietly is judged against its own level:
    its clips are never silent merely for being below `threshold_db`.
    """
    levels_db = np.asarray(levels_db, dtype=np.float64)
    if levels_db.ndim != 1 or levels_db.size == 0:
        raise ValueError(f"expected the levels of one recording's clips, shape (clips,), got {levels_db.shape}")
    quiet_for_recording = levels_db < levels_db.max() - relative_db
    return (levels_db < floor_db) | (quiet_for_recording & (levels_db < threshold_db))


def normalise_rms(signal: np.ndarray, target_rms: float) -> np.ndarray:
    """Scale a non-silent signal to RMS `target_rms` (float32)."""
    level = float(rms(signal))
    if level <= SILENCE_FLOOR:
        raise ValueError("cannot RMS-normalise a silent signal")
    return (signal * (target_rms / level)).astype(np.float32)
