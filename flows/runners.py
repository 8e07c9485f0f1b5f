"""Task runners from params (`orchestration`), the Prefect fan-out, and running one stage as a flow."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from prefect import tags, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from pipeline.orchestration.settings import OrchestrationSettings, load_orchestration
from pipeline.parallel import ordered

STAGE_TAG = "dvc-stage"


def task_runner(settings: OrchestrationSettings, workers: int | None = None, *,
                fixed: str | None = None) -> TaskRunner:
    """A Dask cluster when `scheduler_address` is set (prefect-dask), else local threads or processes.

    `fixed="threads"`: flows whose tasks wait on the network or run one process-heavy task themselves (fetch,
    train, evaluate) always use local threads, never the cluster.
    """
    workers = workers or settings.resolved_workers
    if fixed == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if settings.scheduler_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.scheduler_address)
    if settings.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    return ProcessPoolTaskRunner(max_workers=workers)


@task(name="part", cache_policy=NO_CACHE, persist_result=False)
def run_part(fn: Callable[[Any], Any], item: Any) -> Any:
    """One part of a stage's work (a decoded batch, a mixed split): `fn(item)`, on the flow's task runner."""
    return fn(item)


class PrefectMap:
    """`pipeline.parallel.ParallelMap` as Prefect tasks: each item is a task run named after it, submitted to the
    running flow's task runner; at most `window` are in flight; results come back in order."""

    def __init__(self, window: int = 4):
        self.window = window

    def map(self, fn, items, *, task="task", names=None):
        names = list(names) if names is not None else [f"{task}-{i}" for i in range(len(items))]
        labels = iter(names)
        yield from ordered(lambda item: run_part.with_options(name=task, task_run_name=next(labels)).submit(fn, item),
                           items, self.window, lambda future: future.result())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def run_stage_flow(kind: str, **kwargs: Any) -> Any:
    """Run the flow of stage kind `kind` (module `flows.<kind>`, attribute `FLOW`) on the task runner of params."""
    kwargs = {key: str(value) if isinstance(value, Path) else value for key, value in kwargs.items()}
    settings = load_orchestration(kwargs.get("params", "params.yaml"))
    module = importlib.import_module(f"flows.{kind}")
    runner = task_runner(settings, kwargs.get("workers"), fixed=getattr(module, "TASK_RUNNER", None))
    with tags(STAGE_TAG):
        return module.FLOW.with_options(task_runner=runner)(**kwargs)


def stage_parallel(params: str | Path, workers: int | None = None) -> PrefectMap:
    """The parallel map of a stage flow: twice as many parts in flight as the task runner runs at once."""
    settings = load_orchestration(params)
    return PrefectMap(window=2 * (workers or settings.resolved_workers))
