"""What every stage entry point shares: logging set-up, the params file option, and running the stage's work.

`run_stage` runs the stage as its Prefect flow (`flows/<kind>.py`) when a Prefect API is configured
(`PREFECT_API_URL` or the active Prefect profile), so `dvc repro` shows up in the Prefect UI; otherwise it calls
the same function (the stage module's `run`, which the flow calls too) directly, without importing Prefect. `PIPELINE_PREFECT`
overrides: `never`, or `always` (a temporary Prefect server per stage: ~20 s each, see README).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pipeline.orchestration.distributed import in_distributed_env
from pipeline.orchestration.settings import OrchestrationSettings, load_orchestration, use_prefect
from pipeline.parallel import ParallelMap, parallel_map

FANNED_OUT = ("prepare", "mix", "evaluate")  # stage kinds with parallel parts (`parallel=`)
STAGE_TIMINGS = Path("data/timings/stages")  # one <stage>.json per stage run: wall time, never a DVC output


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with `--params` (default params.yaml) and `--quiet`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def setup_logging() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@contextlib.contextmanager
def stage_clock(stage: str, folder: Path | None = None) -> Iterator[None]:
    """Time one run of `stage` (e.g. "evaluate@d1"); when it succeeds, write `<folder>/<stage>.json` (default
    STAGE_TIMINGS, or $PIPELINE_TIMINGS): seconds, finish time, CPU and cores. Outside every DVC output, since
    wall times differ on every run and the outputs never do; `benchmarks/bench_demo` reads them. torchrun's
    ranks write nothing (their launcher times the whole run)."""
    started = time.perf_counter()
    yield
    if in_distributed_env():
        return
    from pipeline.shards import write_json

    folder = Path(folder or os.environ.get("PIPELINE_TIMINGS") or STAGE_TIMINGS)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / f"{stage}.json", {
        "stage": stage, "seconds": round(time.perf_counter() - started, 2),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(), "cores": os.cpu_count()})


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what `platform` knows."""
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    return platform.processor() or platform.machine()


def run_stage(kind: str, step: Callable[..., Any], params: str | None = None, **kwargs: Any) -> Any:
    """Run stage kind `kind`: as its Prefect flow (`flows/<kind>.py`) when an API is configured, else `step`
    (the stage module's `run`) directly. `kwargs` are the step's arguments by name (the flow's parameters);
    `workers` sizes the parallel map of the stage kinds that fan out (FANNED_OUT)."""
    if params is not None:
        kwargs["params"] = params
    if use_prefect() and not in_distributed_env():  # torchrun ranks run inside their launcher's flow
        os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "pipeline")  # library logs reach the UI
        from flows.runners import run_stage_flow

        return run_stage_flow(kind, **kwargs)
    workers = kwargs.pop("workers", None)
    if kind not in FANNED_OUT:
        return step(**kwargs)
    with local_parallel(load_orchestration(params or "params.yaml"), workers) as parallel:
        return step(**kwargs, parallel=parallel)


def local_parallel(settings: OrchestrationSettings, workers: int | None) -> ParallelMap:
    """Without Prefect: the Dask cluster at `scheduler_address` when set, else a local pool of `task_runner`
    (threads or processes) with `workers` (default: the settings' workers, one per core)."""
    return parallel_map(settings.task_runner, workers or settings.resolved_workers, settings.scheduler_address)


def train_group(stage: str, train: Callable[..., list], dataset: str, params: str | Path, data: str | Path,
                out: str | Path, reports: str | Path, scratch: str | Path, timings: str | Path,
                progress: bool) -> dict[str, Any]:
    """Run a trainer of several models on one dataset (`train(dataset, params, data, out, scratch, progress=)`
    returning results with variant, curve, summary, timing), write each one's reports and the stage's wall-clock
    figures (`timings/<stage>.json`, not a DVC output); returns the summaries by variant name."""
    from pipeline.config import load_params
    from pipeline.reports.training import write_variant_reports
    from pipeline.shards import write_json

    results = train(dataset, load_params(params), Path(data), Path(out), Path(scratch), progress=progress)
    for result in results:
        write_variant_reports(result.variant, result.curve, result.summary, Path(reports))
    write_json(Path(timings) / f"{stage}.json", {result.variant: result.timing for result in results})
    return {result.variant: result.summary for result in results}


def train_group_main(description: str, kind: str, run: Callable[..., Any], models: str,
                     argv: list[str] | None = None) -> None:
    """The command line of a `train_<kind>@<dataset>` stage whose `run` is `train_group` over its trainer;
    `models`: what one model folder holds (for the help texts)."""
    args = parser(description)
    args.add_argument("dataset")
    args.add_argument("--data", type=Path, required=True, help="mixture dataset folder (data/mixtures/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help=f"model folder (data/models/<dataset>/{kind})")
    args.add_argument("--reports", type=Path, required=True,
                      help=f"curves and summaries (dvclive: <reports>/<dataset>-<{models}>/), the curves' PNGs")
    args.add_argument("--timings", type=Path, default=Path("data/timings"),
                      help=f"wall-clock figures (<timings>/train_{kind}@<dataset>.json), outside the DVC outputs")
    args.add_argument("--scratch", type=Path, default=Path("data/checkpoints"),
                      help=f"resume checkpoints, kept outside the DVC outputs until each {models} finishes")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"train_{kind}@{ns.dataset}"):
        run(ns.dataset, ns.params, ns.data, ns.out, ns.reports, ns.scratch, timings=ns.timings,
            progress=not ns.quiet)
