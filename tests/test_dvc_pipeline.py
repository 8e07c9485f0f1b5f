"""The user's workflow on a copy of the repository, with tiny sizes: `dvc repro` builds every stage from the demo
corpus (data, models, evaluation, report), a second run does nothing, changing one dataset's parameter re-runs only
that dataset's branch, and `dvc metrics diff` / `dvc plots diff` compare two commits."""
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

COPIED = ("pipeline", "stages", "flows", "corpora", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore")


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout + done.stderr


def _dvc(*args: str, cwd: Path) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def tiny_pipeline_params(params: dict) -> dict:
    """The repository's params shrunk so the whole pipeline runs in a few minutes on 2 cores."""
    params["corpora"]["sc09"]["demo"].update(speakers=6, takes=1, valid_fraction=0.2, test_fraction=0.2)
    params["corpora"]["grid"]["demo"]["utterances"] = 30
    params["corpora"]["movie_sfx"]["demo"].update(per_kind=4, seconds=3.0)
    for spec in params["datasets"].values():
        spec["sizes"]["demo"] = {"train": 24, "valid": 6, "test": 6}
    params["model"] = {"filters": [8, 8, 16], "kernel": 4, "stride": 2, "hidden": 32, "latent": 4}
    params["train"].update(batch_size=8, schedule={"demo": {"max_steps": 4, "validate_every": 2},
                                                   "paper": {"max_steps": 4, "validate_every": 2}})
    params["variants"] = {k: v for k, v in params["variants"].items()
                          if k in ("d1-source-vae", "d1-nmf-source", "d2-source-vae", "d2-class-vae", "d3-class-vae",
                                   "d4-wave-snr")}
    params["nmf"].update(rank=4, schedule={profile: {"train_iterations": 5, "test_iterations": 5}
                                           for profile in ("demo", "paper")})
    params["drnn"].update(width={"demo": 8, "paper": 8}, ablations={"drnn-kl": {"loss": "kl", "discriminative": 0.0}},
                          schedule={"demo": {"max_steps": 2, "validate_every": 1},
                                    "paper": {"max_steps": 2, "validate_every": 1}})
    params["dpcl"].update(hidden={"demo": 8, "paper": 8}, layers={"demo": 1, "paper": 1},
                          embedding={"demo": 4, "paper": 4}, datasets=["d1"], batch_size={"demo": 8, "paper": 8},
                          schedule={"demo": {"max_steps": 2, "validate_every": 1},
                                    "paper": {"max_steps": 2, "validate_every": 1}},
                          finetune={"demo": {"max_steps": 1, "validate_every": 1},
                                    "paper": {"max_steps": 1, "validate_every": 1}})
    params["evaluate"].update(batch_size=6, examples=1,
                              schedule={"demo": {"forward_mixtures": 6, "inverse_mixtures": 2, "inverse_iterations": 3},
                                        "paper": {"forward_mixtures": 6, "inverse_mixtures": 2, "inverse_iterations": 3}})
    params["scenes"].update(seconds={"demo": 6.0, "paper": 6.0}, ratios_db=[0.0, 6.0])
    params["priors"].update(variants={"d1": "d1-source-vae", "d2": "d2-source-vae"},
                            schedule={profile: {"mixtures": 2, "steps": 2, "blind_iterations": 3}
                                      for profile in ("demo", "paper")})
    params["priors"]["classical"]["datasets"] = ["d1", "d2"]
    params["generate"].update(variants={"d1-source-vae": {"dataset": "d1"}}, reference="d1-source-vae", samples=3,
                              gallery=1, griffin_lim_iterations=2, interpolation_steps=2)
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in COPIED:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, root / name)
    params = tiny_pipeline_params(yaml.safe_load((root / "params.yaml").read_text()))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], root)
    _dvc("init", "-q", cwd=root)
    # committed, as a clone is (dvclive, which the train stages log through, fails in a repository without commits)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "project"], root)
    return root


@pytest.fixture(scope="module")
def first_run(project) -> str:
    output = _dvc("repro", cwd=project)
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "first run"], project)
    return output


def test_repro_builds_everything(project, first_run):
    assert {"fetch@sc09", "prepare@grid", "mix@d1", "train@d2-class-vae", "train_drnn@d1", "train_drnn@d4",
            "train_dpcl@d1", "evaluate@d3", "scenes@d2",
            "evaluate_scenes@d3", "select_model", "training_summary", "generate@d1-source-vae",
            "report"} <= _ran_stages(first_run)
    for dataset in ("d1", "d2", "d3", "d4"):
        assert read_manifest(project / "data" / "mixtures" / dataset / "train")["rows"] == 24
        sheet = json.loads((project / "reports" / "data" / f"{dataset}.json").read_text())
        assert sheet["splits"]["test"]["mixtures"] == 6 and sheet["profile"] == "demo"
        assert (project / "reports" / "tables" / f"{dataset}.md").is_file()
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert "d2.class-vae.inverse_joint.classify.sdr_median" in metrics and list(metrics) == sorted(metrics)
    assert {"d1.drnn.forward.oracle.gnsdr", "d1.drnn-kl.forward.oracle.sdr_median", "d3.drnn.forward.classify.gsir"} \
        <= set(metrics) and "d2.drnn-kl.forward.oracle.sdr_median" not in metrics
    assert {"d1.dpcl.forward.oracle.sdr_median", "d1.sce.forward.oracle.sir_median",
            "d1.dpcl++.forward.oracle.gnsdr"} <= set(metrics) and "d3.dpcl.forward.oracle.sdr_median" not in metrics
    assert (project / "data" / "models" / "d1" / "dpcl" / "dpcl++" / "model.pt").is_file()
    assert (project / "data" / "models" / "d1" / "drnn" / "drnn-kl" / "model.pt").is_file()
    assert "| d1-drnn-kl |" in (project / "reports" / "training_summary.md").read_text()
    assert "scenes.d2.d2-source-vae.0dB.dialogue_si_sdri" in metrics
    assert "generate.d1-source-vae.zero.accuracy" in metrics
    assert "scenes.d3.d3-class-vae.+6dB.remix_fidelity" in metrics
    assert (project / "data" / "models" / "d2" / "d2-class-vae" / "model.pt").is_file()
    registry = json.loads((project / "models" / "registry.json").read_text())
    assert registry["default"] in ("d2-source-vae", "d2-class-vae", "d3-class-vae")
    assert all("scene_dialogue_si_sdri_0dB" in entry for entry in registry["models"].values())
    for figure in ("fig3_d1_bss_eval", "fig4_d2_bss_eval", "fig5_d4_si_snri", "fig6_d3_pesq", "training_curves",
                   "scenes_dialogue_si_sdri"):
        assert (project / "reports" / "plots" / f"{figure}.png").stat().st_size > 1000
    assert "profile demo" in (project / "reports" / "paper_comparison.md").read_text()
    assert "<audio" in (project / "reports" / "index.html").read_text()


def test_second_repro_is_a_no_op(project, first_run):
    assert _ran_stages(_dvc("repro", cwd=project)) == set()


def test_changing_one_dataset_reruns_only_its_branch_and_diffs_show_it(project, first_run):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"]["d2"]["seed"] = 99
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = _ran_stages(_dvc("repro", cwd=project))
    assert {"mix@d2", "train@d2-source-vae", "train@d2-class-vae", "train_drnn@d2", "evaluate@d2",
            "evaluate_scenes@d2", "report"} <= ran
    assert not ran & {"mix@d1", "mix@d3", "train@d1-source-vae", "train@d3-class-vae", "train_drnn@d1",
                      "evaluate@d1", "evaluate@d3", "scenes@d2", "scenes@d3", "evaluate_scenes@d3"}
    diff = json.loads(_dvc("metrics", "diff", "HEAD", "--json", cwd=project))
    assert any(key.startswith("d2.") for key in diff.get("reports/metrics.json", {}))
    assert not any(key.startswith("d1.") for key in diff.get("reports/metrics.json", {}))
    _dvc("plots", "diff", "HEAD", "--json", cwd=project)


def test_a_drnn_parameter_retrains_the_drnn_and_no_vae(project, first_run):
    path = project / "params.yaml"
    before = path.read_text()
    params = yaml.safe_load(before)
    params["drnn"]["discriminative"] = 0.1
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = set(json.loads(_dvc("status", "--json", cwd=project)))
    finally:
        path.write_text(before)
    assert {"train_drnn@d1", "train_drnn@d4", "evaluate@d2"} <= changed
    assert not any(stage.startswith("train@") for stage in changed), changed


def test_an_nmf_parameter_retrains_the_nmf_variants(project, first_run):
    path = project / "params.yaml"
    before = path.read_text()
    params = yaml.safe_load(before)
    params["nmf"]["rank"] += 1
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = set(json.loads(_dvc("status", "--json", cwd=project)))
    finally:
        path.write_text(before)
    assert "train@d1-nmf-source" in changed and "evaluate@d1" in changed, changed


def test_dag_names_every_stage(project):
    dag = _dvc("dag", "--md", cwd=project)
    for stage in ("fetch@movie_sfx", "prepare@sc09", "mix@d3", "train@d4-wave-snr", "evaluate@d1", "report"):
        assert stage in dag
