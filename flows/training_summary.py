"""Flow `training_summary`: the table and curves page over every trained variant."""
from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from stages.training_summary import run as training_summary_stage

TASK_RUNNER = "threads"


@task(name="training-summary", cache_policy=NO_CACHE, persist_result=False)
def summary_task(reports: str, summary: str, curves: str) -> str:
    return training_summary_stage(reports, summary, curves)


@flow(name="training_summary", flow_run_name="training_summary")
def training_summary_flow(reports: str, summary: str, curves: str, params: str = "params.yaml") -> str:
    return summary_task(reports, summary, curves)


FLOW = training_summary_flow
