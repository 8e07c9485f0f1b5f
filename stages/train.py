"""DVC stage `train@<variant>`: train one model variant on its mixture dataset, then write its reports.

With params.yaml `orchestration.train_processes` > 1 it starts itself again under torchrun on that many
processes (DistributedDataParallel; one per GPU). `torchrun --nproc_per_node=N -m stages.train ...` also works.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from pipeline.orchestration.distributed import distributed_training, in_distributed_env, torchrun_command
from pipeline.orchestration.settings import load_orchestration
from stages.common import parser, run_stage, setup_logging, stage_clock

log = logging.getLogger(__name__)


def run(variant: str, params: str | Path, data: str | Path, out: str | Path, reports: str | Path,
        scratch: str | Path, *, timings: str | Path = "data/timings", progress: bool = True, processes: int = 1,
        relaunch: Sequence[str] = ()) -> dict[str, Any]:
    """Train `variant`, then write its reports (`reports/<variant>/` through dvclive, `reports/<variant>.png`)
    and its timing file `timings/train@<variant>.json`; returns its summary. `processes` > 1: run
    `python -m stages.train <relaunch>` under torchrun with that many processes (DistributedDataParallel);
    inside such a run (torchrun sets WORLD_SIZE) every rank lands here and rank 0 alone writes."""
    from pipeline.reports.training import read_summary, write_timing, write_variant_reports

    if processes > 1:
        command = torchrun_command(processes, ["-m", "stages.train", *relaunch])
        log.info("training %s on %d processes: %s", variant, processes, " ".join(command))
        subprocess.run(command, check=True, env={**os.environ, "PIPELINE_PREFECT": "never"})
        return read_summary(Path(reports), variant)
    from pipeline.config import load_params
    from pipeline.models.train import train_variant

    with distributed_training():
        result = train_variant(variant, load_params(params), Path(data), Path(out), Path(scratch),
                               progress=progress)
    if result.writer:
        write_variant_reports(variant, result.curve, result.summary, Path(reports))
        write_timing(variant, result.curve, result.timing, Path(timings) / f"train@{variant}.json")
    return result.summary


def _is_nmf(params: str | Path, variant: str) -> bool:
    """NMF variants train on one process (they take seconds; no DDP)."""
    from pipeline.config import load_params

    config = load_params(params).variants.get(variant)
    return config is not None and config.model == "nmf"


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("variant")
    args.add_argument("--data", type=Path, required=True, help="mixture dataset folder (data/mixtures/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help="model folder (data/models/<variant>)")
    args.add_argument("--reports", type=Path, default=Path("reports/training"),
                      help="curves and summaries (dvclive: <reports>/<variant>/), the curve's PNG")
    args.add_argument("--timings", type=Path, default=Path("data/timings"),
                      help="wall-clock figures (<timings>/train@<variant>.json), outside the DVC outputs")
    args.add_argument("--scratch", type=Path, default=Path("data/checkpoints"),
                      help="resume checkpoints, kept outside the DVC outputs until training finishes")
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"train@{ns.variant}"):
        processes = 1 if in_distributed_env() or _is_nmf(ns.params, ns.variant) else \
            load_orchestration(ns.params).train_processes
        run_stage("train", run, ns.params, variant=ns.variant, data=ns.data, out=ns.out, reports=ns.reports,
                  scratch=ns.scratch, timings=ns.timings, progress=not ns.quiet, processes=processes, relaunch=argv)


if __name__ == "__main__":
    main()
