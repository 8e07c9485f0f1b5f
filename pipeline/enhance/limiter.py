"""A peak limiter that keeps a remix within full scale, sample-exact across chunk boundaries.

Gain drops instantly to what keeps the loudest channel at the ceiling (no overshoot, so no clipping) and
recovers linearly over `release_s`; all channels share one gain so the stereo image stays put. Below the
ceiling it does nothing, so a remix that fits is returned unchanged. Given each sample's true peak (`peaks`,
from `truepeak.TruePeak.envelope`) instead of its sample peak, it limits true peaks.
"""
from __future__ import annotations

import numpy as np


class Limiter:
    def __init__(self, sample_rate: int, ceiling: float = 1.0, release_s: float = 0.05):
        self.ceiling = ceiling
        self.step = 1.0 / max(1.0, release_s * sample_rate)  # gain recovered per sample
        self.gain = 1.0                                       # gain after the previous sample

    def gains(self, peak: np.ndarray) -> np.ndarray | None:
        """Each sample's peak (n,) -> the gain of each sample (n,), or None when every gain is 1."""
        if peak.shape[0] == 0 or self.gain >= 1.0 and peak.max() <= self.ceiling:
            return None
        target = np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-12))
        ramp = self.step * np.arange(1, peak.shape[0] + 1)
        # g[n] = min(target[n], g[n-1] + step), g <= 1, unrolled: min over k <= n of target[k] + step (n - k)
        gain = np.minimum.accumulate(target - ramp) + ramp
        gain = np.minimum(np.minimum(gain, self.gain + ramp), 1.0)
        self.gain = float(gain[-1])
        return gain

    def __call__(self, samples: np.ndarray, peaks: np.ndarray | None = None) -> np.ndarray:
        """samples (n, C) -> limited samples (n, C); `peaks` (n,): each sample's true peak (default: sample peak)."""
        if samples.shape[0] == 0:
            return samples
        gain = self.gains(np.abs(samples).max(axis=1) if peaks is None else peaks)
        if gain is None:
            return samples
        return (samples * gain[:, None]).astype(samples.dtype)
