"""Checks `enhance` makes before any work: block size, output paths and formats, stem names, a truncated input.

Every refusal is one line naming the path or value and what was expected; nothing has been written yet.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import soundfile as sf

from pipeline.enhance.media import CONTAINERS

STEMS = ("dialogue", "background")
MAX_BLOCK_SECONDS = 3600.0  # blocks are held in memory: an hour of 8-channel 48 kHz float32 is 5.5 GB already
_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def check_block_seconds(value: float) -> None:
    """ValueError unless `value` is a finite number of seconds in (0, MAX_BLOCK_SECONDS]."""
    if not math.isfinite(value) or not 0 < value <= MAX_BLOCK_SECONDS:
        raise ValueError(f"--block-seconds {value}; expected a number of seconds > 0 and <= {MAX_BLOCK_SECONDS:g}")


def output_paths(source: Path, target: Path, stems: Path | None) -> dict[str, Path]:
    """{"output": target, and with `stems` "dialogue"/"background": <stems>/<input name>.<stem><suffix>}, checked:
    each is a writable format, not a folder, distinct from the others and from the input."""
    outputs = {"output": target}
    if stems is not None:
        if stems.exists() and not stems.is_dir():
            raise ValueError(f"--stems {stems} is a file; expected a folder (it is created when missing)")
        suffix = target.suffix if _soundfile_writes(target) else ".flac"   # stems of a film: FLAC files
        name = "stdin" if str(source) == "-" else source.stem
        outputs.update({kind: stems / f"{name}.{kind}{suffix}" for kind in STEMS})
    for kind, path in outputs.items():
        what = "output" if kind == "output" else f"{kind} stem"
        if str(path) == "-":
            continue
        if path.is_dir():
            raise ValueError(f"{what} {path} is a folder; expected a file path such as {path / 'enhanced.wav'}")
        check_writable_format(path, what)
        if path.parent.exists() and not path.parent.is_dir():
            raise ValueError(f"{what} {path}: {path.parent} is a file, not a folder")
        if same_file(path, source):
            raise ValueError(f"{what} {path} is the input file; choose another path (the input is never modified)")
    kinds = list(outputs)
    for i, first in enumerate(kinds):
        for second in kinds[i + 1:]:
            if same_file(outputs[first], outputs[second]):
                raise ValueError(f"the {first} and the {second} would both be written to {outputs[second]}; choose "
                                 f"another output name or --stems folder")
    return outputs


def check_writable_format(path: Path, what: str = "output") -> None:
    """ValueError unless soundfile (wav, flac, ogg, aiff, ...) or, for the output, the muxer of a container
    extension (`media.CONTAINERS`: mkv, mp4, m4a, ac3, ...) can write a file named `path`."""
    if _soundfile_writes(path) or what == "output" and path.suffix.lower() in CONTAINERS:
        return
    found = f"extension {path.suffix!r}" if path.suffix else "no extension"
    raise ValueError(f"{what} {path} has {found}; expected an audio extension soundfile writes (.wav, .flac, "
                     f".ogg, .aiff, ...) or a container ({', '.join(sorted(CONTAINERS))})")


def _soundfile_writes(path: Path) -> bool:
    return path.suffix.lstrip(".").upper() in sf.available_formats()


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name the same file (the same path once resolved, or links to one file; never a pipe)."""
    if str(first) == "-" or str(second) == "-":
        return False
    if first.resolve() == second.resolve():
        return True
    return first.exists() and second.exists() and os.path.samefile(first, second)


def check_complete(source: Path, info) -> None:
    """ValueError when a WAV-family header declares more audio data than the file holds (libsndfile would read the
    rest silently as a shorter file)."""
    with sf.SoundFile(str(source)) as handle:
        found = _DATA_CHUNK.search(handle.extra_info)
    if found is None:
        return
    declared, present = int(found.group(1)), int(found.group(2))
    if present >= declared:
        return
    seconds = info.frames / info.samplerate
    declared_seconds = seconds * declared / present if present else float("inf")
    raise ValueError(f"{source}: truncated: its header declares {declared} bytes of audio ({declared_seconds:.2f} s) "
                     f"but the file ends after {present} ({seconds:.2f} s); expected a complete file (re-save what is "
                     f"there, e.g. with sox or ffmpeg, to enhance it)")
