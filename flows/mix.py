"""Flow `mix`: one mixture dataset and its datasheet; each split (train, valid, test) is one task."""
from __future__ import annotations

from prefect import flow

from flows.runners import stage_parallel
from stages.mix import run as mix_stage


@flow(name="mix", flow_run_name="mix@{dataset}")
def mix_flow(dataset: str, out: str, datasheet: str, clips: str = "data/clips", params: str = "params.yaml",
             workers: int | None = None, progress: bool = False) -> dict:
    return mix_stage(dataset, params, clips, out, datasheet, progress=progress,
                     parallel=stage_parallel(params, workers))


FLOW = mix_flow
