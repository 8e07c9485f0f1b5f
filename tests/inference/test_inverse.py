"""Inverse (VAD) inference on a tiny model, with mixtures the model itself can represent exactly.

x = f_0(z_0) + f_2(z_2) for known latents, so the true pair {0, 2} is the right answer and its objective can be
driven close to zero, while the wrong pairs cannot reach it.
"""
from __future__ import annotations

import pytest
import torch

from pipeline.inference.inverse import InverseConfig, all_combinations, inverse_exhaustive, inverse_joint
from pipeline.models.losses import generalized_kl
from pipeline.models.train import build_model
from pipeline.models.vae import ModelShape

TINY = ModelShape(num_classes=3, filters=(8, 8, 16), hidden=32, latent=4)
TRUE_PAIR = [1.0, 0.0, 1.0]


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny problems are overhead-bound; one thread avoids contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    return build_model(TINY, seed=0).eval()


@pytest.fixture(scope="module")
def mixtures(model):
    """(5, T, F) mixtures f_0(z_0) + f_2(z_2) of known latents."""
    z = torch.randn(5, 3, TINY.latent, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        sources = model.decode_all(z)
    return sources[:, 0] + sources[:, 2]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_all_combinations_order_and_sizes():
    every = all_combinations(3)
    assert every.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]]
    assert all_combinations(3, [2]).tolist() == [[1, 1, 0], [1, 0, 1], [0, 1, 1]]
    assert all_combinations(5, [2]).shape == (10, 5)
    with pytest.raises(ValueError, match="1..3"):
        all_combinations(3, [0])
    with pytest.raises(ValueError, match="1..3"):
        all_combinations(3, [4])


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="restarts"):
        InverseConfig(restarts=0)
    with pytest.raises(ValueError, match="init_var"):
        InverseConfig(init_var=0.0)


def test_objective_decreases(model, mixtures):
    start = InverseConfig(iterations=0)
    trained = InverseConfig(iterations=60)
    combos = all_combinations(3, [2])
    before = inverse_exhaustive(model, mixtures, combos, start, seeded())
    after = inverse_exhaustive(model, mixtures, combos, trained, seeded())
    assert before.iterations == 0 and after.iterations == 60
    assert (after.objective < before.objective).all()
    before = inverse_joint(model, mixtures, start, seeded())
    after = inverse_joint(model, mixtures, trained, seeded())
    assert (after.objective < 0.5 * before.objective).all()
    assert ((after.weights > 0) & (after.weights < 1)).all()
    assert (after.labels.sum(dim=1) >= 1).all()


def test_exhaustive_finds_the_true_pair(model, mixtures):
    config = InverseConfig(iterations=100)
    combos = all_combinations(3, [2])
    result = inverse_exhaustive(model, mixtures, combos, config, seeded())
    truth = torch.tensor(TRUE_PAIR)
    assert int((result.labels == truth).all(dim=1).sum()) >= 4
    assert torch.equal(result.weights, result.labels)
    right_error = (result.sources.sum(dim=1) - mixtures).square().flatten(1).sum(dim=1)
    for wrong in ([1.0, 1.0, 0.0], [0.0, 1.0, 1.0]):
        other = inverse_exhaustive(model, mixtures, torch.tensor([wrong]), config, seeded())
        wrong_error = (other.sources.sum(dim=1) - mixtures).square().flatten(1).sum(dim=1)
        assert (right_error < 0.05 * wrong_error).all()
        assert (result.objective < other.objective).all()


def test_oracle_labels_give_those_sources(model, mixtures):
    labels = torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1], [1, 1, 0]])
    result = inverse_exhaustive(model, mixtures, labels.unsqueeze(1), InverseConfig(iterations=20), seeded())
    assert torch.equal(result.labels, labels) and torch.equal(result.weights, labels)
    assert result.sources.shape == (5, 3, TINY.frames, TINY.bins)
    assert (result.sources >= 0).all()
    assert (result.sources[labels == 0] == 0).all()
    assert (result.sources[labels == 1].flatten(1).sum(dim=1) > 0).all()
    assert torch.isfinite(result.objective).all()


def test_objective_is_the_reported_reconstruction_for_an_autoencoder(mixtures):
    ae = build_model(ModelShape(num_classes=3, filters=(8, 8, 16), hidden=32, latent=4, variational=False), seed=0)
    result = inverse_exhaustive(ae, mixtures, all_combinations(3, [2]), InverseConfig(iterations=20), seeded())
    assert torch.allclose(result.objective, generalized_kl(mixtures, result.sources.sum(dim=1)), rtol=1e-4)
    joint = inverse_joint(ae, mixtures, InverseConfig(iterations=20), seeded())
    assert torch.allclose(joint.objective, generalized_kl(mixtures, joint.sources.sum(dim=1)), rtol=1e-4)


def test_variational_objective_adds_the_kl_term(model, mixtures):
    config = InverseConfig(iterations=10, beta=10.0)
    result = inverse_exhaustive(model, mixtures, all_combinations(3, [2]), config, seeded())
    assert (result.objective > generalized_kl(mixtures, result.sources.sum(dim=1))).all()


def test_chunking_does_not_change_the_result(model, mixtures):
    config = InverseConfig(iterations=15, restarts=2)
    combos = all_combinations(3)
    whole = inverse_exhaustive(model, mixtures[:3], combos, config, seeded())   # 3 × 7 × 2 = 42 problems
    chunked = inverse_exhaustive(model, mixtures[:3], combos, config, seeded(), max_problems=5)
    _assert_same(whole, chunked, exact=False)
    whole = inverse_joint(model, mixtures, config, seeded())
    chunked = inverse_joint(model, mixtures, config, seeded(), max_problems=3)
    _assert_same(whole, chunked, exact=False)


def test_same_seed_same_result(model, mixtures):
    config = InverseConfig(iterations=10, restarts=2)
    combos = all_combinations(3, [2])
    first = inverse_exhaustive(model, mixtures, combos, config, seeded(3))
    _assert_same(first, inverse_exhaustive(model, mixtures, combos, config, seeded(3)), exact=True)
    other = inverse_exhaustive(model, mixtures, combos, config, seeded(4))
    assert not torch.equal(first.objective, other.objective)
    first = inverse_joint(model, mixtures, config, seeded(3))
    _assert_same(first, inverse_joint(model, mixtures, config, seeded(3)), exact=True)


def test_early_stopping_freezes_settled_problems(mixtures):
    ae = build_model(ModelShape(num_classes=3, filters=(8, 8, 16), hidden=32, latent=4, variational=False), seed=0)
    config = InverseConfig(iterations=200, tolerance=0.5, window=5)
    result = inverse_exhaustive(ae, mixtures[:2], all_combinations(3, [2]), config, seeded())
    assert config.window < result.iterations < config.iterations
    chunked = inverse_exhaustive(ae, mixtures[:2], all_combinations(3, [2]), config, seeded(), max_problems=1)
    _assert_same(result, chunked, exact=False)


def test_model_state_is_restored():
    model = build_model(TINY, seed=0).train()
    model.decoders[1].eval()
    for param in model.encoder.parameters():
        param.requires_grad_(False)
    modes = [module.training for module in model.modules()]
    flags = [param.requires_grad for param in model.parameters()]
    weights = [param.detach().clone() for param in model.parameters()]
    with torch.no_grad():  # the optimisation needs gradients even when the caller disabled them
        inverse_joint(model, torch.rand(2, TINY.frames, TINY.bins), InverseConfig(iterations=3), seeded())
    assert [module.training for module in model.modules()] == modes
    assert [param.requires_grad for param in model.parameters()] == flags
    assert all(param.grad is None for param in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))


def test_batch_norm_runs_in_evaluation_mode():
    """A training-mode model would mix the problems through batch statistics; results must not depend on it."""
    model = build_model(TINY, seed=0)
    x = torch.rand(3, TINY.frames, TINY.bins)
    config = InverseConfig(iterations=5)
    trained_mode = inverse_joint(model.train(), x, config, seeded())
    eval_mode = inverse_joint(model.eval(), x, config, seeded())
    _assert_same(trained_mode, eval_mode, exact=True)


@pytest.mark.parametrize("bad", [(44, 201), (2, 44, 200), (2, 40, 201), (0, 44, 201)])
def test_bad_magnitudes_raise_with_shape(model, bad):
    config = InverseConfig(iterations=1)
    with pytest.raises(ValueError, match=f"got \\({', '.join(map(str, bad))},?\\)"):
        inverse_joint(model, torch.rand(bad), config, seeded())
    with pytest.raises(ValueError, match="T=44, F=201"):
        inverse_exhaustive(model, torch.rand(bad), all_combinations(3), config, seeded())


def test_negative_magnitudes_raise(model):
    with pytest.raises(ValueError, match="non-negative"):
        inverse_joint(model, -torch.rand(1, 44, 201), InverseConfig(iterations=1), seeded())


@pytest.mark.parametrize("combos, message", [
    (torch.ones(3, 4), r"K=3.*got \(3, 4\)"),
    (torch.ones(4, 2, 3), r"B=2.*got \(4, 2, 3\)"),
    (torch.ones(2, 0, 3), r"C ≥ 1.*got \(2, 0, 3\)"),
    (torch.ones(3), r"got \(3,\)"),
    (torch.tensor([[1.0, 0, 0], [0, 0, 0]]), "at least one active class"),
    (torch.tensor([[0.5, 0, 1]]), "only 0 and 1"),
])
def test_bad_combinations_raise(model, combos, message):
    with pytest.raises(ValueError, match=message):
        inverse_exhaustive(model, torch.rand(2, 44, 201), combos, InverseConfig(iterations=1), seeded())


def _assert_same(a, b, exact: bool) -> None:
    assert a.iterations == b.iterations
    assert torch.equal(a.labels, b.labels)
    for name in ("sources", "weights", "objective"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape
        assert torch.equal(x, y) if exact else torch.allclose(x, y, rtol=1e-4, atol=1e-5), name
