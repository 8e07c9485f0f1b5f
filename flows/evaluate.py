"""Flow `evaluate`: every system on one dataset's test split, scored (BSS-Eval on `workers` processes)."""
from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from pipeline.orchestration import steps

TASK_RUNNER = "threads"  # one task; its BSS-Eval scoring runs its own process pool


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False)
def evaluate_task(dataset: str, params: str, data: str, models: str, out: str, tables: str, workers: int,
                  progress: bool) -> dict:
    return steps.evaluate(dataset, params, data, models, out, tables, workers=workers, progress=progress)


@flow(name="evaluate", flow_run_name="evaluate@{dataset}")
def evaluate_flow(dataset: str, data: str, models: str, out: str, tables: str = "reports/tables",
                  params: str = "params.yaml", workers: int = 1, progress: bool = False) -> dict:
    return evaluate_task(dataset, params, data, models, out, tables, workers, progress)


FLOW = evaluate_flow
