"""DVC stage `train@<variant>`: train one model variant on its mixture dataset.

With params.yaml `orchestration.train_processes` > 1 it starts itself again under torchrun on that many
processes (DistributedDataParallel; one per GPU). `torchrun --nproc_per_node=N -m stages.train ...` also works.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline.orchestration.distributed import in_distributed_env
from pipeline.orchestration.settings import load_orchestration
from stages.common import parser, run_stage, setup_logging


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("variant")
    args.add_argument("--data", type=Path, required=True, help="mixture dataset folder (data/mixtures/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help="model folder (data/models/<variant>)")
    args.add_argument("--reports", type=Path, default=Path("reports/training"), help="curves and summaries")
    args.add_argument("--scratch", type=Path, default=Path("data/checkpoints"),
                      help="resume checkpoints, kept outside the DVC outputs until training finishes")
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = args.parse_args(argv)
    setup_logging()
    processes = 1 if in_distributed_env() else load_orchestration(ns.params).train_processes
    run_stage("train", ns.params, variant=ns.variant, data=ns.data, out=ns.out, reports=ns.reports,
              scratch=ns.scratch, progress=not ns.quiet, processes=processes, relaunch=argv)


if __name__ == "__main__":
    main()
