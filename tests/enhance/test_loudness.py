"""Streaming BS.1770 loudness against pyloudnorm, true peak of an inter-sample peak, the true-peak limiter."""
from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from pipeline.enhance.limiter import Limiter
from pipeline.enhance.loudness import BlockEnergy, KWeighting, block_powers, channel_weights, integrated_loudness
from pipeline.enhance.truepeak import TruePeak, to_dbtp


@pytest.mark.parametrize("rate", [48000, 44100, 22050])
def test_streamed_loudness_equals_pyloudnorm_whatever_the_chunks(rate):
    rng = np.random.default_rng(rate)
    n = int(rate * 6.3)
    x = (rng.standard_normal((n, 5)) * np.linspace(0.01, 0.3, n)[:, None] * [1, 0.5, 0.8, 0.3, 0.2]).astype(np.float32)
    x[: rate] *= 1e-4                                                    # a quiet second: the gates must act
    weighting, energy = KWeighting(rate, 5), BlockEnergy(rate, 5)
    at = 0
    for size in (1, 999, 33333, 4410, 7, n):
        energy.add(weighting(x[at:at + size]))
        at += size
    ours = integrated_loudness(block_powers(energy.energies(), rate), channel_weights(["FL", "FR", "FC", "BL", "BR"]))
    assert ours == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64)), abs=0.02)


def test_lfe_does_not_count_and_silence_is_minus_infinity():
    assert list(channel_weights(["FL", "FR", "FC", "LFE", "SL", "SR"])) == [1, 1, 1, 0, 1.41, 1.41]
    assert integrated_loudness(np.zeros((10, 2)), np.ones(2)) == float("-inf")


def test_true_peak_finds_the_peak_between_samples():
    rate = 48000
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * rate / 4 * t + np.pi / 4).astype(np.float32)[:, None]   # samples at ±0.707, peak 1
    meter = TruePeak(1)
    for start in range(0, rate, 1000):
        meter.update(x[start:start + 1000])
    assert np.abs(x).max() == pytest.approx(0.7071, abs=1e-3)
    assert to_dbtp(meter.peak) == pytest.approx(0.0, abs=0.1)


def test_the_limiter_fed_true_peaks_keeps_them_under_the_ceiling():
    rate = 48000
    t = np.arange(rate) / rate
    x = 1.2 * np.sin(2 * np.pi * rate / 4 * t + np.pi / 4).astype(np.float32)[:, None]
    ceiling = 10 ** (-1 / 20)
    meter, limiter, after = TruePeak(1), Limiter(rate, ceiling), TruePeak(1)
    for start in range(0, rate, 4800):
        block = x[start:start + 4800]
        limited = limiter(block, meter.envelope(block, limit=ceiling))
        after.update(limited)
    assert to_dbtp(after.peak) < -0.9


def test_the_envelope_is_exact_wherever_it_may_exceed_the_limit_on_every_channel():
    """Six channels of different levels in uneven chunks against a direct 4x interpolation of the whole signal:
    wherever the true peak across channels exceeds the limit the envelope holds it, and the peak is exact."""
    from pipeline.enhance.truepeak import PHASES, REACH
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((20000, 6)) * np.array([0.05, 0.05, 0.3, 0.02, 0.1, 0.1])).astype(np.float32)
    x[7000:7010, 4] *= 6                                       # a burst on a surround channel
    padded = np.concatenate([np.zeros((REACH - 1, 6), np.float32), x])
    windows = np.lib.stride_tricks.sliding_window_view(padded, REACH, axis=0)        # (n, 6, REACH)
    between = np.abs(windows @ PHASES.T).max(axis=(1, 2))                              # points after sample i-1
    direct = np.abs(x).max(axis=1)
    shifted = np.maximum(np.arange(len(x)) - REACH // 2, 0)
    np.maximum.at(direct, shifted, between)
    floor = 0.8
    meter, parts, start = TruePeak(6), [], 0
    for size in rng.integers(1, 3000, 40):
        parts.append(meter.envelope(x[start:start + size], limit=floor))
        start += size
    parts.append(meter.envelope(x[start:], limit=floor))
    envelope = np.concatenate(parts)
    loud = direct > floor
    assert loud.sum() > 10
    np.testing.assert_allclose(envelope[loud], direct[loud], rtol=1e-5)
    assert np.all(envelope >= np.abs(x).max(axis=1))
    assert meter.peak == pytest.approx(direct.max(), rel=1e-5)
