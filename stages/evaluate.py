"""DVC stage `evaluate@<dataset>`: separate the test split with every system and score it."""
from __future__ import annotations

from pathlib import Path

from pipeline.parallel import ParallelMap
from stages.common import parser, run_stage, setup_logging, stage_clock


def run(dataset: str, params: str | Path, data: str | Path, models: str | Path, out: str | Path,
        tables: str | Path, *, timings: str | Path = "data/timings", progress: bool = True,
        parallel: ParallelMap | None = None) -> dict[str, float]:
    """Separate and score the test split of `dataset` with every system; write its tables, and its per-system
    wall times to `timings/evaluate@<dataset>.json` (not a DVC output)."""
    import pandas as pd

    from pipeline.config import load_params
    from pipeline.evaluation.run import evaluate_dataset
    from pipeline.evaluation.tables import write_tables

    parsed = load_params(params)
    metrics = evaluate_dataset(dataset, parsed, Path(data), Path(models), Path(out), parallel=parallel,
                               progress=progress, timings=Path(timings) / f"evaluate@{dataset}.json")
    write_tables(dataset, parsed, pd.read_parquet(Path(out) / "scores.parquet"), Path(tables))
    return metrics


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("dataset")
    args.add_argument("--data", type=Path, required=True, help="mixture dataset folder (data/mixtures/<dataset>)")
    args.add_argument("--models", type=Path, required=True, help="its trained models (data/models/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help="evaluation folder (data/evaluation/<dataset>)")
    args.add_argument("--tables", type=Path, default=Path("reports/tables"), help="CSV and Markdown tables")
    args.add_argument("--timings", type=Path, default=Path("data/timings"),
                      help="per-system wall times (<timings>/evaluate@<dataset>.json), outside the DVC outputs")
    args.add_argument("--workers", type=int, default=None,
                      help="scoring workers (default: orchestration.workers, one per core); same scores")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"evaluate@{ns.dataset}"):
        run_stage("evaluate", run, ns.params, dataset=ns.dataset, data=ns.data, models=ns.models, out=ns.out,
                  tables=ns.tables, timings=ns.timings, workers=ns.workers, progress=not ns.quiet)


if __name__ == "__main__":
    main()
