"""Flow `prepare`: recordings -> clip shards; decoding fans out as one task per batch of recordings."""
from __future__ import annotations

from prefect import flow

from flows.runners import stage_fanout
from pipeline.orchestration import steps


@flow(name="prepare", flow_run_name="prepare@{corpus}")
def prepare_flow(corpus: str, out: str, report: str, raw: str | None = None, params: str = "params.yaml",
                 workers: int | None = None, progress: bool = False) -> dict:
    """Each decode task writes its batch to a file; this flow writes the shards from them in order."""
    return steps.prepare(corpus, params, raw, out, report, progress=progress, fanout=stage_fanout(params, workers))


FLOW = prepare_flow
