"""The NMF baseline: its updates (hand-computed, non-increasing divergence), labels as masks, separation, model
files, a tiny training run and its rows in the evaluation grid."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from pipeline.evaluation.run import evaluate_dataset
from pipeline.evaluation.systems import systems_for
from pipeline.models import nmf
from pipeline.models.checkpoint import save_atomic
from pipeline.models.train import train_variant
from pipeline.separators.signal import SignalSettings, signal_settings
from pipeline.testing.datasets import build_tiny_dataset


def test_one_update_of_each_factor_by_hand():
    magnitudes = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # V (B=1, T=2, F=2)
    dictionary = torch.tensor([[0.5, 0.5]])                 # W (R=1, F=2)
    activations = torch.ones(1, 2, 1)                        # H (B, T, R): HW = 0.5 everywhere
    # V / HW = [[2, 4], [6, 8]]; (V / HW) W^T = [[3], [7]]; W 1 = 1  ->  H = [[3], [7]]
    assert nmf.update_activations(magnitudes, dictionary, activations).flatten().tolist() == [3.0, 7.0]
    # sparsity adds to the denominator: [[3 / 1.5], [7 / 1.5]]
    assert nmf.update_activations(magnitudes, dictionary, activations, sparsity=0.5).flatten().tolist() == \
        pytest.approx([2.0, 14.0 / 3.0])
    # H^T (V / HW) = [8, 12]; sum of H = 2  ->  W = 0.5 * [8, 12] / 2 = [2, 3]
    assert nmf.update_dictionary(magnitudes, dictionary, activations).flatten().tolist() == [2.0, 3.0]
    expected = sum(v * math.log(v / 0.5) - v + 0.5 for v in (1.0, 2.0, 3.0, 4.0))
    assert float(nmf.divergence(magnitudes, torch.full((1, 2, 2), 0.5))[0]) == pytest.approx(expected, rel=1e-6)


def test_updates_never_increase_the_divergence_and_keep_masked_activations_zero():
    generator = torch.Generator().manual_seed(0)
    magnitudes = torch.rand(3, 6, 10, generator=generator) ** 2
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    mask = nmf.activation_mask(labels, rank=3)
    dictionary = torch.rand(6, 10, generator=generator) + 0.1
    activations = nmf.initial_activations(3, 6, mask, generator)
    previous = float(nmf.divergence(magnitudes, activations @ dictionary).sum())
    for _ in range(25):
        activations = nmf.update_activations(magnitudes, dictionary, activations)
        after_h = float(nmf.divergence(magnitudes, activations @ dictionary).sum())
        dictionary = nmf.update_dictionary(magnitudes, dictionary, activations)
        dictionary, activations = nmf.normalise(dictionary, activations)
        after_w = float(nmf.divergence(magnitudes, activations @ dictionary).sum())
        assert after_h <= previous * (1 + 1e-6) and after_w <= after_h * (1 + 1e-6)
        previous = after_w
    assert torch.all(activations[0, :, 3:] == 0) and torch.all(activations[1, :, :3] == 0)
    assert torch.allclose(dictionary.sum(dim=1), torch.ones(6))


def test_separation_with_true_dictionaries_picks_the_right_classes():
    bins = 10
    dictionary = torch.zeros(2, bins)  # class 0 lives in bins 0-4, class 1 in bins 5-9 (rank 1 each)
    dictionary[0, :5], dictionary[1, 5:] = 0.2, 0.2
    model = nmf.NmfModel(dictionary, ["low", "high"], rank=1, info={})
    frames = torch.rand(2, 4, 1, generator=torch.Generator().manual_seed(1)) + 0.5
    only_low = frames[0] * dictionary[0]                    # (T, F): class 0 alone
    both = frames[1] * dictionary[0] + 2 * frames[1] * dictionary[1]
    magnitudes = torch.stack([only_low, both])
    candidates = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).expand(2, -1, -1)
    separated, labels = model.separate(magnitudes, candidates, 200, torch.Generator().manual_seed(2))
    assert labels[0].tolist() == [1.0, 0.0] and labels[1].tolist() == [1.0, 1.0]
    assert torch.allclose(separated[0, 0], only_low, rtol=1e-3, atol=1e-6) and torch.all(separated[0, 1] == 0)
    assert torch.allclose(separated[1, 1], 2 * frames[1] * dictionary[1], rtol=1e-3, atol=1e-6)


def test_model_files_round_trip_and_refuse_what_is_not_an_nmf_model(tmp_path):
    dictionary = torch.rand(6, 11)
    nmf.save_nmf(tmp_path / "model.pt", dictionary, ["a", "b", "c"], 2, {"variant": "v"})
    loaded = nmf.load_nmf(tmp_path / "model.pt")
    assert torch.equal(loaded.dictionary, dictionary) and loaded.classes == ["a", "b", "c"] and loaded.rank == 2
    save_atomic(tmp_path / "vae.pt", {"format": 2, "state_dict": {}})
    with pytest.raises(ValueError, match=r"vae\.pt is not an NMF model file"):
        nmf.load_nmf(tmp_path / "vae.pt")
    nmf.save_nmf(tmp_path / "bad.pt", -dictionary, ["a", "b", "c"], 2, {})
    with pytest.raises(ValueError, match="negative or non-finite"):
        nmf.load_nmf(tmp_path / "bad.pt")
    nmf.save_nmf(tmp_path / "short.pt", dictionary, ["a", "b"], 2, {})
    with pytest.raises(ValueError, match=r"does not hold 2 atoms for each of 2 classes"):
        nmf.load_nmf(tmp_path / "short.pt")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("nmf")
    params, data = build_tiny_dataset(root)
    results = {variant: train_variant(variant, params, data, root / "models" / variant, root / "scratch",
                                      progress=False) for variant in ("dt-nmf", "dt-nmf-class")}
    return params, root, data, results


def test_training_lowers_the_divergence_and_is_deterministic(trained, tmp_path):
    params, root, data, results = trained
    for variant, result in results.items():
        curve = result.curve
        assert len(curve) == 3 and curve[-1]["train_loss"] < curve[0]["train_loss"], variant
        assert result.summary["stopped_by"] == "iterations" and result.summary["best_step"] in (4, 8, 12)
    again = train_variant("dt-nmf", params, data, tmp_path / "again", tmp_path / "scratch", progress=False)
    assert again.summary == results["dt-nmf"].summary
    first = nmf.load_nmf(root / "models" / "dt-nmf" / "model.pt")
    assert torch.equal(nmf.load_nmf(tmp_path / "again" / "model.pt").dictionary, first.dictionary)
    assert first.info["supervision"] == "source" and first.info["step"] == results["dt-nmf"].summary["best_step"]
    assert signal_settings(first.info, "m") == SignalSettings(params.audio.sample_rate, params.stft.n_fft,
                                                              params.stft.hop_length,
                                                              params.stft.frames(params.audio.clip_samples))


def test_nmf_rows_are_evaluated_beside_the_others(trained):
    params, root, data, _ = trained
    params = dataclasses.replace(params, variants={k: v for k, v in params.variants.items() if k.startswith("dt-nmf")})
    keys = [s.key for s in systems_for("dt", params)]
    assert keys == ["reference.oracle.oracle", "reference.mixture.oracle", "nmf.forward.oracle",
                    "nmf.forward.classify", "nmf-class.forward.oracle", "nmf-class.forward.classify"]
    metrics = evaluate_dataset("dt", params, data, root / "models", root / "evaluation", progress=False)
    assert metrics["dt.nmf.forward.oracle.label_accuracy"] == 1.0
    assert math.isfinite(metrics["dt.nmf.forward.oracle.sdr_median"])
    assert metrics["dt.nmf.forward.oracle.sdr_median"] > metrics["dt.reference.mixture.oracle.sdr_median"]


def test_fitting_only_the_candidates_atoms_gives_what_masking_the_others_gives():
    generator = torch.Generator().manual_seed(3)
    model = nmf.NmfModel(torch.rand(4 * 3, 12, generator=generator) + 0.05, ["a", "b", "c", "d"], rank=3, info={})
    magnitudes = torch.rand(3, 5, 12, generator=generator)
    pairs = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]])
    # D(V | HW) is convex in H: both paths reach the same fit, from different random starts
    fast, fast_labels = model.separate(magnitudes, pairs.expand(3, -1, -1), 3000, torch.Generator().manual_seed(4))
    # the masked path: the same candidates plus an empty set (it never wins) makes the sizes differ
    padded = torch.cat([pairs, torch.zeros(1, 4)]).expand(3, -1, -1)
    slow, slow_labels = model.separate(magnitudes, padded, 3000, torch.Generator().manual_seed(5))
    assert torch.equal(fast_labels, slow_labels)
    assert torch.allclose(fast, slow, rtol=1e-3, atol=1e-4)
    assert torch.all(fast[fast_labels == 0] == 0)
