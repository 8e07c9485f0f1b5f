"""One entry point per corpus step, whatever the corpus: `fetch_corpus` and `prepare_corpus`.

Built-in corpora (sc09, grid, movie_sfx) are generated offline under profile `demo` and downloaded under
profile `paper`, into the same layout either way; folder corpora are read where they are.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.config import Params
from pipeline.corpora import grid, movie_sfx, sc09
from pipeline.corpora.folder import list_folder
from pipeline.corpora.prepare import prepare_clips
from pipeline.corpora.recordings import Recording

log = logging.getLogger(__name__)

FETCH_REPORT = "fetch.json"
BUILTIN = ("sc09", "grid", "movie_sfx")


def fetch_corpus(name: str, params: Params, raw_dir: Path, downloads_dir: Path) -> dict:
    """Materialise built-in corpus `name` in `raw_dir` (generate it under `demo`, download it under `paper`)."""
    if name not in BUILTIN:
        raise ValueError(f"unknown built-in corpus {name!r}; expected one of {BUILTIN} (folder corpora need no fetch)")
    config = getattr(params.corpora, name)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"corpus": name, "profile": params.profile}
    if params.profile == "demo":
        {"sc09": sc09.write_demo_sc09_corpus, "grid": grid.write_demo_grid_corpus,
         "movie_sfx": movie_sfx.write_demo_movie_sfx_corpus}[name](config, raw_dir)
    else:
        downloads_dir = Path(downloads_dir)
        if name == "sc09":
            sc09.download_sc09(config, raw_dir, downloads_dir)
        elif name == "grid":
            grid.download_grid(config, raw_dir, downloads_dir)
        else:
            report.update(movie_sfx.download_movie_sfx(config, raw_dir, downloads_dir))
    (raw_dir / FETCH_REPORT).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def list_recordings(name: str, params: Params, raw_dir: Path | None) -> tuple[list[Recording], list[dict]]:
    """The recordings of corpus `name` and the items excluded before decoding (with reasons)."""
    if name in params.folders:
        return list_folder(params.folders[name]), []
    config = getattr(params.corpora, name, None)
    if config is None:
        raise ValueError(f"unknown corpus {name!r}; expected one of {params.corpus_names}")
    raw_dir = Path(raw_dir)
    if name == "sc09":
        return sc09.list_sc09(config, raw_dir), []
    if name == "grid":
        return grid.list_grid(config, raw_dir), []
    recordings, excluded = movie_sfx.list_movie_sfx(config, raw_dir)
    failures = _fetch_failures(raw_dir)  # a missing file's reason is its failed download, when there was one
    return recordings, [{**item, "reason": failures.get(item["file"], item["reason"])} for item in excluded]


def prepare_corpus(name: str, params: Params, raw_dir: Path | None, out_dir: Path, *, workers: int = 1,
                   progress: bool = True) -> dict:
    """List and prepare corpus `name` into clip shards under `out_dir/<split>/`; returns the prepare report."""
    recordings, excluded = list_recordings(name, params, raw_dir)
    log.info("%s: %d recordings, %d excluded before decoding", name, len(recordings), len(excluded))
    return prepare_clips(name, recordings, out_dir, params.audio, params.shards, excluded=excluded, workers=workers,
                         progress=progress).as_dict()


def _fetch_failures(raw_dir: Path) -> dict[str, str]:
    path = raw_dir / FETCH_REPORT
    if not path.is_file():
        return {}
    return {f["file"]: f"download failed: {f['reason']}"
            for f in json.loads(path.read_text()).get("failed_downloads", [])}
