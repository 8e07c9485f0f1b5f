"""DVC stage `prepare@<corpus>`: recordings -> 1-s RMS-normalised clips at 8,600 Hz in Parquet shards."""
from __future__ import annotations

from pathlib import Path

from pipeline.parallel import ParallelMap
from stages.common import parser, run_stage, setup_logging, stage_clock


def run(corpus: str, params: str | Path, raw: str | Path | None, out: str | Path, report: str | Path, *,
        progress: bool = True, parallel: ParallelMap | None = None) -> dict:
    """Recordings -> clip shards in `out`; the prepare report goes to `out/report.json` and `report`."""
    from pipeline.config import load_params
    from pipeline.corpora.prepare import prepare_corpus
    from pipeline.shards import write_json

    result = prepare_corpus(corpus, load_params(params), None if raw is None else Path(raw), Path(out),
                            progress=progress, parallel=parallel)
    write_json(Path(out) / "report.json", result)
    write_json(Path(report), result)
    return result


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("corpus")
    args.add_argument("--raw", type=Path, help="corpus folder (built-in corpora; folder corpora use their path)")
    args.add_argument("--out", type=Path, required=True, help="clip table folder (data/clips/<corpus>)")
    args.add_argument("--report", type=Path, required=True, help="prepare report (reports/data/clips_<corpus>.json)")
    args.add_argument("--workers", type=int, default=None,
                      help="parallel workers (default: orchestration.workers, one per core); same output")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"prepare@{ns.corpus}"):
        run_stage("prepare", run, ns.params, corpus=ns.corpus, raw=ns.raw, out=ns.out, report=ns.report,
                  workers=ns.workers, progress=not ns.quiet)


if __name__ == "__main__":
    main()
