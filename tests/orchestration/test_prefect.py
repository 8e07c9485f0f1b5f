"""Against a real Prefect server on 127.0.0.1 (Prefect's test harness, temporary database): the runner-equivalence
test (one process vs a local Dask cluster of 2 workers), a DVC stage reporting its flow run, and the scheduled
`rebuild` deployment served, triggered, completed, with its metrics diff as a Markdown artifact."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

import pipeline.corpora.prepare as prepare_module
from stages.mix import run as mix_stage
from stages.prepare import run as prepare_stage
from pipeline.parallel import DaskMap
from pipeline.testing.audio import REPO_ROOT, write_sc09_layout
from pipeline.testing.http_server import LocalHTTPServer
from pipeline.testing.datasets import DIGITS, tiny_training_raw
from tests.orchestration.repos import dvc, make_repo, sh
from tests.orchestration.test_parallel import tree_digest

prefect = pytest.importorskip("prefect")
from prefect.client.orchestration import get_client  # noqa: E402
from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowFilter,  # noqa: E402
                                            FlowFilterName)
from prefect.deployments import run_deployment  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from flows.rebuild import ARTIFACT_KEY  # noqa: E402
from flows.runners import STAGE_TAG, run_stage_flow  # noqa: E402
from tests.orchestration.repos import write_training_reports


@pytest.fixture(scope="module")
def api_url() -> str:
    with prefect_test_harness(server_startup_timeout=240):
        yield prefect.settings.PREFECT_API_URL.value()


def _env(api_url: str) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_outputs_are_byte_identical_in_one_process_and_on_a_dask_cluster(api_url, tmp_path, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(prepare_module, "BATCH_RECORDINGS", 4)  # several decode tasks per split
    write_sc09_layout(tmp_path / "raw", DIGITS, speakers=6)
    raw = tiny_training_raw()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))

    def build(kind: str, params: Path, flow: bool, parallel=None) -> dict[str, str]:
        out = tmp_path / kind
        arguments = dict(corpus="sc09", params=str(params), raw=str(tmp_path / "raw"), out=str(out / "clips" / "sc09"),
                         report=str(out / "clips_sc09.json"))
        mixing = dict(dataset="dt", params=str(params), clips=str(out / "clips"), out=str(out / "dt"),
                      datasheet=str(out / "dt.json"))
        if flow:
            run_stage_flow("prepare", **arguments, workers=2)
            run_stage_flow("mix", **mixing)
        else:
            prepare_stage(**arguments, progress=False, parallel=parallel)
            mix_stage(**mixing, progress=False, parallel=parallel)
        return tree_digest(out)

    single = build("single", tmp_path / "params.yaml", flow=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        raw["orchestration"] = {"scheduler_address": cluster.scheduler_address}
        (tmp_path / "dask.yaml").write_text(yaml.safe_dump(raw))
        on_dask = build("dask-prefect", tmp_path / "dask.yaml", flow=True)  # prefect-dask DaskTaskRunner
        plain_dask = build("dask-plain", tmp_path / "dask.yaml", flow=False,
                           parallel=DaskMap(cluster.scheduler_address))
    assert len(single) == 16 and single == on_dask == plain_dask  # shards, manifests, reports, datasheet
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["prepare"])))
        assert any(run.state.is_completed() for run in runs)
        decode = [t for t in client.read_task_runs() if t.name.startswith("sc09/")]
        assert len(decode) >= 4 and all(t.state.is_completed() for t in decode)


def test_downloads_are_tasks_retried_with_back_off_and_the_recipe_reuses_them(api_url, tmp_path):
    corpus = write_sc09_layout(tmp_path / "corpus", DIGITS, speakers=3)
    (tmp_path / "served").mkdir()
    archive = tmp_path / "served" / "speech_commands.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(corpus.rglob("*")):
            tar.add(path, arcname=path.relative_to(corpus).as_posix(), recursive=False)
    raw = tiny_training_raw()
    raw["profile"] = "paper"
    server = LocalHTTPServer(tmp_path / "served", fail_first_n=2, fail_status=503)
    with server as base_url:
        raw["corpora"]["sc09"]["paper"] = {"url": f"{base_url}/{archive.name}",
                                           "sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        report = run_stage_flow("fetch", corpus="sc09", params=str(tmp_path / "params.yaml"),
                                out=str(tmp_path / "raw"), downloads_dir=str(tmp_path / "downloads"), backoff_s=0.2)
    assert server.request_count == 3  # two 503s, then the file; the recipe found it in the cache
    assert report["profile"] == "paper" and (tmp_path / "raw" / "zero" / "spk00000_nohash_0.wav").is_file()
    with get_client(sync_client=True) as client:
        attempts = [t for t in client.read_task_runs() if t.name == "download sc09"]
    assert len(attempts) == 1 and attempts[0].run_count == 3 and attempts[0].state.is_completed()


def test_a_dvc_stage_reports_its_flow_run_when_a_server_is_configured(api_url, tmp_path):
    reports = write_training_reports(tmp_path / "training")
    done = subprocess.run([sys.executable, "-m", "stages.training_summary", "--reports", str(reports),
                           "--summary", str(tmp_path / "summary.md"), "--curves", str(tmp_path / "curves.png")],
                          cwd=REPO_ROOT, env=_env(api_url), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "summary.md").is_file()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["training_summary"])))
    assert len(runs) == 1 and runs[0].state.is_completed() and STAGE_TAG in runs[0].tags


def test_scheduled_rebuild_serves_runs_and_publishes_the_metrics_diff(api_url, tmp_path):
    remote = tmp_path / "remote"
    upstream = make_repo(tmp_path / "upstream", remote, value=1)
    workspace = tmp_path / "workspace"
    sh(["git", "clone", "-q", str(upstream), str(workspace)], tmp_path)
    (upstream / "params.yaml").write_text("value: 3\n")  # a colleague changes a parameter and pushes the commit
    sh(["git", "commit", "-q", "-am", "value 3"], upstream)

    raw = tiny_training_raw()
    raw["orchestration"] = {"rebuild": {"cron": "0 4 * * 1", "timezone": "Europe/Istanbul", "git_pull": True,
                                        "dvc_pull": True, "dvc_push": True, "remote": "store"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "flows.serve", "--params", str(tmp_path / "params.yaml"),
                               "--repo", str(workspace)], cwd=REPO_ROOT, env=_env(api_url), stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        with get_client(sync_client=True) as client:
            deployment = _wait_for_deployment(client, "rebuild/scheduled", server, tmp_path / "serve.log")
            schedule = deployment.schedules[0].schedule
            assert schedule.cron == "0 4 * * 1" and schedule.timezone == "Europe/Istanbul"
            assert deployment.parameters["git_pull"] and deployment.parameters["repo"] == str(workspace)

            run = run_deployment("rebuild/scheduled", timeout=400, poll_interval=2, as_subflow=False)
            assert run.state.is_completed(), (run.state, (tmp_path / "serve.log").read_text()[-4000:])
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    markdown = [a for a in artifacts if a.key == ARTIFACT_KEY]
    assert len(markdown) == 1 and markdown[0].type == "markdown"
    text = markdown[0].data
    assert "| metrics.json | score | 2 | 6 | 4 |" in text and "constant" not in text  # changed metrics only
    assert "`compute`" in text and "git pull, dvc pull, dvc repro, dvc push" in text
    assert "in sync" in dvc(workspace, "status", "--cloud")  # the rebuilt outputs are on the remote


def _wait_for_deployment(client, name: str, server: subprocess.Popen, log: Path, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"flows.serve exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            return client.read_deployment_by_name(name)
        except prefect.exceptions.ObjectNotFound:
            time.sleep(1)
    raise AssertionError(f"deployment {name} not registered in {timeout} s:\n{log.read_text()[-4000:]}")
