"""Flow `evaluate`: every system on one dataset's test split; scoring fans out as one task per chunk of mixtures."""
from __future__ import annotations

from prefect import flow

from flows.runners import stage_fanout
from pipeline.orchestration import steps


@flow(name="evaluate", flow_run_name="evaluate@{dataset}")
def evaluate_flow(dataset: str, data: str, models: str, out: str, tables: str = "reports/tables",
                  params: str = "params.yaml", workers: int | None = None, progress: bool = False) -> dict:
    return steps.evaluate(dataset, params, data, models, out, tables, workers=workers or 1, progress=progress,
                          fanout=stage_fanout(params, workers))


FLOW = evaluate_flow
