"""The files a `fetch` under profile `paper` downloads, so that a flow can run each as a retried task first.

Each corpus recipe (`pipeline.corpora.<corpus>`) plans its downloads and downloads from that same plan, so the
recipe's `download` then finds every file in the download cache, verifies it and extracts it.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.config import Params
from pipeline.corpora.base import PlannedDownload
from pipeline.corpora.registry import corpus_config, recipe

__all__ = ["PlannedDownload", "planned_downloads"]


def planned_downloads(corpus: str, params: Params, downloads_dir: str | Path) -> list[PlannedDownload]:
    """What `fetch_corpus(corpus, params, ...)` will download (nothing under profile `demo`)."""
    if params.profile != "paper":
        return []
    return recipe(corpus).planned_downloads(corpus_config(params, corpus), Path(downloads_dir))
