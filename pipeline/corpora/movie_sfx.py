"""Movie background sounds listed in a manifest (the paper used soundbible.com's "movies" tag, without speech).

Manifest columns: `file,url,sha256,licence,title,label,contains_speech` (sha256 may be empty: the file is then
unverified and its hash is recorded in the fetch report). Rows with `contains_speech` true are excluded.
Layout (after fetching, and the demo's): `<root>/manifest.csv` and `<root>/files/<file>`.
Splits are by source recording (stable hash of the file name): pieces of one recording never share two splits.
"""
from __future__ import annotations

import csv
import logging
import shutil
from pathlib import Path

from pipeline.config import MovieSfxConfig
from pipeline.corpora.download import DownloadError, download
from pipeline.shards import file_sha256
from pipeline.corpora.recordings import Recording, stable_split

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
COLUMNS = ("file", "url", "sha256", "licence", "title", "label", "contains_speech")


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a manifest CSV, validated: required columns present, file names safe and unique."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"movie_sfx manifest {path} not found; expected a CSV with columns {COLUMNS}")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; expected {COLUMNS}")
        rows = list(reader)
    seen = set()
    for number, row in enumerate(rows, start=2):
        name = row["file"]
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"{path}, line {number}: file {name!r} must be a plain file name")
        if name in seen:
            raise ValueError(f"{path}, line {number}: file {name!r} listed twice")
        if row["contains_speech"].strip().lower() not in ("true", "false"):
            raise ValueError(f"{path}, line {number}: contains_speech {row['contains_speech']!r}, expected true/false")
        seen.add(name)
    return rows


def download_movie_sfx(config: MovieSfxConfig, raw_dir: Path, downloads_dir: Path) -> dict:
    """Download every speech-free manifest entry into `raw_dir/files`; a failed entry is reported, not fatal."""
    rows = read_manifest(Path(config.paper.manifest))
    files = raw_dir / "files"
    files.mkdir(parents=True, exist_ok=True)
    failed, unverified = [], {}
    for row in rows:
        if row["contains_speech"].strip().lower() == "true":
            continue
        cached = downloads_dir / "movie_sfx" / row["file"]
        try:
            download(row["url"], cached, sha256=row["sha256"] or None)
        except (DownloadError, ValueError) as err:
            failed.append({"file": row["file"], "url": row["url"], "reason": str(err)})
            log.warning("movie_sfx: %s", err)
            continue
        if not row["sha256"]:
            unverified[row["file"]] = file_sha256(cached)
        shutil.copyfile(cached, files / row["file"])
    if len(failed) == len([r for r in rows if r["contains_speech"].strip().lower() == "false"]):
        raise DownloadError(f"movie_sfx: every download in {config.paper.manifest} failed (first: {failed[0]['reason']})"
                            if failed else f"movie_sfx: {config.paper.manifest} lists no speech-free recording")
    shutil.copyfile(config.paper.manifest, raw_dir / MANIFEST)
    return {"failed_downloads": failed, "unverified_sha256": unverified}


def write_demo_movie_sfx_corpus(config: MovieSfxConfig, raw_dir: Path) -> None:
    """Generate the offline stand-in: procedural background sounds (rain, wind, engine, ...) in the same layout."""
    from pipeline.corpora.demo.layouts import write_demo_movie_sfx

    demo = config.demo
    write_demo_movie_sfx(raw_dir, kinds=demo.kinds, per_kind=demo.per_kind, seconds=demo.seconds,
                         sample_rate=demo.sample_rate, seed=demo.seed)


def list_movie_sfx(config: MovieSfxConfig, raw_dir: Path) -> tuple[list[Recording], list[dict[str, str]]]:
    """Speech-free recordings present under `raw_dir/files`, and the manifest rows excluded (with reasons)."""
    raw_dir = Path(raw_dir)
    recordings, excluded = [], []
    for row in read_manifest(raw_dir / MANIFEST):
        name = row["file"]
        if row["contains_speech"].strip().lower() == "true":
            excluded.append({"file": name, "reason": "excluded: contains speech (manifest)"})
            continue
        path = raw_dir / "files" / name
        if not path.is_file():
            excluded.append({"file": name, "reason": "missing: not downloaded (see the fetch report)"})
            continue
        recordings.append(Recording(path=path, source_file=f"files/{name}", label=row["label"] or "background",
                                    speaker=Path(name).stem, gender=None,
                                    split=stable_split(name, config.split_fractions)))
    return recordings, excluded
