"""What every corpus recipe lists: its recordings, each with label, speaker, gender and split."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import SPLITS, SplitFractions

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3")


@dataclass(frozen=True)
class Recording:
    """One audio file of a corpus.

    `source_file` is the path relative to the corpus root: it names the recording in clip ids and reports.
    """

    path: Path
    source_file: str
    label: str
    speaker: str
    gender: str | None
    split: str

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"{self.source_file}: split {self.split!r}, expected one of {SPLITS}")


def stable_split(key: str, fractions: SplitFractions) -> str:
    """Assign `key` to a split by a stable hash: the same key always lands in the same split on any machine."""
    position = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    if position < fractions.train:
        return "train"
    if position < fractions.train + fractions.valid:
        return "valid"
    return "test"


def printable_name(path: str | Path, *, lossy: bool = False) -> str | None:
    """`path` as text (POSIX separators) when its name is valid UTF-8, else None; `lossy`: always text, the bytes
    that are not UTF-8 written as `\\xNN` (for reports and messages)."""
    text = Path(path).as_posix()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates (PEP 383)
        return os.fsencode(text).decode("utf-8", "backslashreplace") if lossy else None
    return text


def unreadable_name(path: str | Path) -> dict[str, str]:
    """The prepare report's skip entry for a file whose name is not valid UTF-8."""
    return {"file": printable_name(path, lossy=True), "reason": "file name: not valid UTF-8; rename the file to include it"}


def audio_files(root: Path) -> list[Path]:
    """Every audio file under `root` (recursively), sorted so listings never depend on the file system."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
