"""DVC stage `training_summary`: a table and a page of curves over every trained variant."""
from __future__ import annotations

from pathlib import Path

from stages.common import parser, run_stage, setup_logging, stage_clock


def run(reports: str | Path, summary: str | Path, curves: str | Path) -> str:
    """The Markdown table and the curves page over every trained variant; returns the Markdown."""
    from pipeline.reports.training import summarise_training

    return summarise_training(Path(reports), Path(summary), Path(curves))


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("--reports", type=Path, default=Path("reports/training"))
    args.add_argument("--summary", type=Path, required=True)
    args.add_argument("--curves", type=Path, required=True)
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock("training_summary"):
        run_stage("training_summary", run, reports=ns.reports, summary=ns.summary, curves=ns.curves)


if __name__ == "__main__":
    main()
