"""The parallel map without Prefect: the same bytes whichever way the parts run; stages without a server never import
Prefect; the rebuild summary table."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pipeline.corpora.prepare as prepare_module
from pipeline.config import parse_params
from pipeline.corpora.prepare import prepare_clips
from pipeline.corpora.registry import corpus_config
from pipeline.corpora.sc09 import list_sc09
from pipeline.mixing.build import build_dataset
from pipeline.orchestration.dvc import ran_stages, summary_markdown
from pipeline.parallel import Inline, LocalPool
from pipeline.testing.audio import REPO_ROOT, write_sc09_layout
from pipeline.testing.datasets import DIGITS, tiny_training_raw
from tests.orchestration.repos import write_training_reports


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_prepare_and_mix_are_byte_identical_inline_threaded_and_in_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "BATCH_RECORDINGS", 4)  # several batches per split
    params = parse_params(tiny_training_raw())
    recordings = list_sc09(corpus_config(params, "sc09"), write_sc09_layout(tmp_path / "raw", DIGITS, speakers=6))
    results = {}
    for name, parallel in (("library", None), ("inline", Inline()), ("threads", LocalPool("threads", 2)),
                           ("processes", LocalPool("processes", 2, window=2))):
        out = tmp_path / name
        with parallel or Inline():
            report = prepare_clips("sc09", recordings, out / "clips" / "sc09", params.audio, params.shards,
                                   progress=False, parallel=parallel)
            sheet = build_dataset("dt", params.datasets["dt"], params.audio, params.shards, out / "clips",
                                  out / "dt", progress=False, parallel=parallel)
        results[name] = (tree_digest(out), report.as_dict(), sheet)
    assert len(results["library"][0]) == 13  # shards + manifests, clips and mixtures
    for name, result in results.items():
        assert result == results["library"], name


def test_a_stage_without_a_prefect_server_does_not_import_prefect(tmp_path):
    reports = write_training_reports(tmp_path / "training")
    code = ("import runpy, sys; sys.argv = ['stages.training_summary', '--reports', sys.argv[1], '--summary', "
            "sys.argv[2], '--curves', sys.argv[3]]; runpy.run_module('stages.training_summary', run_name='__main__');"
            " print('PREFECT' if 'prefect' in sys.modules else 'NO-PREFECT')")
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PIPELINE_PREFECT")}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    done = subprocess.run([sys.executable, "-c", code, str(reports), str(tmp_path / "s.md"), str(tmp_path / "c.png")],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("NO-PREFECT") and "| v |" in (tmp_path / "s.md").read_text()


def test_rebuild_summary_lists_stages_and_changed_metrics():
    output = "Running stage 'mix@d1':\n> python -m stages.mix d1\nStage 'mix@d2' didn't change, skipping\n"
    assert ran_stages(output) == ["mix@d1"]
    diff = {"reports/data/d1.json": {"splits.train.mixtures": {"old": 600, "new": 24, "diff": -576}},
            "metrics.json": {"score": {"old": 0.5, "new": 0.75, "diff": 0.25}}}
    text = summary_markdown(diff, rev_before="a" * 40, rev_after="b" * 40, stages=["mix@d1"], steps=["dvc repro"])
    assert "| metrics.json | score | 0.5 | 0.75 | 0.25 |" in text
    assert "| reports/data/d1.json | splits.train.mixtures | 600 | 24 | -576 |" in text
    assert text.index("metrics.json") < text.index("reports/data/d1.json") and "`mix@d1`" in text
    assert "No metric changed." in summary_markdown({}, rev_before="a", rev_after="a", stages=[], steps=[])


def test_every_stage_kind_and_rebuild_has_its_flow():
    names = ["fetch", "prepare", "mix", "train", "evaluate", "training_summary", "rebuild"]
    code = f"import importlib; print([importlib.import_module('flows.' + n).FLOW.name for n in {names!r}])"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=dict(os.environ), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == str(names), done.stderr[-2000:]


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait() is missing


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find the workers")
def test_pool_workers_die_with_a_parent_killed_by_sigkill():
    code = ("import sys, time\n"
            "from pipeline.parallel import LocalPool\n"
            "pool = LocalPool('processes', 2)\n"
            "list(pool.map(time.sleep, [0.5, 0.5, 0.5, 0.5], task='sleep'))\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    workers: set[int] = set()
    try:
        assert owner.stdout.readline().strip() == "ready"
        workers = _descendants(owner.pid)
        assert len(workers) >= 2  # the fork server and its workers (and multiprocessing's resource tracker)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(_running(pid) for pid in workers):
            time.sleep(0.1)
        assert [pid for pid in workers if _running(pid)] == []
    finally:
        owner.kill()
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
