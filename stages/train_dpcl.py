"""DVC stage `train_dpcl@<dataset>`: train the partition-based separators of seed 003 (params.yaml `dpcl.systems`:
DPCL, SCE, DPCL++ fine-tuned from DPCL) on one dataset, then write their reports."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.common import parser, setup_logging, stage_clock


def run(dataset: str, params: str | Path, data: str | Path, out: str | Path, reports: str | Path,
        scratch: str | Path, *, timings: str | Path = "data/timings", progress: bool = True) -> dict[str, Any]:
    """Train every system of `dpcl.systems` on `dataset` into `out/<system>/model.pt`; curves and summaries
    through dvclive in `reports/<dataset>-<system>/` and `.png`, wall-clock figures in
    `timings/train_dpcl@<dataset>.json` (not a DVC output); returns the summaries by variant name."""
    from pipeline.config import load_params
    from pipeline.models.train.dpcl import train_dpcl
    from pipeline.reports.training import write_variant_reports
    from pipeline.shards import write_json

    results = train_dpcl(dataset, load_params(params), Path(data), Path(out), Path(scratch), progress=progress)
    for result in results:
        write_variant_reports(result.variant, result.curve, result.summary, Path(reports))
    write_json(Path(timings) / f"train_dpcl@{dataset}.json", {result.variant: result.timing for result in results})
    return {result.variant: result.summary for result in results}


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("dataset")
    args.add_argument("--data", type=Path, required=True, help="mixture dataset folder (data/mixtures/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help="model folder (data/models/<dataset>/dpcl)")
    args.add_argument("--reports", type=Path, required=True,
                      help="curves and summaries (dvclive: <reports>/<dataset>-<system>/), the curves' PNGs")
    args.add_argument("--timings", type=Path, default=Path("data/timings"),
                      help="wall-clock figures (<timings>/train_dpcl@<dataset>.json), outside the DVC outputs")
    args.add_argument("--scratch", type=Path, default=Path("data/checkpoints"),
                      help="resume checkpoints, kept outside the DVC outputs until each system finishes")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"train_dpcl@{ns.dataset}"):
        run(ns.dataset, ns.params, ns.data, ns.out, ns.reports, ns.scratch, timings=ns.timings,
            progress=not ns.quiet)


if __name__ == "__main__":
    main()
