"""DVC stage `prepare@<corpus>`: recordings -> 1-s RMS-normalised clips at 8,600 Hz in Parquet shards."""
from __future__ import annotations

from pathlib import Path

from pipeline.config import load_params
from pipeline.corpora.recipes import prepare_corpus
from pipeline.shards import write_json
from stages.common import default_workers, parser, setup_logging


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("corpus")
    args.add_argument("--raw", type=Path, help="corpus folder (built-in corpora; folder corpora use their path)")
    args.add_argument("--out", type=Path, required=True, help="clip table folder (data/clips/<corpus>)")
    args.add_argument("--report", type=Path, required=True, help="prepare report (reports/data/clips_<corpus>.json)")
    args.add_argument("--workers", type=int, default=default_workers(), help="decoding processes (output is identical)")
    ns = args.parse_args(argv)
    setup_logging()
    report = prepare_corpus(ns.corpus, load_params(ns.params), ns.raw, ns.out, workers=ns.workers,
                            progress=not ns.quiet)
    write_json(ns.out / "report.json", report)
    write_json(ns.report, report)


if __name__ == "__main__":
    main()
