"""Flow `mix`: one mixture dataset and its datasheet; each split (train, valid, test) is one task."""
from __future__ import annotations

from prefect import flow

from flows.runners import stage_fanout
from pipeline.orchestration import steps


@flow(name="mix", flow_run_name="mix@{dataset}")
def mix_flow(dataset: str, out: str, datasheet: str, clips: str = "data/clips", params: str = "params.yaml",
             workers: int | None = None, progress: bool = False) -> dict:
    return steps.mix(dataset, params, clips, out, datasheet, progress=progress, fanout=stage_fanout(params, workers))


FLOW = mix_flow
