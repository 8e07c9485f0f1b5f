"""Per-stage wall times of a demo `dvc repro`, from the stages' own timing files, against the 15-minute budget.

Every stage writes `data/timings/stages/<stage>.json` when it succeeds (`stages.common.stage_clock`; never a DVC
output, so `dvc.lock` and `dvc metrics diff` see no timing noise). This script prints them grouped by stage kind
(fetch, prepare, mix, train, evaluate, ...), in pipeline order, with each kind's share and the total.

- without options: the timings of the last runs in this checkout (stages that DVC skipped keep older figures:
  the header says how old the oldest is);
- `--fresh`: clones this repository (HEAD, committed files only) into a temporary folder, links this
  checkout's `.venv`, runs `dvc repro` there from nothing, and prints that run's timings and its wall time,
  which is what the budget is about (the CI machine: 2 cores).

Usage (from the repository root):

    ./run.sh python -m benchmarks.bench_demo
    ./run.sh python -m benchmarks.bench_demo --fresh            # ~15 min on 2 cores
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ORDER = ("fetch", "prepare", "mix", "train", "train_drnn", "train_dpcl", "training_summary", "evaluate", "scenes",
         "evaluate_scenes", "select_model", "report")
BUDGET_SECONDS = 15 * 60


def read_timings(folder: Path) -> list[dict]:
    """Every stage timing file under `folder` (data/timings/stages), as dicts."""
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def print_table(timings: list[dict], wall: float | None = None) -> None:
    """Per stage kind: runs, seconds, share; then each run; then the total (and the `dvc repro` wall time)."""
    if not timings:
        print("no stage timings found: run `dvc repro` first (stages write data/timings/stages/<stage>.json)")
        return
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for timing in timings:
        by_kind[timing["stage"].split("@")[0]].append(timing)
    total = sum(t["seconds"] for t in timings) or 1e-9  # all-zero timings (tests): no division by zero
    kinds = sorted(by_kind, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))
    first = min(t["finished"] for t in timings)
    print(f"stage timings: {len(timings)} runs, finished {first} .. {max(t['finished'] for t in timings)}, "
          f"{timings[0].get('cpu', '?')}, {timings[0].get('cores', '?')} cores")
    header = f"{'stage':<28}{'runs':>5}{'seconds':>10}{'share':>8}   slowest"
    print(header)
    print("-" * (len(header) + 20))
    for kind in kinds:
        runs = by_kind[kind]
        seconds = sum(t["seconds"] for t in runs)
        slowest = max(runs, key=lambda t: t["seconds"])
        print(f"{kind:<28}{len(runs):>5}{seconds:>10.1f}{seconds / total:>8.0%}   "
              f"{slowest['stage']} {slowest['seconds']:.1f} s")
    print("-" * (len(header) + 20))
    print(f"{'sum of stages':<28}{len(timings):>5}{total:>10.1f}{1:>8.0%}   ({total / 60:.1f} min)")
    if wall is not None:
        verdict = "within" if wall <= BUDGET_SECONDS else "OVER"
        print(f"`dvc repro` wall time: {wall:.0f} s ({wall / 60:.1f} min): {verdict} the "
              f"{BUDGET_SECONDS // 60}-minute budget (DVC's own overhead: {wall - total:.0f} s)")


def fresh_run(keep: bool) -> tuple[list[dict], float]:
    """Clone HEAD into a temporary folder, run `dvc repro` there; returns its timings and wall seconds."""
    venv = REPO_ROOT / ".venv"
    if not (venv / "bin" / "python").exists():
        raise SystemExit(f"no virtual environment at {venv}: run ./run.sh once first")
    work = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    clone = work / "repo"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(venv)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "PIPELINE_PREFECT": "never"}
    print(f"fresh demo run in {clone} (HEAD of {REPO_ROOT}) ...", flush=True)
    started = time.perf_counter()
    subprocess.run([str(venv / "bin" / "dvc"), "repro", "--quiet"], cwd=clone, env=env, check=True)
    wall = time.perf_counter() - started
    timings = read_timings(clone / "data" / "timings" / "stages")
    if keep:
        print(f"kept {clone}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return timings, wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fresh", action="store_true", help="time a fresh `dvc repro` of HEAD in a temporary clone")
    ap.add_argument("--keep", action="store_true", help="with --fresh: keep the clone")
    ap.add_argument("--timings", type=Path, default=REPO_ROOT / "data" / "timings" / "stages",
                    help="timing folder to read without --fresh")
    args = ap.parse_args(argv)
    if args.fresh:
        timings, wall = fresh_run(args.keep)
        print_table(timings, wall)
    else:
        print_table(read_timings(args.timings))


if __name__ == "__main__":
    sys.exit(main())
