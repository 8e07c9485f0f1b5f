"""The DRNN baseline (seed 002): the joint mask layer, the discriminative objective (hand-computed), a tiny training
run of each objective (deterministic, resumable), model files, and its rows in the evaluation grid and tables."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from pipeline.config import parse_params
from pipeline.evaluation.run import evaluate_dataset
from pipeline.evaluation.systems import systems_for
from pipeline.models import drnn
from pipeline.models.data import MixtureSplit
from pipeline.models.nmf import save_nmf
from pipeline.models.train.callbacks import Callback
from pipeline.models.train.drnn import drnn_setup, train_drnn
from pipeline.models.train.loop import evaluate_objective
from pipeline.models.train.setup import build_model
from pipeline.models.train.state import TrainingState
from pipeline.reports.training import summarise_training
from pipeline.testing.datasets import build_tiny_dataset, tiny_training_raw
from stages.train_drnn import run as train_drnn_stage

LN2 = math.log(2.0)


@pytest.mark.parametrize("recurrent", drnn.RECURRENT)
def test_mask_layer_outputs_are_non_negative_and_sum_to_the_mixture(recurrent):
    shape = drnn.DrnnShape(num_classes=3, bins=7, width=5, context=3, recurrent=recurrent)
    model = build_model(shape, seed=1)
    mixture = torch.rand(2, 6, 7, generator=torch.Generator().manual_seed(0))
    mixture[0, 2] = 0.0                                   # a silent frame stays silent
    estimates = model(mixture)
    assert estimates.shape == (2, 3, 6, 7) and bool((estimates >= 0).all())
    torch.testing.assert_close(estimates.sum(dim=1), mixture, rtol=1e-5, atol=1e-6)
    # without the mask layer: the linear outputs' magnitudes, which need not add up to anything
    unmasked = drnn.DeepRecurrentSeparator(dataclasses.replace(shape, mask=False))
    unmasked.load_state_dict(model.state_dict())
    torch.testing.assert_close(unmasked(mixture), model.raw(mixture).abs())
    assert not torch.allclose(unmasked(mixture).sum(dim=1), mixture)


def test_joint_mask_by_hand_and_the_recurrent_layer_sees_the_past():
    outputs = torch.tensor([[[[1.0, -3.0]], [[-1.0, 1.0]]]])      # ỹ (B=1, K=2, T=1, F=2)
    mixture = torch.tensor([[[4.0, 8.0]]])
    # |ỹ| / Σ|ỹ| ⊙ x: bin 0 splits 1:1 -> 2, 2; bin 1 splits 3:1 -> 6, 2
    torch.testing.assert_close(drnn.joint_mask(outputs, mixture), torch.tensor([[[[2.0, 6.0]], [[2.0, 2.0]]]]))
    shape = drnn.DrnnShape(num_classes=2, bins=4, width=8, recurrent=2)
    model, feedforward = build_model(shape, 0), build_model(dataclasses.replace(shape, recurrent=0), 0)
    mixture = torch.rand(1, 5, 4, generator=torch.Generator().manual_seed(3))
    changed = mixture.clone()
    changed[0, 0] += 1.0                                 # only the first frame differs
    assert not torch.allclose(model.raw(mixture)[:, :, 1:], model.raw(changed)[:, :, 1:])  # DRNN-2 remembers it
    torch.testing.assert_close(feedforward.raw(mixture)[:, :, 1:], feedforward.raw(changed)[:, :, 1:])


def _tiny_terms() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three classes, one mixture of classes 1 and 2 (class 3 absent), one frame of two bins."""
    targets = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]], [[0.0, 0.0]]]])          # y_1, y_2, y_3 = 0
    estimates = torch.tensor([[[[1.0, 1.0]], [[0.5, 1.0]], [[0.25, 0.25]]]])     # ŷ_1, ŷ_2, ŷ_3
    return targets, estimates, torch.tensor([[1.0, 1.0, 0.0]])


def test_discriminative_objective_against_hand_computed_values():
    targets, estimates, labels = _tiny_terms()
    # squared error. own: ‖ŷ1−y1‖² = 0 + 1, ‖ŷ2−y2‖² = 0.25 + 1, ‖ŷ3−0‖² = 0.0625 + 0.0625  -> 2.375
    # others (present j ≠ k only): ‖ŷ1−y2‖² = 1 + 1, ‖ŷ2−y1‖² = 0.25 + 1, ‖ŷ3−y1‖² = 0.5625 + 0.0625,
    # ‖ŷ3−y2‖² = 0.0625 + 3.0625  -> 7.0; the absent y3 is nobody's "other"
    own, others = drnn.separation_terms(targets, estimates, labels, "mse")
    assert float(own) == pytest.approx(2.375) and float(others) == pytest.approx(7.0)
    assert float(drnn.objective(targets, estimates, labels, "mse", 0.1)) == pytest.approx(2.375 - 0.7)
    # generalised KL, D(a‖b) = Σ a log(a/b) − a + b. own: D(y1‖ŷ1) = 0 + 1; D(y2‖ŷ2) = 0.5 + (2 ln 2 − 1);
    # D(0‖ŷ3) = 0.5  -> 1 + 2 ln 2. others: D(y2‖ŷ1) = 1 + (2 ln 2 − 1); D(y1‖ŷ2) = (ln 2 − 0.5) + 1;
    # D(y1‖ŷ3) = (ln 4 − 0.75) + 0.25; D(y2‖ŷ3) = 0.25 + (2 ln 8 − 1.75)  -> 11 ln 2 − 1.5
    own, others = drnn.separation_terms(targets, estimates, labels, "kl")
    assert float(own) == pytest.approx(1 + 2 * LN2, rel=1e-6)
    assert float(others) == pytest.approx(11 * LN2 - 1.5, rel=1e-6)
    assert float(drnn.objective(targets, estimates, labels, "kl", 0.05)) == \
        pytest.approx(1 + 2 * LN2 - 0.05 * (11 * LN2 - 1.5), rel=1e-6)


@pytest.mark.parametrize("name", drnn.DISTANCES)
def test_the_closed_form_of_the_other_sources_term_equals_every_pair_summed(name):
    generator = torch.Generator().manual_seed(2)
    labels = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    targets = torch.rand(3, 4, 5, 6, generator=generator) * labels[:, :, None, None]
    estimates = torch.rand(3, 4, 5, 6, generator=generator) + 0.05
    expected = torch.zeros(3)
    for b in range(3):
        for k in range(4):
            for j in range(4):
                if j != k and labels[b, j] > 0:
                    expected[b] += drnn.distance(name, targets[b, j][None], estimates[b, k][None])[0]
    torch.testing.assert_close(drnn.separation_terms(targets, estimates, labels, name)[1], expected, rtol=1e-5,
                               atol=1e-4)


def test_bad_shapes_are_refused_with_the_shapes_received():
    targets, estimates, labels = _tiny_terms()
    with pytest.raises(ValueError, match=r"targets \(1, 3, 1, 2\), estimates \(1, 2, 1, 2\)"):
        drnn.separation_terms(targets, estimates[:, :2], labels, "mse")
    with pytest.raises(ValueError, match="distance 'l1'"):
        drnn.separation_terms(targets, estimates, labels, "l1")
    with pytest.raises(ValueError, match=r"expected mixture magnitudes \(B, T, 7\)"):
        drnn.DeepRecurrentSeparator(drnn.DrnnShape(2, 7, 4))(torch.rand(1, 3, 8))
    with pytest.raises(ValueError, match="odd number"):
        drnn.DrnnShape(2, 7, 4, context=2)


def _drnn_raw() -> dict:
    raw = tiny_training_raw()
    raw["variants"] = {}
    raw["drnn"].update({"width": {"demo": 24, "paper": 24}, "datasets": ["dt"],
                        "schedule": {"demo": {"max_steps": 9, "validate_every": 3},
                                     "paper": {"max_steps": 9, "validate_every": 3}},
                        "ablations": {"drnn-kl": {"loss": "kl", "discriminative": 0.0},
                                      "drnn-mse": {"discriminative": 0.0}},
                        "ablation_datasets": {"demo": ["dt"], "paper": ["dt"]}})
    raw["train"]["learning_rate"] = 0.003
    return raw


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("drnn")
    params, data = build_tiny_dataset(root, _drnn_raw())
    summaries = train_drnn_stage("dt", root / "params.yaml", data, root / "models" / "dt" / "drnn",
                                 root / "reports" / "drnn-dt", root / "scratch", timings=root / "timings",
                                 progress=False)
    return params, root, data, summaries


def test_training_lowers_each_objective(trained):
    params, root, data, summaries = trained
    assert list(summaries) == ["dt-drnn", "dt-drnn-kl", "dt-drnn-mse"]
    valid = MixtureSplit(data / "valid")
    for name, settings in params.drnn.configurations("dt").items():
        setup = drnn_setup("dt", name, settings, params, valid.classes, valid.clip_samples)
        cpu = torch.device("cpu")
        before = evaluate_objective(build_model(setup.shape, setup.seed), valid, setup.objective, 8, cpu)
        model, info = drnn.load_drnn(drnn.model_file(root / "models" / "dt", name))
        after = evaluate_objective(model, valid, setup.objective, 8, cpu)
        assert after["loss"] < before["loss"] and after["reconstruction"] < before["reconstruction"], name
        assert info["objective"] == {"loss": settings.loss, "discriminative": settings.discriminative}
        assert info["step"] == summaries[f"dt-{name}"]["best_step"]
        assert (root / "reports" / "drnn-dt" / f"dt-{name}.png").is_file()
    assert (root / "timings" / "train_drnn@dt.json").is_file()
    # the training summary finds the DRNN's curves one level down, beside the variants'
    text = summarise_training(root / "reports", root / "summary.md", root / "curves.png")
    assert "| dt-drnn-kl |" in text and (root / "curves.png").is_file()


def test_training_is_deterministic(trained, tmp_path):
    params, root, data, summaries = trained
    only_main = dataclasses.replace(params, drnn=dataclasses.replace(params.drnn, ablation_datasets=()))
    again = train_drnn("dt", only_main, data, tmp_path / "models", tmp_path / "scratch", progress=False)
    assert [r.summary for r in again] == [summaries["dt-drnn"]]
    first = drnn.load_drnn(drnn.model_file(root / "models" / "dt", "drnn"))[0].state_dict()
    second = drnn.load_drnn(tmp_path / "models" / "drnn" / "model.pt")[0].state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


class _Interrupted(Exception):
    pass


class _InterruptAtStep(Callback):
    """Stops a run mid-way, after its first checkpoint (as a killed process would: the state after it is lost)."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, state: TrainingState) -> None:
        if state.step == self.step:
            raise _Interrupted(f"interrupted at step {state.step}")


def test_an_interrupted_run_resumes_to_the_same_weights(trained, tmp_path, caplog):
    params, root, data, summaries = trained
    only_main = dataclasses.replace(params, drnn=dataclasses.replace(params.drnn, ablation_datasets=()))
    with pytest.raises(_Interrupted):
        train_drnn("dt", only_main, data, tmp_path / "models", tmp_path / "scratch", progress=False,
                   callbacks=(_InterruptAtStep(5),))
    assert not (tmp_path / "models" / "drnn" / "model.pt").exists() and any((tmp_path / "scratch").glob("*/last.pt"))
    with caplog.at_level("INFO", logger="pipeline.models.train.loop"):
        resumed = train_drnn("dt", only_main, data, tmp_path / "models", tmp_path / "scratch", progress=False)
    assert "resuming from" in caplog.text and "at step 3" in caplog.text
    assert [r.summary for r in resumed] == [summaries["dt-drnn"]]
    first = drnn.load_drnn(drnn.model_file(root / "models" / "dt", "drnn"))[0].state_dict()
    second = drnn.load_drnn(tmp_path / "models" / "drnn" / "model.pt")[0].state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not any((tmp_path / "scratch").iterdir())  # cleaned after success


def test_model_files_round_trip_and_record_what_made_them(trained, tmp_path):
    params, root, data, _ = trained
    path = drnn.model_file(root / "models" / "dt", "drnn-kl")
    model, info = drnn.load_drnn(path)
    assert info["kind"] == "drnn" and info["classes"] == ["zero", "one", "two"]
    assert (info["sample_rate"], info["clip_samples"], info["stft"]) == (8600, 8600, {"n_fft": 400, "hop_length": 200})
    assert info["shape"] == {"num_classes": 3, "bins": 201, "width": 24, "context": 1, "recurrent": 2, "mask": True}
    copy = tmp_path / "copy.pt"
    drnn.save_drnn(copy, model, model.state_dict(), info["classes"], {"variant": info["variant"]})
    reloaded, _ = drnn.load_drnn(copy)
    mixture = torch.rand(2, 44, 201)
    torch.testing.assert_close(reloaded(mixture), model(mixture))
    save_nmf(tmp_path / "nmf.pt", torch.rand(6, 201), ["zero", "one", "two"], 2, {})
    with pytest.raises(ValueError, match="not a DRNN model file"):
        drnn.load_drnn(tmp_path / "nmf.pt")


def test_drnn_rows_are_in_the_grid_and_scored_like_every_system(trained):
    params, root, data, _ = trained
    keys = [s.key for s in systems_for("dt", params)]
    assert keys == ["reference.oracle.oracle", "reference.mixture.oracle", "drnn.forward.oracle",
                    "drnn.forward.classify", "drnn-kl.forward.oracle", "drnn-mse.forward.oracle"]
    assert {s.variant for s in systems_for("dt", params) if s.kind == "drnn"} == \
        {"dt-drnn", "dt-drnn-kl", "dt-drnn-mse"}
    metrics = evaluate_dataset("dt", params, data, root / "models" / "dt", root / "evaluation", progress=False)
    for key in ("drnn.forward.oracle", "drnn.forward.classify", "drnn-kl.forward.oracle"):
        assert math.isfinite(metrics[f"dt.{key}.sdr_median"]) and f"dt.{key}.gnsdr" in metrics
    assert metrics["dt.drnn.forward.oracle.label_accuracy"] == 1.0
    # no DRNN on a dataset outside drnn.datasets
    raw = _drnn_raw()
    raw["drnn"].update({"datasets": [], "ablation_datasets": {"demo": [], "paper": []}})
    assert [s.key for s in systems_for("dt", parse_params(raw))] == keys[:2]
