"""DVC stage `evaluate@<dataset>`: separate the test split with every system and score it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import load_params
from pipeline.evaluation.run import evaluate_dataset
from pipeline.evaluation.tables import write_tables
from stages.common import default_workers, parser, setup_logging


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("dataset")
    args.add_argument("--data", type=Path, required=True, help="mixture dataset folder (data/mixtures/<dataset>)")
    args.add_argument("--models", type=Path, required=True, help="its trained models (data/models/<dataset>)")
    args.add_argument("--out", type=Path, required=True, help="evaluation folder (data/evaluation/<dataset>)")
    args.add_argument("--tables", type=Path, default=Path("reports/tables"), help="CSV and Markdown tables")
    args.add_argument("--workers", type=int, default=default_workers(), help="BSS-Eval processes (same results)")
    ns = args.parse_args(argv)
    setup_logging()
    params = load_params(ns.params)
    evaluate_dataset(ns.dataset, params, ns.data, ns.models, ns.out, workers=ns.workers, progress=not ns.quiet)
    write_tables(ns.dataset, params, pd.read_parquet(ns.out / "scores.parquet"), ns.tables)


if __name__ == "__main__":
    main()
