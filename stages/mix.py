"""DVC stage `mix@<dataset>`: clip tables -> one of the paper's mixture datasets, plus its datasheet."""
from __future__ import annotations

from pathlib import Path

from pipeline.parallel import ParallelMap
from stages.common import parser, run_stage, setup_logging, stage_clock


def run(dataset: str, params: str | Path, clips: str | Path, out: str | Path, datasheet: str | Path, *,
        progress: bool = True, parallel: ParallelMap | None = None) -> dict:
    """Clip tables -> mixture dataset `dataset` in `out`, and its datasheet."""
    from pipeline.config import load_params
    from pipeline.mixing.datasheet import build_with_datasheet

    return build_with_datasheet(dataset, load_params(params), Path(clips), Path(out), Path(datasheet),
                                progress=progress, parallel=parallel)


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("dataset")
    args.add_argument("--clips", type=Path, default=Path("data/clips"), help="root of the prepared clip tables")
    args.add_argument("--out", type=Path, required=True, help="mixture folder (data/mixtures/<dataset>)")
    args.add_argument("--datasheet", type=Path, required=True, help="datasheet (reports/data/<dataset>.json)")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"mix@{ns.dataset}"):
        run_stage("mix", run, ns.params, dataset=ns.dataset, clips=ns.clips, out=ns.out, datasheet=ns.datasheet,
                  progress=not ns.quiet)


if __name__ == "__main__":
    main()
