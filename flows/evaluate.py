"""Flow `evaluate`: every system on one dataset's test split; scoring fans out as one task per chunk of mixtures."""
from __future__ import annotations

from prefect import flow

from flows.runners import stage_parallel
from stages.evaluate import run as evaluate_stage


@flow(name="evaluate", flow_run_name="evaluate@{dataset}")
def evaluate_flow(dataset: str, data: str, models: str, out: str, tables: str = "reports/tables",
                  timings: str = "data/timings", params: str = "params.yaml", workers: int | None = None,
                  progress: bool = False) -> dict:
    return evaluate_stage(dataset, params, data, models, out, tables, timings=timings, progress=progress,
                          parallel=stage_parallel(params, workers))


FLOW = evaluate_flow
