"""DVC stage `select_model`: name the default model of `enhance` in models/registry.json (by its scene scores)."""
from __future__ import annotations

from pathlib import Path

from pipeline.config import load_params
from pipeline.enhance.registry import build_registry, write_registry
from stages.common import parser, setup_logging, stage_clock


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("--evaluation", type=Path, default=Path("data/evaluation"))
    args.add_argument("--models", type=Path, default=Path("data/models"))
    args.add_argument("--scene-evaluation", type=Path, default=Path("data/scene_evaluation"),
                      help="evaluate_scenes outputs, one folder per dataset with scenes")
    args.add_argument("--out", type=Path, default=Path("models/registry.json"))
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock("select_model"):
        write_registry(build_registry(load_params(ns.params), ns.evaluation, ns.models, ns.scene_evaluation), ns.out)


if __name__ == "__main__":
    main()
