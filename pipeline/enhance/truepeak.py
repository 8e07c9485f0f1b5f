"""True peak (ITU-R BS.1770-4 Annex 2): the peak of the signal 4x oversampled, streaming and cheap.

A 48-tap low-pass (12 taps per phase) interpolates three points between every two samples. Interpolating is
needed only where it can matter: a phase's output is at most Σ|h_phase| times the largest sample in its 12-tap
reach, so the 16-sample segments of a channel whose sample peak times that bound stays below the level of
interest are skipped. That level is the running maximum (or the chunk's own sample peak, when higher: nothing
below it can be the maximum), and at most the limiter's ceiling when limiting; on programme material most of a
film, and most of its quieter channels, is skipped.
"""
from __future__ import annotations

import numpy as np
import scipy.signal

OVERSAMPLE = 4
TAPS = 48
SEGMENT = 16


def _design() -> np.ndarray:
    """(OVERSAMPLE, TAPS // OVERSAMPLE) polyphase taps: a Kaiser-window low-pass at 0.9 of the input's Nyquist."""
    taps = scipy.signal.firwin(TAPS, 0.9 / OVERSAMPLE, window=("kaiser", 6.0)) * OVERSAMPLE
    return taps.reshape(-1, OVERSAMPLE).T[:, ::-1].copy()      # phase p: taps p, p+4, ... in time order


PHASES = _design()
BOUND = float(np.abs(PHASES).sum(axis=1).max())                # |interpolated| <= BOUND * local sample peak
REACH = PHASES.shape[1]


class TruePeak:
    """True peak of C channels, chunk by chunk. `envelope(x, limit)` gives each sample's peak across channels
    (the largest of |x| and the three interpolated values after it; exact wherever it may exceed `limit` or
    reach the running maximum, at least the sample's own |x| elsewhere); `peak` is the largest true peak seen
    (linear), always exact."""

    def __init__(self, channels: int):
        self.history = np.zeros((REACH - 1, channels), np.float32)
        self.peak = 0.0

    def envelope(self, samples: np.ndarray, limit: float = float("inf")) -> np.ndarray:
        """samples (n, C) -> (n,) per-sample true peak across channels; updates `peak`."""
        n = len(samples)
        if not n:
            return np.zeros(0, np.float32)
        extended = np.concatenate([self.history, np.asarray(samples, np.float32)])   # sample i of the chunk is i + 11
        self.history = extended[-(REACH - 1):]
        segments = -(-n // SEGMENT)
        channels = extended.shape[1]
        magnitude = np.zeros((channels, (segments + 1) * SEGMENT), np.float32)          # channel-major: fast rows
        for c in range(channels):
            np.abs(extended[:, c], out=magnitude[c, :len(extended)])
        level = magnitude[0, REACH - 1:REACH - 1 + n].copy()
        for c in range(1, channels):
            np.maximum(level, magnitude[c, REACH - 1:REACH - 1 + n], out=level)
        by_segment = magnitude.reshape(channels, segments + 1, SEGMENT)
        floor = min(limit, max(self.peak, float(level.max())))   # below it nothing can matter
        per = by_segment[:, :, 0].copy()                    # (C, segments + 1) sample peaks; a loop over the 16
        for k in range(1, SEGMENT):                        # positions beats numpy's reduction over a short axis
            np.maximum(per, by_segment[:, :, k], out=per)
        reach = np.maximum(per[:, :-1], per[:, 1:])        # segment s reads extended[s*SEG : s*SEG + SEG + 11]
        # each channel of each segment on its own: in a film the quiet channels are rarely near the peak
        channel, segment = np.nonzero(reach * BOUND > floor)
        if len(segment):
            index = segment[:, None] * SEGMENT + np.arange(SEGMENT + REACH - 1)
            windows = extended[np.minimum(index, len(extended) - 1), channel[:, None]]   # (N, SEG + 11)
            views = np.lib.stride_tricks.sliding_window_view(windows, REACH, axis=1)     # (N, SEG, REACH)
            values = np.abs(views @ PHASES.T.astype(np.float32)).max(axis=2)               # (N, SEG): after sample i-1
            # window p spans chunk samples p-11 .. p: its points lie between samples p-6 and p-5; credit the
            # earlier one, so the limiter acts on time (a peak in a chunk's first 6 samples credits sample 0)
            positions = (segment[:, None] * SEGMENT + np.arange(SEGMENT)).ravel() - REACH // 2
            keep = positions < n
            np.maximum.at(level, np.maximum(positions[keep], 0), values.ravel()[keep])
        self.peak = max(self.peak, float(level.max()))
        return level

    def update(self, samples: np.ndarray) -> None:
        """Measure only: interpolate where the running maximum could be exceeded."""
        self.envelope(samples)


def to_dbtp(peak: float) -> float:
    return float(20 * np.log10(peak)) if peak > 0 else float("-inf")
