"""DVC stage `subtitled@<name>`: your subtitled films or recordings -> a class-supervised dataset (weak labels)."""
from __future__ import annotations

from pathlib import Path

from stages.common import parser, setup_logging, stage_clock


def run(name: str, params: str | Path, out: str | Path, datasheet: str | Path, *, progress: bool = True) -> dict:
    """Recordings and subtitles under `subtitled.<name>.path` -> `out/{train,valid}`, and the datasheet."""
    from pipeline.config import load_params
    from pipeline.mixing.subtitled import build_subtitled
    from pipeline.shards import write_json

    parsed = load_params(params)
    if name not in parsed.subtitled:
        raise ValueError(f"unknown subtitled set {name!r}; params.yaml defines {sorted(parsed.subtitled)}")
    sheet = build_subtitled(name, parsed.subtitled[name], parsed.audio, parsed.shards, Path(out),
                            progress=progress)
    write_json(Path(datasheet), {"profile": parsed.profile, **sheet})
    return sheet


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("name")
    args.add_argument("--out", type=Path, required=True, help="dataset folder (data/mixtures/<name>)")
    args.add_argument("--datasheet", type=Path, required=True, help="datasheet (reports/data/<name>.json)")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"subtitled@{ns.name}"):
        run(ns.name, ns.params, ns.out, ns.datasheet, progress=not ns.quiet)


if __name__ == "__main__":
    main()
