"""Flow `train`: one model variant (on several processes with torchrun when `orchestration.train_processes` > 1)."""
from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from stages.train import run as train_stage

TASK_RUNNER = "threads"  # one task in this process; several GPUs go through torchrun, not the task runner


@task(name="train", cache_policy=NO_CACHE, persist_result=False)
def train_task(variant: str, params: str, data: str, out: str, reports: str, scratch: str, timings: str,
               progress: bool, processes: int, relaunch: list[str]) -> dict:
    return train_stage(variant, params, data, out, reports, scratch, timings=timings, progress=progress,
                       processes=processes, relaunch=relaunch)


@flow(name="train", flow_run_name="train@{variant}")
def train_flow(variant: str, data: str, out: str, reports: str = "reports/training",
               scratch: str = "data/checkpoints", timings: str = "data/timings", params: str = "params.yaml",
               progress: bool = False, processes: int = 1, relaunch: list[str] | None = None) -> dict:
    return train_task(variant, params, data, out, reports, scratch, timings, progress, processes,
                      list(relaunch or []))


FLOW = train_flow
