"""One entry point per corpus step, whatever the corpus: `fetch_corpus` and `list_recordings`
(`pipeline.corpora.prepare.prepare_corpus` decodes what the latter lists).

Built-in corpora (`pipeline.corpora.registry`) are generated offline under profile `demo` and downloaded under
profile `paper`, into the same layout either way; folder corpora are read where they are.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.config import Params
from pipeline.corpora.folder import list_folder
from pipeline.corpora.recordings import Recording
from pipeline.corpora.registry import RECIPES, corpus_config, recipe

log = logging.getLogger(__name__)

FETCH_REPORT = "fetch.json"


def fetch_corpus(name: str, params: Params, raw_dir: Path, downloads_dir: Path, lock: Path | None = None) -> dict:
    """Materialise built-in corpus `name` in `raw_dir` (generate it under `demo`, download it under `paper`; files
    without a pinned sha256 are checked against, or recorded in, the lock file `lock`)."""
    corpus = recipe(name)
    config = corpus_config(params, name)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"corpus": name, "profile": params.profile}
    if params.profile == "demo":
        corpus.write_demo(config, raw_dir)
    else:
        report.update(corpus.download(config, raw_dir, Path(downloads_dir), lock=lock))
    (raw_dir / FETCH_REPORT).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def list_recordings(name: str, params: Params, raw_dir: Path | None) -> tuple[list[Recording], list[dict]]:
    """The recordings of corpus `name` and the items excluded before decoding (with reasons)."""
    if name in params.folders:
        return list_folder(params.folders[name])
    if name not in RECIPES or name not in params.corpora:
        raise ValueError(f"unknown corpus {name!r}; expected one of {params.corpus_names}")
    raw_dir = Path(raw_dir)
    recordings, excluded = recipe(name).list_recordings(corpus_config(params, name), raw_dir)
    failures = _fetch_failures(raw_dir)  # a missing file's reason is its failed download, when there was one
    return recordings, [{**item, "reason": failures.get(item["file"], item["reason"])} for item in excluded]


def _fetch_failures(raw_dir: Path) -> dict[str, str]:
    path = raw_dir / FETCH_REPORT
    if not path.is_file():
        return {}
    return {f["file"]: f"download failed: {f['reason']}"
            for f in json.loads(path.read_text()).get("failed_downloads", [])}
