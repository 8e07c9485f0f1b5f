"""Training on a tiny dataset: every mode learns, a killed run resumes to the same weights, bad input is clear."""
from __future__ import annotations

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
from pipeline.models.data import MixtureSplit
from pipeline.models.objective import compute
from pipeline.models.train import FAULT_ENV, TrainingDivergedError, build_model, resolve_setup, train_variant
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


def _train_cli(root: Path, out: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "stages.train", "dt-source", "--params", str(root / "params.yaml"),
               "--data", str(root / "dt"), "--out", str(root / out), "--reports", str(root / out / "reports"),
               "--scratch", str(root / out / "scratch"), "--quiet"]
    return subprocess.run(command, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300)


def test_killed_run_resumes_to_the_same_weights(tiny):
    root = tiny[1].parent
    whole = _train_cli(root, "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = _train_cli(root, "resumed", {FAULT_ENV: "7"})  # mid-epoch: 24 mixtures, batch 8 -> 3 steps an epoch
    assert killed.returncode == -signal.SIGKILL
    assert not (root / "resumed" / "model.pt").exists() and any((root / "resumed" / "scratch").glob("*/last.pt"))
    resumed = _train_cli(root, "resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr and "at step 6" in resumed.stderr
    a, b = load_safely(root / "whole" / "model.pt"), load_safely(root / "resumed" / "model.pt")
    assert a["step"] == b["step"] and a["valid_reconstruction"] == b["valid_reconstruction"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert (root / "whole" / "reports" / "dt-source.csv").read_text().splitlines()[1:] and \
        [line.split(",")[:7] for line in (root / "whole" / "reports" / "dt-source.csv").read_text().splitlines()] == \
        [line.split(",")[:7] for line in (root / "resumed" / "reports" / "dt-source.csv").read_text().splitlines()]
    assert not any((root / "resumed" / "scratch").iterdir())  # cleaned after success


def test_model_file_loads_on_cpu_with_its_provenance(tiny, tmp_path):
    params, data = tiny
    summary = train_variant("dt-class", params, data, tmp_path / "m", tmp_path / "r", tmp_path / "s", progress=False)
    model, info = load_model(tmp_path / "m" / "model.pt", "cpu")
    assert info["classes"] == ["zero", "one", "two"] and info["variant"] == "dt-class"
    assert info["step"] == summary["best_step"] and len(info["data_shards"]) >= 2 and "torch" in info["versions"]
    assert not model.training and (tmp_path / "r" / "dt-class.png").stat().st_size > 1000


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

    monkeypatch.setattr("pipeline.models.train.compute", poisoned)
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at step 5; last good checkpoint: .*last\.pt \(step 3\)"):
        train_variant("dt-source", params, data, tmp_path / "m", tmp_path / "r", tmp_path / "s", progress=False)
    assert not (tmp_path / "m" / "model.pt").exists()


def test_dataset_with_other_classes_is_refused(tiny, tmp_path):
    _, data = tiny
    raw = tiny_training_raw()
    raw["datasets"]["dt"]["classes"] = {"zero": raw["datasets"]["dt"]["classes"]["zero"],
                                        "two": raw["datasets"]["dt"]["classes"]["two"]}
    raw["evaluate"]["datasets"]["dt"]["speech"] = ["zero"]
    with pytest.raises(ValueError, match=r"classes \['zero', 'one', 'two'\].*\['zero', 'two'\].*mix@dt"):
        train_variant("dt-source", parse_params(raw), data, tmp_path / "m", tmp_path / "r", tmp_path / "s")


def test_empty_split_is_refused(tiny, tmp_path):
    raw = tiny_training_raw()
    raw["datasets"]["dt"]["sizes"]["demo"]["valid"] = 0
    params, data = build_tiny_dataset(tmp_path, raw)
    with pytest.raises(ValueError, match="valid split .* is empty"):
        train_variant("dt-source", params, data, tmp_path / "m", tmp_path / "r", tmp_path / "s")
