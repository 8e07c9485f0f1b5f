"""DVC stage `report`: merged metrics, the paper's figures, the paper comparison and the HTML report page."""
from __future__ import annotations

from pathlib import Path

from pipeline.config import load_params
from pipeline.reports.site import build_report
from stages.common import parser, setup_logging, stage_clock


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("--evaluation", type=Path, default=Path("data/evaluation"),
                      help="evaluation folders, one per dataset (data/evaluation/<dataset>)")
    args.add_argument("--datasets", nargs="+", default=None,
                      help="datasets to report (default: every dataset of params.yaml that was evaluated)")
    args.add_argument("--training-summary", type=Path, default=Path("reports/training_summary.md"))
    args.add_argument("--training-curves", type=Path, default=Path("reports/plots/training_curves.png"))
    args.add_argument("--tables", type=Path, default=Path("reports/tables"), help="evaluate's <dataset>.csv tables")
    args.add_argument("--scene-evaluation", type=Path, default=Path("data/scene_evaluation"),
                      help="evaluate_scenes folders, one per dataset with scenes")
    args.add_argument("--scenes", type=Path, default=Path("data/scenes"), help="the scenes (their true stems)")
    args.add_argument("--generation", type=Path, default=Path("data/generation"),
                      help="generate outputs, one folder per variant of params.yaml generate.variants")
    args.add_argument("--out", type=Path, default=Path("reports"))
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock("report"):
        build_report(load_params(ns.params), ns.evaluation, ns.out, datasets=ns.datasets,
                     training_summary=ns.training_summary, training_curves=ns.training_curves, tables_dir=ns.tables,
                     scene_evaluation_dir=ns.scene_evaluation, scenes_dir=ns.scenes,
                     generation_dir=ns.generation)


if __name__ == "__main__":
    main()
