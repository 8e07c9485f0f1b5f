"""Deep clustering, SCE and DPCL++ (seed 003): the affinity loss against the explicit TF x TF formula, k-means
(hard: obvious clusters; soft: tends to hard as beta grows), SCE's loss by hand, the permutation-invariant L2, and
tiny training runs that lower each system's loss."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pipeline.config import parse_params
from pipeline.evaluation.run import evaluate_dataset
from pipeline.evaluation.systems import systems_for
from pipeline.metrics.separation import score_many
from pipeline.models import dpcl, kmeans
from pipeline.models.data import MixtureSplit
from pipeline.models.train.dpcl import dpcl_setup
from pipeline.models.train.loop import evaluate_objective
from pipeline.models.train.setup import build_model
from pipeline.testing.datasets import build_tiny_dataset, tiny_training_raw
from stages.train_dpcl import run as train_dpcl_stage


def _explicit_affinity(v: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """‖VVᵀ − YYᵀ‖²_F over the non-silent bins only, / N²: (N, E), (N, K), (N,) -> scalar."""
    keep = w > 0
    v, y = v[keep], y[keep]
    return (v @ v.T - y @ y.T).square().sum() / keep.sum() ** 2


def test_affinity_loss_equals_the_explicit_tf_by_tf_formula():
    g = torch.Generator().manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(3, 12, 4, generator=g), dim=-1)
    y = torch.nn.functional.one_hot(torch.randint(0, 3, (3, 12), generator=g), 3).float()
    w = (torch.rand(3, 12, generator=g) > 0.3).float()
    got = dpcl.affinity_loss(v, y, w)
    want = torch.stack([_explicit_affinity(v[b], y[b], w[b]) for b in range(3)])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # embeddings equal to the one-hot targets (E = K) give a loss of zero; silent bins never count
    assert float(dpcl.affinity_loss(y, y, w).abs().max()) < 1e-6
    v_silent = v.clone()
    v_silent[w == 0] = torch.randn(int((w == 0).sum()), 4, generator=g)
    torch.testing.assert_close(dpcl.affinity_loss(v_silent, y, w), got)


def test_ideal_binary_mask_and_silence_weights():
    sources = torch.tensor([[[[3.0, 0.1]], [[1.0, 0.2]], [[9.0, 9.0]]]])          # (1, 3, 1, 2), class 3 absent
    mask = dpcl.ideal_binary_mask(sources, torch.tensor([[1.0, 1.0, 0.0]]))
    torch.testing.assert_close(mask, torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]]))
    magnitudes = torch.tensor([[[1.0, 0.02, 0.005]]])                               # 0, -34, -46 dB
    torch.testing.assert_close(dpcl.silence_weights(magnitudes, -40.0), torch.tensor([[[1.0, 1.0, 0.0]]]))


def _blobs(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two mixtures of 60 points in 2-D: the first around 3 centres (0, 0), (5, 0), (0, 5); the second around 2."""
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    truth = torch.stack([torch.arange(60) % 3, torch.arange(60) % 2])
    points = centres[truth] + 0.3 * torch.randn(2, 60, 2, generator=g)
    return points, truth


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(((a.unsqueeze(0) == a.unsqueeze(1)) == (b.unsqueeze(0) == b.unsqueeze(1))).all())


def test_kmeans_finds_obvious_clusters_batched_with_different_counts():
    points, truth = _blobs(torch.Generator().manual_seed(1))
    active = torch.tensor([[True, True, True], [True, True, False]])
    labels, centroids = kmeans.kmeans(points, torch.ones(2, 60), active, steps=10, restarts=3,
                                      generator=torch.Generator().manual_seed(0))
    assert _same_partition(labels[0], truth[0]) and _same_partition(labels[1], truth[1])
    assert int(labels[1].max()) <= 1                                  # the inactive cluster is never used
    # zero-weight points (silent bins) move no centroid but are still assigned
    weights = torch.ones(2, 60)
    weights[:, :6] = 0
    far = points.clone()
    far[:, :6] += 100.0
    labels_w, centroids_w = kmeans.kmeans(far, weights, active, 10, 3, torch.Generator().manual_seed(0))
    assert float(centroids_w.abs().max()) < 10 and labels_w.shape == (2, 60)


def test_soft_kmeans_tends_to_hard_kmeans_as_beta_grows():
    points, _ = _blobs(torch.Generator().manual_seed(2))
    points = points + 1.5 * torch.randn(points.shape, generator=torch.Generator().manual_seed(3))  # overlapping
    weights, active = torch.ones(2, 60), torch.tensor([[True, True, True], [True, True, True]])
    start = kmeans.initial_centroids(points, weights, 3, torch.Generator().manual_seed(4))
    hard, hard_centroids, _ = kmeans.lloyd(points, weights, start, active, steps=5)
    one_hot = torch.nn.functional.one_hot(hard, 3).float()
    gaps = []
    for beta in (0.1, 1.0, 10.0, 1000.0):
        gamma, centroids = kmeans.soft_kmeans(points, weights, start, active, beta, steps=5)
        gaps.append(float((gamma - one_hot).abs().max()))
    assert gaps[0] > 0.3 and gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3
    torch.testing.assert_close(centroids, hard_centroids, atol=1e-3, rtol=0)


def test_contrastive_loss_against_a_hand_computed_case():
    # one bin, v = (1, 0); identities o_0 = (2, 0), o_1 = (0, 1), o_2 = (-1, 0); present: 0 and 1; dominant 0
    v = torch.tensor([[[1.0, 0.0]]])
    identities = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    dominant, present, w = torch.tensor([[0]]), torch.tensor([[1.0, 1.0, 0.0]]), torch.ones(1, 1)

    def log_sigmoid(x: float) -> float:
        return -math.log1p(math.exp(-x))
    # positive part: −(1/2)[log σ(+1·2) + log σ(−1·0)]
    positive = -(log_sigmoid(2.0) + log_sigmoid(0.0)) / 2
    got = dpcl.contrastive_loss(v, identities, dominant, present, w, 0, 0.0, None)
    assert float(got) == pytest.approx(positive, rel=1e-6)
    # negative sampling's expectation (validation): μ · mean over identities 1, 2 of −log σ(−v·o) = −log σ(0), −log σ(1)
    expected = positive + 0.5 * -(log_sigmoid(0.0) + log_sigmoid(1.0)) / 2
    got = dpcl.contrastive_loss(v, identities, dominant, present, w, 4, 0.5, None)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # sampled (training): every draw is 1 or 2, never the dominant 0, so the value lies between the two cases
    sampled = dpcl.contrastive_loss(v.expand(1, 500, 2), identities, dominant.expand(1, 500), present,
                                    torch.ones(1, 500), 3, 0.5, torch.Generator().manual_seed(0))
    low, high = positive + 0.5 * -log_sigmoid(1.0), positive + 0.5 * -log_sigmoid(0.0)
    assert low < float(sampled) < high and float(sampled) == pytest.approx(expected, abs=0.01)


def test_permutation_invariant_l2_takes_the_best_assignment_of_active_clusters():
    targets = torch.zeros(2, 3, 1, 2)
    targets[0, 0], targets[0, 1], targets[0, 2] = 1.0, 2.0, 3.0
    targets[1, 0], targets[1, 1] = 1.0, 2.0                      # mixture 2 has two sources
    estimates = targets[:, [2, 0, 1]].clone()
    estimates[1] = torch.stack([targets[1, 1], targets[1, 0] + 0.5, torch.zeros(1, 2)])
    active = torch.tensor([[True, True, True], [True, True, False]])
    torch.testing.assert_close(dpcl.permutation_invariant_l2(estimates, targets, active), torch.tensor([0.0, 0.25]))


def test_enhanced_masks_are_soft_masks_over_the_active_clusters_only():
    shape = dpcl.DpclShape("dpcl++", bins=6, hidden=4, layers=1, embedding=3, enhance_hidden=4, enhance_layers=1)
    model = build_model(shape, seed=0)
    magnitudes = torch.rand(2, 5, 6, generator=torch.Generator().manual_seed(0))
    active = torch.tensor([[True, True, True], [True, True, False]])
    masks = model.enhanced_masks(magnitudes, model.embed(magnitudes), torch.ones(2, 5, 6), active, 10.0, 2, 3,
                                 torch.Generator().manual_seed(0))
    torch.testing.assert_close(masks.sum(dim=1), torch.ones(2, 5, 6))
    masks = masks.detach()
    assert float(masks[1, 2].abs().max()) == 0.0 and bool((masks >= 0).all())
    embeddings = model.embed(magnitudes)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2, 5, 6))


def test_attractor_masks_from_the_sources_own_bins_separate_and_sum_to_one():
    """DANet: the attractor of each source is the mean embedding of the bins it owns; with embeddings that point
    at their owner, the soft masks give each bin to its owner, sum to 1 over the active clusters, and an
    inactive cluster gets nothing."""
    torch.manual_seed(0)
    owner = torch.randint(0, 2, (2, 5, 7))                                       # (B, T, F): which source
    directions = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2, 0.0], [-0.3, 1.0, 0.1]]), dim=-1)
    embeddings = torch.nn.functional.normalize(directions[owner] + 0.05 * torch.randn(2, 5, 7, 3), dim=-1)
    assignment = torch.nn.functional.one_hot(owner, 3).float().reshape(2, 35, 3)  # a third cluster: no bins
    weights = torch.ones(2, 35)
    attractors = dpcl.attractor_targets(embeddings.reshape(2, 35, 3), assignment, weights)
    np.testing.assert_allclose(attractors[:, :2].norm(dim=-1), 1.0, atol=0.02)    # near the unit directions
    active = torch.tensor([[True, True, False], [True, True, False]])
    masks = dpcl.EmbeddingSeparator.attractor_masks(embeddings, attractors * 10, active)   # (B, C, T, F)
    np.testing.assert_allclose(masks.sum(dim=1), 1.0, atol=1e-6)
    assert float(masks[:, 2].abs().max()) == 0.0
    assert torch.equal(masks[:, :2].argmax(dim=1), owner)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="SCE needs"):
        dpcl.DpclShape("sce", bins=4, hidden=2, layers=1, embedding=2)
    with pytest.raises(ValueError, match="affinity_loss"):
        dpcl.affinity_loss(torch.zeros(2, 3, 4), torch.zeros(2, 4, 2), torch.ones(2, 3))
    with pytest.raises(ValueError, match="every mixture needs"):
        kmeans.kmeans(torch.zeros(1, 3, 2), torch.ones(1, 3), torch.zeros(1, 2, dtype=torch.bool), 1, 1,
                      torch.Generator())


def _dpcl_raw() -> dict:
    raw = tiny_training_raw()
    raw["variants"] = {}
    raw["drnn"].update({"datasets": [], "ablation_datasets": {"demo": [], "paper": []}})
    raw["dpcl"].update({"hidden": {"demo": 12, "paper": 12}, "layers": {"demo": 1, "paper": 1},
                        "embedding": {"demo": 6, "paper": 6}, "datasets": ["dt"], "batch_size": {"demo": 8, "paper": 8},
                        "schedule": {"demo": {"max_steps": 9, "validate_every": 3},
                                     "paper": {"max_steps": 9, "validate_every": 3}},
                        "finetune": {"demo": {"max_steps": 6, "validate_every": 3},
                                     "paper": {"max_steps": 6, "validate_every": 3}}})
    raw["dpcl"]["plus"]["hidden"] = {"demo": 8, "paper": 8}
    raw["train"]["learning_rate"] = 0.01
    raw["evaluate"]["datasets"]["dt"]["speech"] = []      # no PESQ: these tests score the separation only
    return raw


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("dpcl")
    params, data = build_tiny_dataset(root, _dpcl_raw())
    summaries = train_dpcl_stage("dt", root / "params.yaml", data, root / "models" / "dt" / "dpcl",
                                 root / "reports" / "dpcl-dt", root / "scratch", timings=root / "timings",
                                 progress=False)
    return params, root, data, summaries


def test_tiny_training_lowers_each_systems_loss(trained):
    params, root, data, summaries = trained
    assert list(summaries) == ["dt-dpcl", "dt-sce", "dt-danet", "dt-dpcl++"]
    valid = MixtureSplit(data / "valid")
    cpu = torch.device("cpu")
    for system in params.dpcl.systems:
        setup = dpcl_setup("dt", system, params, valid.classes)
        model, info = dpcl.load_dpcl(dpcl.model_file(root / "models" / "dt", system))
        after = evaluate_objective(model, valid, setup.objective, 8, cpu)["loss"]
        start = build_model(setup.shape, setup.seed)
        if system == "dpcl++":   # its starting point is DPCL's trained embedding network
            start.load_state_dict(dpcl.load_dpcl(dpcl.model_file(root / "models" / "dt", "dpcl"))[0].state_dict(),
                                  strict=False)
            assert info["fine_tuned_from"] == "dpcl"
        before = evaluate_objective(start, valid, setup.objective, 8, cpu)["loss"]
        assert after < before, (system, before, after)
        assert info["step"] == summaries[f"dt-{system}"]["best_step"] and info["kind"] == "dpcl"
        assert (root / "reports" / "dpcl-dt" / f"dt-{system}.png").is_file()
    assert (root / "timings" / "train_dpcl@dt.json").is_file()


def test_dpcl_rows_are_scored_with_a_permutation_search(trained):
    params, root, data, _ = trained
    keys = [s.key for s in systems_for("dt", params)]
    assert keys == ["reference.oracle.oracle", "reference.mixture.oracle", "dpcl.forward.oracle",
                    "sce.forward.oracle", "danet.forward.oracle", "dpcl++.forward.oracle"]
    metrics = evaluate_dataset("dt", params, data, root / "models" / "dt", root / "evaluation", progress=False)
    for key in keys[2:]:
        assert math.isfinite(metrics[f"dt.{key}.sdr_median"]), key
    described = json.loads((root / "evaluation" / "systems.json").read_text())
    assert described["dpcl.forward.oracle"]["permutation"] is True
    assert described["reference.oracle.oracle"]["permutation"] is False
    raw = _dpcl_raw()
    raw["dpcl"]["datasets"] = []
    assert [s.key for s in systems_for("dt", parse_params(raw))] == keys[:2]


def test_separator_output_order_does_not_matter_to_the_scores(trained):
    """Swapping a permutation separator's two estimates changes nothing once the search has matched them."""
    params, root, data, _ = trained
    split = MixtureSplit(data / "test")
    batch = next(split.batches(4, shuffle=False))
    mixture, references = batch.mixture.numpy(), batch.sources.numpy()
    items, swapped = [], []
    for i in range(batch.size):
        present = np.flatnonzero(batch.labels[i].numpy())
        refs = references[i, present]
        estimate = refs + 0.3 * refs[::-1]                     # a leaky separation in known order
        items.append((f"m{i}", refs, estimate, mixture[i], [True, True], ["a", "b"]))
        swapped.append((f"m{i}", refs, estimate[::-1].copy(), mixture[i], [True, True], ["a", "b"]))
    known = score_many(items, 8600)
    searched = score_many(swapped, 8600, permutation=True)
    for column in ("sdr", "sir", "sar", "si_sdr"):
        np.testing.assert_allclose(searched[column], known[column], rtol=1e-9, atol=1e-9)
    assert float(score_many(swapped, 8600)["sdr"].mean()) < float(known["sdr"].mean()) - 3
