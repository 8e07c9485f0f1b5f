"""DVC stage `scenes@<dataset>`: long test scenes (dialogue lines over background) from the test recordings."""
from __future__ import annotations

from pathlib import Path

from stages.common import parser, setup_logging, stage_clock


def raw_roots(params, raw: Path) -> dict[str, Path]:
    """Where each corpus's `source_file` paths start: `raw/<corpus>` for built-in corpora, the folder itself for
    the user's folders."""
    return {**{name: Path(raw) / name for name in params.corpora},
            **{name: Path(folder.path) for name, folder in params.folders.items()}}


def run(dataset: str, params: str | Path, clips: str | Path, raw: str | Path, out: str | Path) -> dict:
    """Build the scenes of `dataset` into `out` (stems + scenes.json); returns the manifest."""
    from pipeline.config import load_params
    from pipeline.mixing.scenes import build_scenes

    parsed = load_params(params)
    if dataset not in parsed.scenes.datasets:
        raise ValueError(f"dataset {dataset!r} has no scenes; scenes.datasets lists {list(parsed.scenes.datasets)}")
    return build_scenes(dataset, parsed.datasets[dataset], parsed.scenes, parsed.evaluate.of(dataset).speech,
                        Path(clips), raw_roots(parsed, Path(raw)), Path(out))


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("dataset")
    args.add_argument("--clips", type=Path, default=Path("data/clips"), help="prepared clip tables (test split)")
    args.add_argument("--raw", type=Path, default=Path("data/raw"), help="the built-in corpora's recordings")
    args.add_argument("--out", type=Path, required=True, help="scene folder (data/scenes/<dataset>)")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"scenes@{ns.dataset}"):
        run(ns.dataset, ns.params, ns.clips, ns.raw, ns.out)


if __name__ == "__main__":
    main()
