"""DVC stage `prepare@<corpus>`: recordings -> 1-s RMS-normalised clips at 8,600 Hz in Parquet shards."""
from __future__ import annotations

from pathlib import Path

from stages.common import default_workers, parser, run_stage, setup_logging


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("corpus")
    args.add_argument("--raw", type=Path, help="corpus folder (built-in corpora; folder corpora use their path)")
    args.add_argument("--out", type=Path, required=True, help="clip table folder (data/clips/<corpus>)")
    args.add_argument("--report", type=Path, required=True, help="prepare report (reports/data/clips_<corpus>.json)")
    args.add_argument("--workers", type=int, default=default_workers(), help="decoding processes (output is identical)")
    ns = args.parse_args(argv)
    setup_logging()
    run_stage("prepare", ns.params, corpus=ns.corpus, raw=ns.raw, out=ns.out, report=ns.report, workers=ns.workers,
              progress=not ns.quiet)


if __name__ == "__main__":
    main()
