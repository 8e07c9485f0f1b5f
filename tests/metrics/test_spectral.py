"""Seed 004's perceptual figures against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.metrics.separation import score_mixture
from pipeline.metrics.spectral import envelope, envelope_distance, spectral_snr


def _tone(amplitude=0.5, length=2048, cycles=64):
    return amplitude * np.cos(2 * np.pi * cycles * np.arange(length) / length)


def test_spectral_snr_of_half_the_reference_is_6_dB():
    reference = np.random.default_rng(0).standard_normal(4000)
    # |S(0.5 s)| = 0.5 |S(s)|: sum |S|^2 / sum (0.5 |S|)^2 = 4
    assert spectral_snr(reference, 0.5 * reference) == pytest.approx(10 * math.log10(4), abs=1e-9)
    assert spectral_snr(reference, reference) == math.inf
    # a sign flip changes no magnitude: spectral SNR ignores phase
    assert spectral_snr(reference, -reference) == math.inf


def test_envelope_distance_by_hand():
    tone = _tone(amplitude=0.5)
    # an integer number of cycles over the whole signal: the Hilbert envelope of a*cos is exactly a
    assert np.allclose(envelope(tone), 0.5)
    assert envelope_distance(tone, 0.2 * tone / 0.5) == pytest.approx(0.3, abs=1e-9)
    assert envelope_distance(tone, -tone) == pytest.approx(0.0, abs=1e-12)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(L,\) signals of one length; got \(10,\) and \(11,\)"):
        spectral_snr(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError, match=r"one length; got \(2, 5\)"):
        envelope_distance(np.zeros((2, 5)), np.zeros((2, 5)))


def test_every_scored_source_carries_them():
    rng = np.random.default_rng(1)
    references = rng.standard_normal((2, 8600))
    rows = score_mixture(references, 0.5 * references, references.sum(axis=0), 8600, [False, False])
    assert [row["spectral_snr"] for row in rows] == pytest.approx([6.0206, 6.0206], abs=1e-3)
    assert all(row["envelope_distance"] > 0 for row in rows)
