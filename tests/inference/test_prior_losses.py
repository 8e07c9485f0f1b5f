"""Seed 004's objective, term by term, against values computed by hand on tiny spectrograms."""
from __future__ import annotations

import math

import pytest
import torch

from pipeline.inference import prior_losses as L

E = math.e


def test_pyramid_averages_2x2_cells_and_the_cells_an_odd_edge_has():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    levels = L.pyramid(x, 2)
    # (1+2+4+5)/4, (3+6)/2 ; (7+8)/2, 9  -> then one cell: (3+4.5+7.5+9)/4
    assert torch.allclose(levels[1], torch.tensor([[3.0, 4.5], [7.5, 9.0]]))
    assert torch.allclose(levels[2], torch.tensor([[6.0]]))


def test_multires_spectral_is_the_l1_distance_summed_over_the_resolutions():
    target = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    # level 0: 1+2+3+4 = 10; level 1: one cell of mean 2.5
    assert L.multires_spectral(target, torch.zeros(2, 2), poolings=1).item() == pytest.approx(12.5)
    assert L.multires_spectral(target, target, poolings=3).item() == 0.0


def test_exclusion_by_hand():
    a = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    # along time: g_a = (2, 3), g_b = (-1, 3), alpha = 2 * 2.5 / 2 = 2.5
    time = ((math.tanh(1.0) ** 2 * math.tanh(-1.25) ** 2 + math.tanh(1.5) ** 2 * math.tanh(3.75) ** 2) / 2) ** 0.25
    # along frequency: g_a = (1, 2), g_b = (-1, 3), alpha = 2 * 1.5 / 2 = 1.5
    freq = ((math.tanh(0.5) ** 2 * math.tanh(-0.75) ** 2 + math.tanh(1.0) ** 2 * math.tanh(2.25) ** 2) / 2) ** 0.25
    # the pooled level is one cell: no gradient; averaged over 2 directions x 2 levels
    assert L.exclusion(a, b, poolings=1).item() == pytest.approx((time + freq) / 4, rel=1e-5)
    assert L.mixture_correlation(a, b, poolings=1).item() == pytest.approx(-(time + freq) / 4, rel=1e-5)


def test_exclusion_is_near_zero_when_structures_never_meet_and_large_when_they_coincide():
    left, right = torch.zeros(8, 8), torch.zeros(8, 8)
    left[:, :3] = torch.arange(8.0)[:, None] * torch.tensor([1.0, 3.0, 2.0])     # bins 0-2 (edge at 2|3)
    right[:, 5:] = torch.arange(8.0)[:, None] * torch.tensor([2.0, 1.0, 4.0])    # bins 5-7 (edge at 4|5)
    right[:4] = 0.0  # and in other frames: no shared time edge either
    assert L.exclusion(left, right, poolings=0).item() < 0.01
    assert L.exclusion(left, left, poolings=0).item() > 0.5


def test_source_dissimilarity_sums_every_pair_once():
    torch.manual_seed(0)
    sources = torch.rand(2, 3, 6, 5)
    pairs = sum(L.exclusion(sources[:, i], sources[:, j], 2) for i, j in ((0, 1), (0, 2), (1, 2)))
    assert torch.allclose(L.source_dissimilarity(sources, 2), pairs)
    assert torch.equal(L.source_dissimilarity(sources[:, :1], 2), torch.zeros(2))


def test_frequency_continuity_by_hand():
    target = torch.tensor([[E - 1, E - 1], [0.0, E - 1]])       # log1p sums per frame: 2, 1
    synthetic = torch.tensor([[E - 1, 0.0], [E - 1, E - 1]])    # 1, 2
    eps = 2 * L.EPS
    expected = (2 + eps) / (1 + eps) + (1 + eps) / (2 + eps)
    assert L.frequency_continuity(target, synthetic).item() == pytest.approx(expected, rel=1e-6)


def test_the_objective_is_the_weighted_sum_on_log_spectrograms():
    torch.manual_seed(1)
    target, sources = torch.rand(2, 8, 6), torch.rand(2, 3, 8, 6)
    weights = L.Weights(ms=0.3, sd=0.4, mc=0.1, fc=0.8)
    terms = L.objective(target, sources, weights, poolings=2)
    mixture = sources.sum(dim=1)
    assert torch.allclose(terms["ms"], L.multires_spectral(torch.log1p(target), torch.log1p(mixture), 2))
    assert torch.allclose(terms["fc"], L.frequency_continuity(target, mixture))
    total = 0.3 * terms["ms"] + 0.4 * terms["sd"] + 0.1 * terms["mc"] + 0.8 * terms["fc"]
    assert torch.allclose(terms["total"], total)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"one shape; got \(2, 3\) and \(3, 2\)"):
        L.multires_spectral(torch.zeros(2, 3), torch.zeros(3, 2), 1)
    with pytest.raises(ValueError, match=r"sources \(B, K, T, F\) and mixtures \(B, T, F\)"):
        L.objective(torch.zeros(2, 4, 3), torch.zeros(2, 4, 3), L.Weights(1, 1, 1, 1), 1)
