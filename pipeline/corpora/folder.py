"""Your own audio: a folder whose sub-folder names are the labels, or a CSV `path,label[,speaker[,gender[,split]]]`.

Splits come from the CSV's `split` column when given, else from a stable hash of the speaker (so speakers never
share two splits) or, with no speaker, of the file's path.
"""
from __future__ import annotations

import csv
from pathlib import Path

from pipeline.config import SPLITS, FolderConfig
from pipeline.corpora.recordings import Recording, audio_files, stable_split

SUBFOLDERS = "subfolders"


def list_folder(config: FolderConfig, base_dir: Path = Path(".")) -> list[Recording]:
    """List a folder corpus (`config.path` relative to `base_dir` unless absolute)."""
    root = _resolve(config.path, base_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"folder corpus {root} does not exist or is not a directory")
    if config.labels == SUBFOLDERS:
        return _from_subfolders(root, config)
    return _from_csv(_resolve(config.labels, base_dir), root, config)


def _from_subfolders(root: Path, config: FolderConfig) -> list[Recording]:
    recordings = []
    for path in audio_files(root):
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            raise ValueError(f"{path}: with labels: subfolders, every file must sit in a sub-folder named by its label")
        label = relative.parts[0]
        recordings.append(Recording(path=path, source_file=relative.as_posix(), label=label, speaker="",
                                    gender=None, split=stable_split(relative.as_posix(), config.split_fractions)))
    if not recordings:
        raise FileNotFoundError(f"folder corpus {root} holds no audio files in label sub-folders")
    return recordings


def _from_csv(csv_path: Path, root: Path, config: FolderConfig) -> list[Recording]:
    if not csv_path.is_file():
        raise FileNotFoundError(f"label file {csv_path} not found; expected a CSV with columns path,label")
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"path", "label"} <= set(reader.fieldnames or []):
            raise ValueError(f"{csv_path}: columns {reader.fieldnames}, expected at least path,label")
        rows = list(reader)
    recordings = []
    for number, row in enumerate(rows, start=2):
        path = _resolve(row["path"], csv_path.parent)
        relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else row["path"]
        speaker = (row.get("speaker") or "").strip()
        split = (row.get("split") or "").strip() or stable_split(speaker or relative, config.split_fractions)
        if split not in SPLITS:
            raise ValueError(f"{csv_path}, line {number}: split {split!r}, expected one of {SPLITS}")
        if not row["label"]:
            raise ValueError(f"{csv_path}, line {number}: empty label for {row['path']}")
        recordings.append(Recording(path=path, source_file=relative, label=row["label"], speaker=speaker,
                                    gender=(row.get("gender") or "").strip() or None, split=split))
    return sorted(recordings, key=lambda r: r.source_file)


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (Path(base) / candidate)
