"""The contract of a built-in corpus: one module per corpus (`sc09.py`, `grid.py`, ...) exposes one `CorpusRecipe`.

A recipe holds everything about its corpus: the schema of its `corpora.<name>` params section, the offline demo
generator (profile `demo`), the files to download and how to extract them (profile `paper`), and how to list
its recordings. `pipeline.corpora.registry` lists the recipes; nothing else names a corpus.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipeline.corpora.recordings import Recording


@dataclass(frozen=True)
class PlannedDownload:
    """One file a `paper` fetch downloads into the download cache (a flow can run each as a retried task)."""

    name: str                 # short, for task run names
    url: str
    dest: str                 # in the download cache
    sha256: str | None
    required: bool = True     # False: a failure is reported by the recipe, not fatal (movie_sfx entries)


@dataclass(frozen=True)
class CorpusRecipe:
    """One built-in corpus. `config` below is an instance of `schema`, the validated `corpora.<name>` section."""

    name: str
    schema: type
    write_demo: Callable[[Any, Path], None]                       # (config, raw_dir): generate the stand-in
    planned_downloads: Callable[[Any, Path], list[PlannedDownload]]  # (config, downloads_dir)
    download: Callable[..., dict]  # (config, raw_dir, downloads_dir, lock=None) -> report; lock: downloads' lock file
    list_recordings: Callable[[Any, Path], tuple[list[Recording], list[dict[str, str]]]]  # (config, raw_dir)
