"""DVC stage `evaluate@<dataset>`: separate the test split with every system and score it."""
from __future__ import annotations

from pathlib import Path

from pipeline.parallel import ParallelMap
from stages.common import parser, run_stage, setup_logging


def run(dataset: str, params: str | Path, data: str | Path, models: str | Path, out: str | Path,
        tables: str | Path, *, progress: bool = True, parallel: ParallelMap | None = None) -> dict[str, float]:
    """Separate and score the test split of `dataset` with every system; write its tables."""
    import pandas as pd

    from pipeline.config import load_params
    from pipeline.evaluation.run import evaluate_dataset
    from pipeline.evaluation.tables import write_tables

    parsed = load_params(params)
    metrics = evaluate_dataset(dataset, parsed, Path(data), Path(models), Path(out), parallel=parallel,
                               progress=progress)
    write_tables(dataset, parsed, pd.read_parquet(Path(out) / "scores.parquet"), Path(tables))
    return metrics


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("dataset")
    args.add_argument("--data", type=Path, required=True, help="mixture dataset folder (data/mixtures/<dataset>)")
    args.add_argument("--models", type=Path, required=True, help="its trained models (data/models/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help="evaluation folder (data/evaluation/<dataset>)")
    args.add_argument("--tables", type=Path, default=Path("reports/tables"), help="CSV and Markdown tables")
    args.add_argument("--workers", type=int, default=None,
                      help="scoring workers (default: orchestration.workers, one per core); same scores")
    ns = args.parse_args(argv)
    setup_logging()
    run_stage("evaluate", run, ns.params, dataset=ns.dataset, data=ns.data, models=ns.models, out=ns.out,
              tables=ns.tables, workers=ns.workers, progress=not ns.quiet)


if __name__ == "__main__":
    main()
