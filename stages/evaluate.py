"""DVC stage `evaluate@<dataset>`: separate the test split with every system and score it."""
from __future__ import annotations

from pathlib import Path

from stages.common import default_workers, parser, run_stage, setup_logging


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
    run_stage("evaluate", ns.params, dataset=ns.dataset, data=ns.data, models=ns.models, out=ns.out,
              tables=ns.tables, workers=ns.workers, progress=not ns.quiet)


if __name__ == "__main__":
    main()
