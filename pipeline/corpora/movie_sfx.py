"""Movie background sounds listed in a manifest (the paper used soundbible.com's "movies" tag, without speech).

Manifest columns: `file,url,sha256,licence,title,label,contains_speech` (sha256 may be empty: the file is then
unverified and its hash is recorded in the fetch report). Rows with `contains_speech` true are excluded.
Layout (after fetching, and the demo's): `<root>/manifest.csv` and `<root>/files/<file>`.
Splits are by source recording (stable hash of the file name): pieces of one recording never share two splits.
"""
from __future__ import annotations

import csv
import io
import logging
import shutil
from pathlib import Path
from typing import Annotated, Sequence

from tqdm import tqdm

from pipeline.config import Int, PositiveFloat, PositiveInt, SampleRate, Section, SplitFractions, Str, rule, section
from pipeline.corpora.base import CorpusRecipe, PlannedDownload
from pipeline.corpora.demo import synthesis as demo
from pipeline.corpora.demo.backgrounds import BACKGROUND_KINDS
from pipeline.corpora.download import DownloadError, download
from pipeline.corpora.recordings import Recording, stable_split
from pipeline.shards import file_sha256

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
COLUMNS = ("file", "url", "sha256", "licence", "title", "label", "contains_speech")

# Random stream of the demo writer; a fixed value: changing it changes every generated file.
_TAG_SFX = 6


# --------------------------------------------------------------------------------------------- params schema


def _known_distinct_kinds(kinds: tuple[str, ...]) -> bool:
    return len(kinds) > 0 and len(set(kinds)) == len(kinds) and set(kinds) <= set(BACKGROUND_KINDS)


@section
class MovieSfxDemo(Section):
    kinds: Annotated[tuple[Str, ...], rule(_known_distinct_kinds,
                                           f"distinct background kinds among {sorted(BACKGROUND_KINDS)}")]
    per_kind: PositiveInt
    seconds: PositiveFloat
    sample_rate: SampleRate
    seed: Int


@section
class MovieSfxPaper(Section):
    manifest: Annotated[Str, rule(bool, f"the path of a CSV file with columns {','.join(COLUMNS)}")]


@section
class MovieSfxConfig(Section):
    """`corpora.movie_sfx`: the split fractions, the demo's sounds, the manifest of files to download."""

    split_fractions: SplitFractions
    demo: MovieSfxDemo
    paper: MovieSfxPaper


# --------------------------------------------------------------------------------------------- the manifest


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


def _has_speech(row: dict[str, str]) -> bool:
    return row["contains_speech"].strip().lower() == "true"


# --------------------------------------------------------------------------------------------- profile paper


def planned_downloads(config: MovieSfxConfig, downloads_dir: Path) -> list[PlannedDownload]:
    """Every speech-free manifest entry; each may fail without failing the fetch."""
    return [PlannedDownload(row["file"], row["url"], str(Path(downloads_dir) / "movie_sfx" / row["file"]),
                            row["sha256"] or None, required=False)
            for row in read_manifest(Path(config.paper.manifest)) if not _has_speech(row)]


def download_movie_sfx(config: MovieSfxConfig, raw_dir: Path, downloads_dir: Path, lock: Path | None = None) -> dict:
    """Download every speech-free manifest entry into `raw_dir/files`; a failed entry (a changed file upstream, see
    `download` for `lock`) is reported, not fatal."""
    planned = planned_downloads(config, downloads_dir)
    files = raw_dir / "files"
    files.mkdir(parents=True, exist_ok=True)
    failed, unverified = [], {}
    for item in planned:
        try:
            download(item.url, Path(item.dest), sha256=item.sha256, lock=lock)
        except (DownloadError, ValueError) as err:
            failed.append({"file": item.name, "url": item.url, "reason": str(err)})
            log.warning("movie_sfx: %s", err)
            continue
        if item.sha256 is None:
            unverified[item.name] = file_sha256(Path(item.dest))
        shutil.copyfile(item.dest, files / item.name)
    if len(failed) == len(planned):
        raise DownloadError(f"movie_sfx: every download in {config.paper.manifest} failed (first: {failed[0]['reason']})"
                            if failed else f"movie_sfx: {config.paper.manifest} lists no speech-free recording")
    shutil.copyfile(config.paper.manifest, raw_dir / MANIFEST)
    return {"failed_downloads": failed, "unverified_sha256": unverified}


def list_movie_sfx(config: MovieSfxConfig, raw_dir: Path) -> tuple[list[Recording], list[dict[str, str]]]:
    """Speech-free recordings present under `raw_dir/files`, and the manifest rows excluded (with reasons)."""
    raw_dir = Path(raw_dir)
    recordings, excluded = [], []
    for row in read_manifest(raw_dir / MANIFEST):
        name = row["file"]
        if _has_speech(row):
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


# --------------------------------------------------------------------------------------------- profile demo


def write_demo_movie_sfx(
    root: Path, *, kinds: Sequence[str], per_kind: int, seconds: float, sample_rate: int, seed: int
) -> None:
    """Write procedural sound effects: root/files/<kind>_<nnn>.wav plus root/manifest.csv.

    The manifest has the columns of COLUMNS; `file` is the plain file name ("rain_000.wav"), as in a
    manifest of downloads, and the file itself lies in root/files/.
    """
    unknown = sorted(set(kinds) - set(BACKGROUND_KINDS))
    if unknown:
        raise ValueError(f"unknown background kinds {unknown}; available: {sorted(BACKGROUND_KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"background kinds repeat: {list(kinds)}")
    root = Path(root)
    jobs = [(kind, index) for kind in kinds for index in range(per_kind)]
    rows: list[dict[str, str]] = []
    for kind, index in tqdm(jobs, desc="demo movie_sfx", unit="file", leave=False):
        rng = demo.seeded_rng(seed, _TAG_SFX, demo.stable_key(kind), index)
        name = f"{kind}_{index:03d}.wav"
        demo.write_wav(root / "files" / name, BACKGROUND_KINDS[kind](rng, seconds, sample_rate), sample_rate)
        rows.append({
            "file": name,
            "url": "",
            "sha256": file_sha256(root / "files" / name),
            "licence": "CC0 (generated)",
            "title": f"{kind.replace('_', ' ').capitalize()} {index + 1} (procedural)",
            "label": kind,
            "contains_speech": "false",
        })
    demo.write_text(root / MANIFEST, _manifest_text(rows))
    log.info("wrote demo movie_sfx to %s: %d kinds x %d files x %.1f s", root, len(kinds), per_kind, seconds)


def write_demo(config: MovieSfxConfig, raw_dir: Path) -> None:
    """Generate the offline stand-in: procedural background sounds (rain, wind, engine, ...) in the same layout."""
    d = config.demo
    write_demo_movie_sfx(raw_dir, kinds=d.kinds, per_kind=d.per_kind, seconds=d.seconds, sample_rate=d.sample_rate,
                         seed=d.seed)


def _manifest_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda row: row["file"]))
    return buffer.getvalue()


RECIPE = CorpusRecipe(name="movie_sfx", schema=MovieSfxConfig, write_demo=write_demo,
                      planned_downloads=planned_downloads, download=download_movie_sfx,
                      list_recordings=list_movie_sfx)
