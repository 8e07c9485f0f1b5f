"""Remix metrics on hand-built cases: a perfect separator scores the ideal remix exactly."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.metrics.remix import ideal_remix, ratio_change_db, remix_fidelity, stem_si_sdr
from pipeline.metrics.separation import MAX_DB


def _stems(channels: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4000, channels)) * 0.1, rng.standard_normal((4000, channels)) * 0.05


def test_a_perfect_separator_scores_the_ideal_remix_exactly():
    dialogue, background = _stems()
    perfect = 10 ** (6 / 20) * dialogue + 10 ** (-3 / 20) * background   # what enhance outputs with true stems
    assert remix_fidelity(perfect, dialogue, background, 6.0, -3.0) == MAX_DB
    assert ratio_change_db(perfect, dialogue, background) == pytest.approx(9.0, abs=1e-9)
    assert stem_si_sdr(dialogue, dialogue) == MAX_DB


def test_the_unprocessed_mixture_keeps_the_ratio_and_scores_below_a_perfect_remix():
    dialogue, background = _stems()
    mixture = dialogue + background
    assert ratio_change_db(mixture, dialogue, background) == pytest.approx(0.0, abs=1e-9)
    # target 2d + b against d + b: SI-SDR = 10 log10(|P t|² / |t - P t|²) with P the projection on the mixture
    target = ideal_remix(dialogue, background, 20 * np.log10(2), 0.0)
    expected = []
    for c in range(2):
        t, e = target[:, c] - target[:, c].mean(), mixture[:, c] - mixture[:, c].mean()
        projected = (e @ t) / (t @ t) * t
        expected.append(10 * np.log10((projected @ projected) / ((e - projected) @ (e - projected))))
    assert remix_fidelity(mixture, dialogue, background, 20 * np.log10(2), 0.0) == pytest.approx(np.mean(expected))


def test_a_leaky_remix_changes_the_ratio_by_its_true_gains():
    dialogue, background = _stems(channels=1, seed=3)
    leaky = 2.0 * dialogue + 0.5 * background        # +6.02 dB dialogue, -6.02 dB background
    assert ratio_change_db(leaky, dialogue, background) == pytest.approx(20 * np.log10(4.0), abs=1e-9)


@pytest.mark.parametrize("bad", [np.zeros((10, 2)), np.full((4000, 2), np.nan)])
def test_bad_shapes_and_values_are_named(bad):
    dialogue, background = _stems()
    with pytest.raises(ValueError, match="output"):
        ratio_change_db(bad, dialogue, background)
