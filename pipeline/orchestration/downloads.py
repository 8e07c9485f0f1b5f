"""The files a `fetch` under profile `paper` downloads, so that a flow can run each as a retried task first.

The corpus recipes (`pipeline.corpora.<corpus>.download_*`) then find every file in the download cache, verify
it and extract it, without downloading again. The cache names here must match the recipes' (a test checks it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Params
from pipeline.corpora.movie_sfx import read_manifest


@dataclass(frozen=True)
class PlannedDownload:
    name: str                 # short, for task run names
    url: str
    dest: str                 # in the download cache
    sha256: str | None
    required: bool = True     # False: a failure is reported by the recipe, not fatal (movie_sfx entries)


def planned_downloads(corpus: str, params: Params, downloads_dir: str | Path) -> list[PlannedDownload]:
    """What `fetch_corpus(corpus, params, ...)` will download (nothing under profile `demo`)."""
    if params.profile != "paper":
        return []
    downloads = Path(downloads_dir)
    if corpus == "sc09":
        paper = params.corpora.sc09.paper
        return [PlannedDownload("sc09", paper.url, str(downloads / Path(paper.url).name), paper.sha256)]
    if corpus == "grid":
        config = params.corpora.grid
        return [PlannedDownload(f"grid_{speaker}", config.paper.url_template.format(speaker=speaker),
                                str(downloads / f"grid_{speaker}.tar"), config.paper.sha256.get(speaker))
                for speaker in sorted(config.speakers)]
    if corpus == "movie_sfx":
        rows = read_manifest(Path(params.corpora.movie_sfx.paper.manifest))
        return [PlannedDownload(row["file"], row["url"], str(downloads / "movie_sfx" / row["file"]),
                                row["sha256"] or None, required=False)
                for row in rows if row["contains_speech"].strip().lower() == "false"]
    raise ValueError(f"unknown built-in corpus {corpus!r}; expected sc09, grid or movie_sfx")
