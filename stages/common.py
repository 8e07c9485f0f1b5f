"""What every stage entry point shares: logging set-up, the params file option, and running the stage's work.

`run_stage` runs the stage as its Prefect flow (`flows/<kind>.py`) when a Prefect API is configured
(`PREFECT_API_URL` or the active Prefect profile), so `dvc repro` shows up in the Prefect UI; otherwise it calls
the same function directly (`pipeline.orchestration.steps`) without importing Prefect. `PIPELINE_PREFECT`
overrides: `never`, or `always` (a temporary Prefect server per stage: ~20 s each, see README).
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from pipeline.orchestration.distributed import in_distributed_env
from pipeline.orchestration.fanout import DaskFanout, ExecutorFanout, Fanout
from pipeline.orchestration.settings import OrchestrationSettings, load_orchestration, use_prefect

FANNED_OUT = ("prepare", "mix", "evaluate")  # stage kinds with parallel parts (`fanout=`)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with `--params` (default params.yaml) and `--quiet`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def setup_logging() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def run_stage(kind: str, params: str | None = None, **kwargs: Any) -> Any:
    """Run stage kind `kind`: as its Prefect flow when an API is configured, else its step function directly.

    `kwargs` are the step's arguments by name (`pipeline.orchestration.steps.<kind>`, the flow's parameters).
    """
    if params is not None:
        kwargs["params"] = params
    if use_prefect() and not in_distributed_env():  # torchrun ranks run inside their launcher's flow
        os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "pipeline")  # library logs reach the UI
        from flows.runners import run_stage_flow

        return run_stage_flow(kind, **kwargs)
    from pipeline.orchestration import steps

    if kind in FANNED_OUT:
        kwargs["fanout"] = local_fanout(load_orchestration(params or "params.yaml"), kwargs.get("workers"))
    return getattr(steps, kind)(**kwargs)


def local_fanout(settings: OrchestrationSettings, workers: int | None) -> Fanout | None:
    """Without Prefect: a Dask cluster when `scheduler_address` is set, threads when `task_runner: threads`,
    else None (the library's own process pool of `workers`)."""
    if settings.scheduler_address:
        return DaskFanout(settings.scheduler_address)
    if settings.task_runner == "threads":
        return ExecutorFanout("threads", workers or settings.resolved_workers)
    return None
