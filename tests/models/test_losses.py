"""Each loss against a value computed by hand on a tiny tensor, plus the shared shape checks."""
from __future__ import annotations

import math

import pytest
import torch

from pipeline.models import losses


def test_generalized_kl_by_hand():
    a = torch.tensor([[1.0, 2.0, 0.0]])
    b = torch.tensor([[2.0, 2.0, 3.0]])
    # 1*log(1/2) - 1 + 2  +  2*log(2/2) - 2 + 2  +  0 - 0 + 3
    expected = math.log(0.5) + 1 + 0 + 3
    assert losses.generalized_kl(a, b).item() == pytest.approx(expected, rel=1e-5)
    assert losses.generalized_kl(b, b).item() == pytest.approx(0.0, abs=1e-5)


def test_squared_error_by_hand():
    assert losses.squared_error(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 0.0]])).item() == 8.0


def test_snr_by_hand():
    y = torch.tensor([[3.0, 4.0]])          # ‖y‖² = 25
    y_hat = torch.tensor([[3.0, 3.0]])      # ‖y − ŷ‖² = 1
    assert losses.snr(y, y_hat).item() == pytest.approx(10 * math.log10(25), rel=1e-5)


def test_si_snr_by_hand_and_scale_invariance():
    y = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    noise = torch.tensor([[1.0, 1.0, -1.0, -1.0]])  # orthogonal to y, zero mean
    y_hat = y + 0.5 * noise                          # α = 1, error = 0.5 noise: 10 log10(4 / 1)
    assert losses.si_snr(y, y_hat).item() == pytest.approx(10 * math.log10(4.0), rel=1e-5)
    assert losses.si_snr(y, 7.0 * y_hat).item() == pytest.approx(losses.si_snr(y, y_hat).item(), rel=1e-5)


def test_gaussian_kl_by_hand():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    expected = 0.5 * ((1 + 1 - 0 - 1) + (0 + 2 - math.log(2.0) - 1))
    assert losses.gaussian_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    assert losses.gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("loss", [losses.generalized_kl, losses.squared_error, losses.snr, losses.si_snr,
                                  losses.gaussian_kl])
def test_every_loss_rejects_mismatched_shapes_naming_them(loss):
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        loss(torch.ones(2, 3), torch.ones(2, 4))


@pytest.mark.parametrize("loss", [losses.generalized_kl, losses.squared_error, losses.snr, losses.si_snr])
def test_every_loss_returns_one_value_per_item(loss):
    assert loss(torch.rand(5, 7) + 0.1, torch.rand(5, 7) + 0.1).shape == (5,)
