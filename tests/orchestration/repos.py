"""Tiny git + DVC repositories for orchestration tests: one stage that writes a cached folder and a metrics file
from a parameter, and a local-directory DVC remote."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STAGE_SCRIPT = '''import json, pathlib, yaml
value = yaml.safe_load(open("params.yaml"))["value"]
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/data.txt").write_text(f"value {value}\\n" * 100)
pathlib.Path("metrics.json").write_text(json.dumps({"score": value * 2, "constant": 1}) + "\\n")
'''
DVC_YAML = '''stages:
  compute:
    cmd: python compute.py
    deps: [compute.py]
    params: [value]
    outs: [out]
    metrics:
      - metrics.json:
          cache: false
'''
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
                "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org"}


def sh(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    full = {**os.environ, **GIT_IDENTITY, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            **(env or {})}
    done = subprocess.run(args, cwd=cwd, env=full, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def dvc(cwd: Path, *args: str) -> str:
    return sh([sys.executable, "-m", "dvc", *args], cwd)


def make_repo(root: Path, remote: Path, value: int = 1) -> Path:
    """A committed git + DVC repo at `root` whose stage has run, its outputs pushed to the local remote `remote`."""
    root.mkdir(parents=True)
    sh(["git", "init", "-q", "-b", "main"], root)
    dvc(root, "init", "-q")
    dvc(root, "remote", "add", "-d", "store", str(remote))
    (root / "compute.py").write_text(STAGE_SCRIPT)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text(f"value: {value}\n")
    (root / ".gitignore").write_text("/out\n")
    dvc(root, "repro", "-q")
    sh(["git", "add", "-A"], root)
    sh(["git", "commit", "-q", "-m", "first"], root)
    dvc(root, "push", "-q")
    return root


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


def write_training_reports(reports: Path) -> Path:
    """One variant's training summary and curve, as the train stage writes them (input of training_summary)."""
    from pipeline.reports.training import write_variant_reports

    reports.mkdir(parents=True)
    write_variant_reports("v", [{"step": 3, "epoch": 0, "train_loss": 2.0, "valid_loss": 1.5,
                                 "valid_reconstruction": 1.0, "valid_kl": 0.1, "valid_classification": 0.5,
                                 "seconds": 1.0}],
                          {"best_step": 3, "steps": 3, "epochs": 1.0, "stopped_by": "max_steps",
                           "best_valid_reconstruction": 1.0, "device": "cpu"}, reports)
    return reports
