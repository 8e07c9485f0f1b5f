"""Training on a tiny dataset: every mode learns, a killed run resumes to the same weights and reports, callbacks
see every step and validation, bad input is clear."""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.config import parse_params
from pipeline.models import objective as objective_module
from pipeline.models.checkpoint import load_model, load_safely
from pipeline.separators.signal import SignalSettings, signal_settings
from pipeline.models.data import MixtureSplit
from pipeline.models.objective import compute
from pipeline.models.train import Callback, TrainingDivergedError, TrainingState, build_model, resolve_setup, \
    train_variant
from pipeline.testing.audio import REPO_ROOT
from pipeline.testing.datasets import build_tiny_dataset, tiny_training_raw


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def test_batches_are_deterministic_and_complete(tiny):
    _, data = tiny
    split = MixtureSplit(data / "train", cache_bytes=0)
    first = [b.mixture for b in split.batches(5, shuffle=True, seed=1, epoch=3, shuffle_groups=2)]
    again = [b.mixture for b in split.batches(5, shuffle=True, seed=1, epoch=3, shuffle_groups=2)]
    other = [b.mixture for b in split.batches(5, shuffle=True, seed=1, epoch=4, shuffle_groups=2)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert sum(m.shape[0] for m in first) == 24
    batch = next(iter(split.batches(24, shuffle=False)))
    assert torch.allclose(batch.sources.sum(dim=1), batch.mixture, atol=1e-5)
    assert torch.equal(batch.labels, (batch.sources.abs().amax(dim=2) > 0).float())


def test_batches_without_sources_hold_the_same_mixtures_and_labels(tiny):
    params, data = tiny
    split = MixtureSplit(data / "train")
    full, bare = (next(iter(split.batches(8, shuffle=True, seed=2, with_sources=w))) for w in (True, False))
    assert bare.sources is None and torch.equal(bare.mixture, full.mixture) and torch.equal(bare.labels, full.labels)
    class_objective = objective_module.Objective("class", "mag-kl", 1.0, 1.0, params.stft)
    model = build_model(resolve_setup("dt-class", params, ["zero", "one", "two"], 8600).shape, seed=0).eval()
    assert not class_objective.needs_sources
    assert torch.equal(compute(model, bare, class_objective).total, compute(model, full, class_objective).total)
    with pytest.raises(ValueError, match="needs the sources"):
        compute(model, bare, objective_module.Objective("source", "mag-kl", 1.0, 1.0, params.stft))


@pytest.mark.parametrize("variant, loss, precision", [
    ("dt-source", "mag-kl", "fp32"), ("dt-source", "mag-mse", "fp32"), ("dt-class", "mag-kl", "fp32"),
    ("dt-ae", "mag-kl", "fp32"), ("dt-wave", "wave-mse", "fp32"), ("dt-wave", "wave-snr", "fp32"),
    ("dt-wave", "wave-sisnr", "fp32"), ("dt-class", "mag-kl", "bf16"), ("dt-source", "wave-sisnr", "bf16")])
def test_each_supervision_and_loss_reduces_its_loss(tiny, variant, loss, precision):
    params, data = tiny
    batch = next(iter(MixtureSplit(data / "train").batches(16, shuffle=False)))
    setup = resolve_setup(variant, params, ["zero", "one", "two"], 8600)
    objective = objective_module.Objective(setup.objective.supervision, loss, 1.0, 1.0, params.stft, precision)
    model = build_model(setup.shape, seed=0).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    history = []
    for _ in range(40):
        terms = compute(model, batch, objective, generator)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
        history.append(terms.reconstruction.item())
    assert sum(history[-5:]) / 5 < sum(history[:5]) / 5


def test_bf16_runs_the_network_in_bfloat16_and_keeps_weights_and_losses_float32(tiny):
    params, data = tiny
    batch = next(iter(MixtureSplit(data / "train").batches(16, shuffle=False)))
    setup = resolve_setup("dt-class", params, ["zero", "one", "two"], 8600)
    model = build_model(setup.shape, seed=0).train()
    seen = []
    model.decoders[0].deconv[-1].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    fp32, bf16 = (compute(model, batch, objective_module.Objective("class", "mag-kl", 1.0, 1.0, params.stft, p),
                          torch.Generator().manual_seed(0)) for p in ("fp32", "bf16"))
    assert seen == [torch.float32, torch.bfloat16]
    assert bf16.total.dtype == torch.float32
    assert abs(bf16.total.item() - fp32.total.item()) < 0.02 * abs(fp32.total.item())  # same objective, rounded
    bf16.total.backward()
    assert all(p.grad is None or (p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all())
               for p in model.parameters())


def _train_cli(root: Path, out: str, kill_at_step: int | None = None) -> subprocess.CompletedProcess:
    entry = ["stages.train"] if kill_at_step is None else ["tests.models.faults", "--kill-at-step", str(kill_at_step)]
    command = [sys.executable, "-m", *entry, "dt-source", "--params", str(root / "params.yaml"),
               "--data", str(root / "dt"), "--out", str(root / out), "--reports", str(root / out / "reports"),
               "--scratch", str(root / out / "scratch"), "--timings", str(root / out / "timings"), "--quiet"]
    return subprocess.run(command, cwd=REPO_ROOT, env=os.environ, capture_output=True, text=True, timeout=300)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_killed_run_resumes_to_the_same_weights(tiny):
    root = tiny[1].parent
    whole = _train_cli(root, "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = _train_cli(root, "resumed", kill_at_step=7)  # mid-epoch: 24 mixtures, batch 8 -> 3 steps an epoch
    assert killed.returncode == -signal.SIGKILL
    assert not (root / "resumed" / "model.pt").exists() and any((root / "resumed" / "scratch").glob("*/last.pt"))
    resumed = _train_cli(root, "resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr and "at step 6" in resumed.stderr
    a, b = load_safely(root / "whole" / "model.pt"), load_safely(root / "resumed" / "model.pt")
    assert a["step"] == b["step"] and a["valid_reconstruction"] == b["valid_reconstruction"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # every report is byte-identical (no wall-clock figure in them); the timings are apart
    whole_reports = _tree(root / "whole" / "reports")
    assert {"dt-source/metrics.json", "dt-source/plots/metrics/valid_loss.tsv", "dt-source.png"} <= set(whole_reports)
    assert whole_reports == _tree(root / "resumed" / "reports")
    assert b"seconds" not in b"".join(whole_reports.values())
    timing = json.loads((root / "resumed" / "timings" / "train@dt-source.json").read_text())
    assert timing["mixtures_per_second"] > 0 and [v["step"] for v in timing["validations"]] == [3, 6, 9, 12]
    assert not any((root / "resumed" / "scratch").iterdir())  # cleaned after success


def test_model_file_loads_on_cpu_with_its_provenance(tiny, tmp_path):
    params, data = tiny
    result = train_variant("dt-class", params, data, tmp_path / "m", tmp_path / "s", progress=False)
    model, info = load_model(tmp_path / "m" / "model.pt", "cpu")
    assert info["classes"] == ["zero", "one", "two"] and info["variant"] == "dt-class"
    assert info["step"] == result.summary["best_step"] and len(info["data_shards"]) >= 2 and "torch" in info["versions"]
    assert not model.training and result.writer
    assert [row["step"] for row in result.curve] == [3, 6, 9, 12]
    assert "mixtures_per_second" in result.timing and "mixtures_per_second" not in result.summary
    mixtures = MixtureSplit(data / "train").batches(64, shuffle=False, with_sources=False)
    levels = torch.cat([batch.mixture.square().mean(dim=-1).sqrt() for batch in mixtures])
    assert info["mixture_rms"] == pytest.approx(float(levels.median()), rel=1e-5)  # the level it learnt at
    assert info["mixture_rms"] > info["target_rms"]  # two sources at the clip level sum above it
    # the signal settings enhance runs the model at, recorded and consistent with the network
    assert signal_settings(info, "m", model.shape.frames) == SignalSettings(
        params.audio.sample_rate, params.stft.n_fft, params.stft.hop_length,
        params.stft.frames(params.audio.clip_samples))


class _Recorder(Callback):
    def __init__(self, stop_at_validation: int | None = None):
        self.steps: list[int] = []
        self.validations: list[int] = []
        self.stop_at_validation = stop_at_validation

    def on_step(self, state: TrainingState) -> None:
        self.steps.append(state.step)

    def on_validation(self, state: TrainingState) -> None:
        self.validations.append(state.curve[-1]["step"])
        if state.step == self.stop_at_validation:
            raise RuntimeError(f"injected fault at step {state.step}")


def test_callbacks_see_every_step_and_validation_and_a_raising_one_stops_after_the_checkpoint(tiny, tmp_path):
    params, data = tiny
    recorder = _Recorder()
    train_variant("dt-source", params, data, tmp_path / "m", tmp_path / "s", progress=False, callbacks=[recorder])
    assert recorder.steps == list(range(1, 13)) and recorder.validations == [3, 6, 9, 12]
    failing = _Recorder(stop_at_validation=6)
    with pytest.raises(RuntimeError, match="injected fault at step 6"):
        train_variant("dt-source", params, data, tmp_path / "m2", tmp_path / "s2", progress=False,
                      callbacks=[failing])
    assert failing.steps == list(range(1, 6)) and not (tmp_path / "m2" / "model.pt").exists()
    (checkpoint,) = (tmp_path / "s2").glob("*/last.pt")
    assert load_safely(checkpoint)["state"]["step"] == 6


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/pipeline-pwned",))


def test_checkpoints_never_execute_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"format": 1, "x": _Exploit()}, handle)
    Path("/tmp/pipeline-pwned").unlink(missing_ok=True)
    with pytest.raises(ValueError, match="not a loadable checkpoint"):
        load_safely(path)
    assert not Path("/tmp/pipeline-pwned").exists()
    with pytest.raises(FileNotFoundError, match="train it first"):
        load_safely(tmp_path / "missing.pt")


def test_nan_loss_stops_with_step_and_checkpoint_and_saves_no_model(tiny, tmp_path, monkeypatch):
    params, data = tiny
    real = compute
    calls = {"n": 0}

    def poisoned(model, batch, objective, generator=None):
        terms = real(model, batch, objective, generator)
        if model.training:
            calls["n"] += 1
            if calls["n"] == 5:
                return objective_module.LossTerms(terms.total * float("nan"), terms.reconstruction, terms.kl,
                                                  terms.classification)
        return terms

    monkeypatch.setattr("pipeline.models.objective.compute", poisoned)  # what every `Objective.terms` calls
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at step 5; last good checkpoint: .*last\.pt \(step 3\)"):
        train_variant("dt-source", params, data, tmp_path / "m", tmp_path / "s", progress=False)
    assert not (tmp_path / "m" / "model.pt").exists()


def test_dataset_with_other_classes_is_refused(tiny, tmp_path):
    _, data = tiny
    raw = tiny_training_raw()
    raw["datasets"]["dt"]["classes"] = {"zero": raw["datasets"]["dt"]["classes"]["zero"],
                                        "two": raw["datasets"]["dt"]["classes"]["two"]}
    raw["evaluate"]["datasets"]["dt"]["speech"] = ["zero"]
    with pytest.raises(ValueError, match=r"classes \['zero', 'one', 'two'\].*\['zero', 'two'\].*mix@dt"):
        train_variant("dt-source", parse_params(raw), data, tmp_path / "m", tmp_path / "s")


def test_empty_split_is_refused(tiny, tmp_path):
    raw = tiny_training_raw()
    raw["datasets"]["dt"]["sizes"]["demo"]["valid"] = 0
    params, data = build_tiny_dataset(tmp_path, raw)
    with pytest.raises(ValueError, match="valid split .* is empty"):
        train_variant("dt-source", params, data, tmp_path / "m", tmp_path / "s")
