"""Seed 004's classical baselines on a single-channel toy spectrogram: each separates two sources better than
leaving the mixture alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.inference.classical import METHODS, group, separate_blind


def _toy():
    """Two sources with their own spectra (disjoint bands) and independent activations, plus a little noise."""
    rng = np.random.default_rng(0)
    frames, bins = 44, 60
    w1, w2 = np.zeros(bins), np.zeros(bins)
    w1[5:15], w2[30:45] = 1.0, np.linspace(1.0, 2.0, 15)
    s1, s2 = np.outer(rng.random(frames), w1), np.outer(rng.random(frames) ** 2, w2)
    return s1, s2, s1 + s2 + 0.01 * rng.random((frames, bins))


def _snr(estimate, source):
    return 10 * np.log10(np.sum(source ** 2) / np.sum((estimate - source) ** 2))


@pytest.mark.parametrize("method", METHODS)
def test_each_method_separates_a_toy_two_source_spectrogram_better_than_chance(method):
    s1, s2, mixture = _toy()
    estimates = separate_blind(torch.tensor(mixture)[None], torch.tensor([2]), method, 8, 0, 100)[0].numpy()
    masks = estimates ** 2 / np.maximum((estimates ** 2).sum(axis=0), 1e-12)
    masked = masks * mixture
    best = max(np.mean([_snr(masked[0], s1), _snr(masked[1], s2)]),
               np.mean([_snr(masked[1], s1), _snr(masked[0], s2)]))   # outputs come in no order
    chance = np.mean([_snr(mixture / 2, s1), _snr(mixture / 2, s2)])  # half the mixture for each
    assert best > chance + 3.0, (method, best, chance)


def test_group_sums_the_components_of_each_cluster():
    a, b = np.zeros((2, 4)), np.zeros((2, 4))
    a[:, 0], b[:, 3] = 1.0, 2.0
    contributions = np.stack([a, 2 * a, b, 3 * b])
    grouped = group(contributions, 2, seed=0)
    order = np.argsort(grouped[:, :, 0].sum(axis=1))[::-1]
    assert np.allclose(grouped[order[0]], 3 * a) and np.allclose(grouped[order[1]], 4 * b)


def test_more_slots_than_sources_stay_silent_and_bad_requests_are_named():
    _, _, mixture = _toy()
    batch = torch.tensor(np.stack([mixture, mixture]))
    estimates = separate_blind(batch, torch.tensor([2, 3]), "pca", 8, 0, 10)
    assert estimates.shape == (2, 3, 44, 60) and float(estimates[0, 2].abs().max()) == 0.0
    with pytest.raises(ValueError, match="classical method 'ica'"):
        separate_blind(batch, torch.tensor([2, 2]), "ica", 8, 0, 10)
    with pytest.raises(ValueError, match="cannot group 3 components into 4 sources"):
        group(np.ones((3, 2, 2)), 4, seed=0)
