"""Flow `prepare`: recordings -> clip shards; decoding fans out as one task per batch of recordings."""
from __future__ import annotations

from prefect import flow

from flows.runners import stage_parallel
from stages.prepare import run as prepare_stage


@flow(name="prepare", flow_run_name="prepare@{corpus}")
def prepare_flow(corpus: str, out: str, report: str, raw: str | None = None, params: str = "params.yaml",
                 workers: int | None = None, progress: bool = False) -> dict:
    """Each decode task returns its batch's clips; this flow writes the shards from them in order."""
    return prepare_stage(corpus, params, raw, out, report, progress=progress,
                         parallel=stage_parallel(params, workers))


FLOW = prepare_flow
