"""Projected gradient descent with class generators (seed 004) on a tiny VAE."""
from __future__ import annotations

import pytest
import torch

from pipeline.inference.prior_losses import Weights
from pipeline.inference.priors import PriorConfig, project, separate_with_priors
from pipeline.models.train import build_model
from pipeline.models.vae import ModelShape

SEED_WEIGHTS = Weights(ms=0.3, sd=0.4, mc=0.1, fc=0.8)


def test_box_projection_clamps_each_coordinate():
    z = torch.tensor([[0.5, -4.0, 3.5], [-0.2, 0.1, 0.0]])
    assert torch.equal(project(z, "box", 3.0), torch.tensor([[0.5, -3.0, 3.0], [-0.2, 0.1, 0.0]]))


def test_ball_projection_scales_outside_points_onto_the_sphere_and_keeps_inside_ones():
    z = torch.tensor([[3.0, 4.0], [0.3, 0.4]])      # norms 5 and 0.5
    projected = project(z, "ball", 2.0)
    assert torch.allclose(projected[0], torch.tensor([1.2, 1.6]))   # 2 * (3, 4) / 5
    assert torch.equal(projected[1], z[1])
    with pytest.raises(ValueError, match="projection 'cube'"):
        project(z, "cube", 1.0)


@pytest.fixture(scope="module")
def tiny():
    model = build_model(ModelShape(num_classes=3, filters=(8, 8, 16), hidden=32, latent=4), seed=0).eval()
    with torch.no_grad():
        truth = torch.tensor([[[1.5, -1.0, 0.5, 2.0], [-2.0, 1.0, 1.0, -0.5], [0.5, 0.5, -1.5, 1.0]],
                              [[-1.0, 2.0, -0.5, 0.0], [1.0, -1.5, 2.0, 0.5], [-0.5, 1.5, 0.5, -2.0]]])
        mixtures = model.decode_all(truth).sum(dim=1)
    return model, mixtures


@pytest.mark.parametrize("projection", ["box", "ball"])
def test_a_short_pgd_run_lowers_the_objective_and_stays_on_the_support(tiny, projection):
    model, mixtures = tiny
    config = PriorConfig(SEED_WEIGHTS, poolings=3, steps=12, learning_rate=0.05, projection=projection, radius=1.0)
    result = separate_with_priors(model, mixtures, config)
    assert result.sources.shape == (2, 3, 44, 201) and bool((result.sources >= 0).all())
    assert bool((result.final < result.initial).all())
    assert float((result.initial - result.final).min()) > 0.02 * float(result.initial.min())
    if projection == "box":
        assert float(result.latents.abs().max()) <= 1.0
    else:
        assert float(result.latents.norm(dim=-1).max()) <= 1.0 + 1e-5
    again = separate_with_priors(model, mixtures, config)
    assert torch.equal(again.sources, result.sources)  # zero start, no sampling: deterministic
    assert all(p.requires_grad for p in model.parameters())  # the model is left as it was


def test_bad_input_is_named(tiny):
    model, mixtures = tiny
    config = PriorConfig(SEED_WEIGHTS, steps=1)
    with pytest.raises(ValueError, match=r"magnitudes must be \(B, T=44, F=201\)"):
        separate_with_priors(model, mixtures[:, :10], config)
    with pytest.raises(ValueError, match="finite and non-negative"):
        separate_with_priors(model, -mixtures, config)
    with pytest.raises(ValueError, match="PriorConfig.projection = 'sphere'"):
        PriorConfig(SEED_WEIGHTS, projection="sphere")
