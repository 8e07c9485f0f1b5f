"""Your own audio: a folder whose sub-folder names are the labels, or a CSV `path,label[,speaker[,gender[,split]]]`.

Splits come from the CSV's `split` column when given, else from a stable hash of the speaker (so speakers never
share two splits) or, with no speaker, of the file's path.

What is refused, naming the CSV and its line: a row whose file lies outside the folder (`../x`, an absolute path
elsewhere, a link leading out; the stage's DVC dependency is the folder, so an outside file could change unseen),
a label file outside the folder, the same file listed twice (a duplicate row, or one file in two splits: a leak
from training into evaluation), a label file that is not UTF-8 text. What is skipped, counted and listed in the
prepare report: a file whose name is not valid UTF-8, a file that does not fit the layout (no label sub-folder).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from pipeline.config import SPLITS, FolderConfig
from pipeline.corpora.recordings import AUDIO_SUFFIXES, Recording, printable_name, stable_split, unreadable_name

SUBFOLDERS = "subfolders"


def list_folder(config: FolderConfig, base_dir: Path = Path(".")) -> tuple[list[Recording], list[dict[str, str]]]:
    """List a folder corpus (`config.path` relative to `base_dir` unless absolute).

    Returns the recordings and the files skipped before decoding (`file`, `reason`), for the prepare report.
    """
    root = _resolve(config.path, base_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"folder corpus {root} does not exist or is not a directory")
    if config.labels == SUBFOLDERS:
        return _from_subfolders(root, config)
    return _from_csv(_resolve(config.labels, base_dir), root, config)


def _from_subfolders(root: Path, config: FolderConfig) -> tuple[list[Recording], list[dict[str, str]]]:
    recordings, skipped = [], []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        relative = path.relative_to(root)
        name = printable_name(relative)
        if name is None:
            skipped.append(unreadable_name(relative))
        elif len(relative.parts) < 2:
            skipped.append({"file": name, "reason": "layout: not in a label sub-folder (labels: subfolders)"})
        else:
            recordings.append(Recording(path=path, source_file=name, label=relative.parts[0], speaker="",
                                        gender=None, split=stable_split(name, config.split_fractions)))
    _refuse_duplicates([(r.path, f"{root / r.source_file}") for r in recordings], root)
    if not recordings:
        raise FileNotFoundError(f"folder corpus {root} holds no audio files in label sub-folders"
                                + (f" ({len(skipped)} skipped, first: {skipped[0]})" if skipped else ""))
    return recordings, skipped


def _from_csv(csv_path: Path, root: Path, config: FolderConfig) -> tuple[list[Recording], list[dict[str, str]]]:
    if not csv_path.is_file():
        raise FileNotFoundError(f"label file {csv_path} not found; expected a CSV with columns path,label")
    if not _inside(csv_path, root):
        raise ValueError(f"label file {csv_path} lies outside the folder {root}; keep it inside, so that DVC sees "
                         "when it changes")
    rows = _read_csv(csv_path)
    recordings, where = [], []
    for number, row in rows:
        given = (row.get("path") or "").strip()
        if not given:
            raise ValueError(f"{csv_path}, line {number}: empty path")
        path = _resolve(given, csv_path.parent)
        if not _inside(path, root):
            raise ValueError(f"{csv_path}, line {number}: path {given!r} lies outside the folder {root}; "
                             "expected a file inside it (relative to the label file, no '..' leading out)")
        speaker = (row.get("speaker") or "").strip()
        relative = os.path.relpath(os.path.normpath(path), os.path.normpath(root)).replace(os.sep, "/")
        split = (row.get("split") or "").strip() or stable_split(speaker or relative, config.split_fractions)
        if split not in SPLITS:
            raise ValueError(f"{csv_path}, line {number}: split {split!r}, expected one of {SPLITS}")
        label = (row.get("label") or "").strip()
        if not label:
            raise ValueError(f"{csv_path}, line {number}: empty label for {given}")
        recordings.append(Recording(path=path, source_file=relative, label=label, speaker=speaker,
                                    gender=(row.get("gender") or "").strip() or None, split=split))
        where.append((path, f"{csv_path}, line {number} ({split})"))
    _refuse_duplicates(where, root)
    return sorted(recordings, key=lambda r: r.source_file), []


def _read_csv(csv_path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a UTF-8 label CSV (a byte-order mark is allowed)."""
    data = csv_path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ValueError(f"{csv_path}, line {line}: not UTF-8 text (byte {data[err.start]:#04x} at offset "
                         f"{err.start}); save the label file as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not {"path", "label"} <= set(reader.fieldnames or []):
        raise ValueError(f"{csv_path}: columns {reader.fieldnames}, expected at least path,label")
    return [(reader.line_num, row) for row in reader]


def _refuse_duplicates(items: list[tuple[Path, str]], root: Path) -> None:
    """Fail when two entries are one file (same path, or links to one file): it would leak across splits."""
    first: dict[str, str] = {}
    for path, where in items:
        key = os.path.realpath(path)
        if key in first:
            raise ValueError(f"{first[key]} and {where} list the same file "
                             f"{os.path.relpath(key, os.path.realpath(root))}; expected each file once "
                             "(a file in two rows or two splits leaks between training and evaluation)")
        first[key] = where


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, links resolved, lies inside `root`."""
    resolved, base = os.path.realpath(path), os.path.realpath(root)
    return resolved.startswith(base.rstrip(os.sep) + os.sep)


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (Path(base) / candidate)
