"""DVC stage `training_summary`: a table and a page of curves over every trained variant."""
from __future__ import annotations

from pathlib import Path

from pipeline.reports.training import summarise_training
from stages.common import parser, setup_logging


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("--reports", type=Path, default=Path("reports/training"))
    args.add_argument("--summary", type=Path, required=True)
    args.add_argument("--curves", type=Path, required=True)
    ns = args.parse_args(argv)
    setup_logging()
    summarise_training(ns.reports, ns.summary, ns.curves)


if __name__ == "__main__":
    main()
