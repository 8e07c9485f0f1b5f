"""DVC stage `fetch@<corpus>`: generate (profile demo) or download and extract (profile paper) a corpus."""
from __future__ import annotations

from pathlib import Path

from stages.common import parser, run_stage, setup_logging, stage_clock


def run(corpus: str, params: str | Path, out: str | Path, downloads_dir: str | Path,
        lock: str | Path = "downloads.lock.json") -> dict:
    """Generate (profile demo) or download and extract (profile paper) `corpus` into `out`; downloads without a
    pinned sha256 are verified against (or, the first time, recorded in) the lock file `lock`."""
    from pipeline.config import load_params
    from pipeline.corpora.recipes import fetch_corpus

    return fetch_corpus(corpus, load_params(params), Path(out), Path(downloads_dir), lock=Path(lock))


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__)
    args.add_argument("corpus")
    args.add_argument("--out", type=Path, required=True, help="corpus folder to fill (data/raw/<corpus>)")
    args.add_argument("--downloads", type=Path, default=Path("data/downloads"),
                      help="download cache, kept between runs so interrupted downloads resume")
    args.add_argument("--lock", type=Path, default=Path("downloads.lock.json"),
                      help="sha256 of each first download without a pinned one (trust on first use; commit it)")
    ns = args.parse_args(argv)
    setup_logging()
    with stage_clock(f"fetch@{ns.corpus}"):
        run_stage("fetch", run, ns.params, corpus=ns.corpus, out=ns.out, downloads_dir=ns.downloads,
                  lock=ns.lock)


if __name__ == "__main__":
    main()
