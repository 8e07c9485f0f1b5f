"""Training on 2 CPU processes (torchrun, gloo, DistributedDataParallel) on the tiny dataset: the curve follows
the single-process one, nothing deadlocks, rank 0 alone writes, and a killed run resumes from its checkpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.models.checkpoint import load_safely
from pipeline.orchestration.distributed import torchrun_command
from pipeline.reports.training import read_curves
from pipeline.testing.audio import REPO_ROOT
from pipeline.testing.datasets import build_tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    build_tiny_dataset(root)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["orchestration"] = {"train_processes": 2}
    (root / "params-2.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return root


def _train(root: Path, out: str, params: str = "params.yaml", *, torchrun: bool = False,
           kill_at_step: int | None = None) -> subprocess.CompletedProcess:
    args = ["dt-source", "--params", str(root / params), "--data", str(root / "dt"), "--out", str(root / out),
            "--reports", str(root / out / "reports"), "--scratch", str(root / out / "scratch"),
            "--timings", str(root / out / "timings"), "--quiet"]
    entry = ["-m", "stages.train"] if kill_at_step is None else \
        ["-m", "tests.models.faults", "--kill-at-step", str(kill_at_step)]  # installs a killing callback
    command = torchrun_command(2, [*entry, *args]) if torchrun else [sys.executable, *entry, *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PIPELINE_PREFECT": "never"})


def _curve(reports: Path) -> list[dict[str, float]]:
    return read_curves(reports)["dt-source"]


def test_two_processes_follow_the_single_process_curve_and_rank_zero_alone_writes(tiny):
    single = _train(tiny, "single")
    assert single.returncode == 0, single.stderr[-2000:]
    double = _train(tiny, "double", "params-2.yaml")  # orchestration.train_processes: 2 -> relaunched on torchrun
    assert double.returncode == 0, double.stderr[-3000:]
    assert "nproc_per_node=2" in double.stderr

    one = _curve(tiny / "single" / "reports")
    two = _curve(tiny / "double" / "reports")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [3, 6, 9, 12]
    for a, b in zip(one, two):  # the same batches, split in two: the same curve up to rounding and batch norm
        assert abs(a["valid_reconstruction"] - b["valid_reconstruction"]) < 1e-3 * abs(a["valid_reconstruction"])
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-3 * abs(a["train_loss"])
    assert two[-1]["valid_reconstruction"] < two[0]["valid_reconstruction"]

    assert sorted(p.name for p in (tiny / "double").iterdir()) == ["model.pt", "reports", "scratch", "timings"]
    assert sorted(p.name for p in (tiny / "double" / "reports").iterdir()) == ["dt-source", "dt-source.png"]
    assert sorted(p.name for p in (tiny / "double" / "reports" / "dt-source").iterdir()) == ["metrics.json", "plots"]
    assert [p.name for p in (tiny / "double" / "timings").iterdir()] == ["train@dt-source.json"]
    summary = json.loads((tiny / "double" / "reports" / "dt-source" / "metrics.json").read_text())
    assert summary["steps"] == 12 and "mixtures_per_second" not in summary
    assert not any((tiny / "double" / "scratch").iterdir())
    model = load_safely(tiny / "double" / "model.pt")
    assert model["step"] == min(two, key=lambda r: r["valid_reconstruction"])["step"]


def test_a_killed_distributed_run_resumes_from_the_one_checkpoint_rank_zero_wrote(tiny):
    whole = _train(tiny, "whole", torchrun=True)
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _train(tiny, "resumed", torchrun=True, kill_at_step=7)  # after the step-6 checkpoint
    assert killed.returncode != 0 and not (tiny / "resumed" / "model.pt").exists()
    checkpoints = [p for p in (tiny / "resumed" / "scratch").rglob("*") if p.is_file()]
    assert [p.name for p in checkpoints] == ["last.pt"]
    saved = load_safely(checkpoints[0])
    assert saved["state"]["step"] == 6 and len(saved["generators"]) == 2

    resumed = _train(tiny, "resumed", torchrun=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "at step 6" in resumed.stderr
    a, b = load_safely(tiny / "whole" / "model.pt"), load_safely(tiny / "resumed" / "model.pt")
    assert a["step"] == b["step"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])  # as in one process
