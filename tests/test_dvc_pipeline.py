"""The user's workflow on a copy of the repository: `dvc repro` builds everything from the demo corpus, a second
run does nothing, and changing one dataset's parameter re-runs only that dataset's stage."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.shards import read_manifest
from pipeline.testing.audio import REPO_ROOT

COPIED = ("pipeline", "stages", "corpora", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore")


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout + done.stderr


def _dvc(*args: str, cwd: Path) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["corpora"]["sc09"]["demo"].update(speakers=6, takes=1, valid_fraction=0.2, test_fraction=0.2)
    params["corpora"]["grid"]["demo"]["utterances"] = 30
    params["corpora"]["movie_sfx"]["demo"].update(per_kind=4, seconds=3.0)
    for spec in params["datasets"].values():
        spec["sizes"]["demo"] = {"train": 24, "valid": 6, "test": 6}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], root)
    _dvc("init", "-q", cwd=root)
    return root


def test_repro_builds_every_dataset_then_is_a_no_op(project):
    first = _dvc("repro", cwd=project)
    assert {"fetch@sc09", "prepare@grid", "mix@d1", "mix@d4"} <= _ran_stages(first)
    for dataset in ("d1", "d2", "d3", "d4"):
        assert read_manifest(project / "data" / "mixtures" / dataset / "train")["rows"] == 24
        sheet = json.loads((project / "reports" / "data" / f"{dataset}.json").read_text())
        assert sheet["splits"]["test"]["mixtures"] == 6 and sheet["profile"] == "demo"
        assert all(shard["sha256"] for shards in sheet["shards"].values() for shard in shards)
    d3 = json.loads((project / "reports" / "data" / "d3.json").read_text())
    assert set(d3["classes"]) == {"female", "male", "background"} and "grid" in d3["corpora"]
    assert _ran_stages(_dvc("repro", cwd=project)) == set()


def test_changing_one_dataset_reruns_only_its_stage(project):
    _dvc("repro", cwd=project)
    before = {d: (project / "reports" / "data" / f"{d}.json").read_text() for d in ("d1", "d2")}
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"]["d2"]["seed"] = 99
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _ran_stages(_dvc("repro", cwd=project)) == {"mix@d2"}
    assert (project / "reports" / "data" / "d1.json").read_text() == before["d1"]
    assert (project / "reports" / "data" / "d2.json").read_text() != before["d2"]


def test_dag_names_every_stage(project):
    dag = _dvc("dag", "--md", cwd=project)
    for stage in ("fetch@movie_sfx", "prepare@sc09", "mix@d3"):
        assert stage in dag
