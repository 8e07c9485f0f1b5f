"""Weak labels from subtitles: a class-supervised dataset from your films or recordings, with no isolated source.

Every recording with a subtitle file beside it (`film.wav` + `film.srt`, `film.en.vtt`, `film.ass`) is read in
blocks, resampled, and cut into clips of `audio.clip_seconds`. A clip that a subtitle cue covers for at least
`min_overlap` of its length is labelled "speech + background"; one that no cue comes within `margin_seconds` of,
"background" (a solo segment); the clips in between are in doubt (a line may start early or end late) and
dropped. Digitally silent clips are dropped too. Everything dropped or skipped is counted in the datasheet.

The result has the layout of a mixed dataset (`data/mixtures/<name>/{train,valid}`, classes speech and
background, d2's) without sources, so only class supervision can learn from it; variants use its background
clips as solo segments through `solo_share`. Train and valid are assigned per chunk of `chunk_seconds` of each
recording (neighbouring clips stay on the same side), deterministically from the seed and the file's path.
"""
from __future__ import annotations

import logging
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pysubs2
import soundfile as sf
import soxr
from tqdm import tqdm

from pipeline.audio.clips import rms, to_db
from pipeline.audio.io import RESAMPLE_QUALITY
from pipeline.audio.media import MediaReader
from pipeline.config import SUBTITLED_CLASSES, AudioConfig, ShardConfig, SubtitledConfig
from pipeline.mixing.build import mixture_schema
from pipeline.shards import ShardWriter, audio_array

log = logging.getLogger(__name__)

SUBTITLE_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa")
SPEECH, BACKGROUND, DOUBT = 0, 1, 2
LABEL_NAMES = {SPEECH: "speech+background", BACKGROUND: "background", DOUBT: "in doubt"}
SPLITS = ("train", "valid")
MEDIA_SUFFIXES = {".mkv", ".mka", ".mp4", ".m4v", ".m4a", ".mov", ".webm", ".ac3", ".eac3", ".aac", ".ts"}
READ_SECONDS = 30.0  # decoded audio held at a time: memory stays flat in the recording's length


class SubtitleError(ValueError):
    """A subtitle file cannot be used; the message names it."""


def audio_suffixes() -> set[str]:
    """File name extensions soundfile decodes, and the film containers PyAV decodes (`MEDIA_SUFFIXES`)."""
    return soundfile_suffixes() | MEDIA_SUFFIXES


def soundfile_suffixes() -> set[str]:
    extra = {"AIFF": [".aif", ".aiff"], "OGG": [".ogg", ".oga", ".opus"], "WAVEX": [".wav"], "RF64": [".wav"]}
    return {s for fmt in sf.available_formats() for s in extra.get(fmt, [f".{fmt.lower()}"])}


def find_subtitles(recording: Path) -> Path | None:
    """The subtitle file beside a recording: `<stem>.srt`, or `<stem>.<anything>.srt` (e.g. a language code), in
    SubRip, WebVTT or ASS; the first by name when there are several; None when there is none."""
    found = sorted(p for p in recording.parent.iterdir() if p.is_file() and p.suffix.lower() in SUBTITLE_SUFFIXES
                   and (p.stem == recording.stem or p.name.startswith(recording.stem + ".")))
    return found[0] if found else None


def read_cues(path: Path) -> np.ndarray:
    """The (start, end) seconds of every cue with text, sorted, overlapping cues merged: shape (cues, 2)."""
    try:
        subtitles = pysubs2.load(str(path), encoding="utf-8")
    except UnicodeDecodeError:
        subtitles = _load_latin1(path)
    except (pysubs2.exceptions.Pysubs2Error, ValueError, KeyError) as err:
        raise SubtitleError(f"{path}: cannot read subtitles ({err}); expected SubRip, WebVTT or ASS") from err
    spans = sorted((e.start / 1000.0, e.end / 1000.0) for e in subtitles
                   if not e.is_comment and e.end > e.start and e.plaintext.strip())
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged, dtype=np.float64).reshape(-1, 2)


def _load_latin1(path: Path) -> pysubs2.SSAFile:
    try:  # older subtitle files are often Windows-1252 / Latin-1; every byte decodes in Latin-1
        return pysubs2.load(str(path), encoding="latin-1")
    except (pysubs2.exceptions.Pysubs2Error, ValueError, KeyError) as err:
        raise SubtitleError(f"{path}: cannot read subtitles ({err}); expected SubRip, WebVTT or ASS") from err


def label_clips(cues: np.ndarray, starts: np.ndarray, clip_seconds: float, min_overlap: float,
                margin_seconds: float, block: int = 512) -> np.ndarray:
    """The label of each clip [start, start + clip_seconds): SPEECH, BACKGROUND or DOUBT (see the module).
    Clips are compared with every cue `block` clips at a time (memory: block x cues)."""
    starts = np.asarray(starts, dtype=np.float64)
    labels = np.full(starts.shape[0], BACKGROUND, dtype=np.int8)
    if len(cues) == 0:
        return labels
    cue_start, cue_end = cues[None, :, 0], cues[None, :, 1]
    for first in range(0, starts.shape[0], block):
        a = starts[first:first + block, None]
        b = a + clip_seconds
        covered = np.clip(np.minimum(b, cue_end) - np.maximum(a, cue_start), 0.0, None).sum(axis=1)
        near = ((cue_start < b + margin_seconds) & (cue_end > a - margin_seconds)).any(axis=1)
        part = labels[first:first + block]
        part[near] = DOUBT
        part[covered >= min_overlap * clip_seconds] = SPEECH
    return labels


def valid_chunks(relative: str, chunks: int, config: SubtitledConfig) -> set[int]:
    """Which chunks of a recording go to the valid split: `valid_fraction` of them (at least one when the
    recording has two or more), drawn from the seed and the file's path only."""
    if chunks < 2:
        return set()
    count = max(1, round(config.valid_fraction * chunks))
    rng = np.random.default_rng([config.seed, zlib.crc32(relative.encode())])
    return set(rng.permutation(chunks)[:count].tolist())


def iter_clips(path: Path, sample_rate: int, clip_samples: int) -> Iterator[np.ndarray]:
    """The consecutive full clips of a recording, mono at `sample_rate`, decoded READ_SECONDS at a time (films:
    the default audio stream, through PyAV)."""
    if path.suffix.lower() not in soundfile_suffixes():
        yield from _media_clips(path, sample_rate, clip_samples)
        return
    with sf.SoundFile(str(path)) as audio:
        resampler = soxr.ResampleStream(audio.samplerate, sample_rate, 1, dtype="float32",
                                        quality=RESAMPLE_QUALITY) if audio.samplerate != sample_rate else None
        pending = np.zeros(0, dtype=np.float32)
        block = max(1, int(READ_SECONDS * audio.samplerate))
        while True:
            samples = audio.read(block, dtype="float32", always_2d=True)
            last = samples.shape[0] < block
            mono = samples.mean(axis=1, dtype=np.float32)
            if not np.isfinite(mono).all():
                raise ValueError(f"non-finite samples near {audio.tell() / audio.samplerate:.1f} s")
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            pending = np.concatenate([pending, mono])
            whole = pending.shape[0] // clip_samples
            yield from pending[:whole * clip_samples].reshape(whole, clip_samples)
            pending = pending[whole * clip_samples:]
            if last:
                return


def _media_clips(path: Path, sample_rate: int, clip_samples: int) -> Iterator[np.ndarray]:
    with MediaReader(path) as reader:
        rate = reader.info.rate
        resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY) \
            if rate != sample_rate else None
        pending = np.zeros(0, dtype=np.float32)
        blocks = reader.blocks(max(1, int(READ_SECONDS * rate)))
        while True:
            samples = next(blocks, None)
            mono = np.zeros(0, np.float32) if samples is None else samples.mean(axis=1, dtype=np.float32)
            if not np.isfinite(mono).all():
                raise ValueError(f"non-finite samples near {reader.position:.1f} s")
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=samples is None)
            pending = np.concatenate([pending, mono])
            whole = pending.shape[0] // clip_samples
            yield from pending[:whole * clip_samples].reshape(whole, clip_samples)
            pending = pending[whole * clip_samples:]
            if samples is None:
                return


def _duration(recording: Path) -> float:
    """Seconds of audio a recording declares (soundfile's header, or the container's for films)."""
    if recording.suffix.lower() in soundfile_suffixes():
        info = sf.info(str(recording))
        return info.frames / info.samplerate
    with MediaReader(recording) as reader:
        if reader.info.duration is None:
            raise ValueError("the container states no duration")
        return reader.info.duration


@dataclass
class _Sheet:
    recordings: int = 0
    used: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    clips: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})
    dropped: Counter = field(default_factory=Counter)
    scaled: int = 0


class _SplitWriters:
    """One ShardWriter per split; rows are buffered a row group at a time."""

    def __init__(self, name: str, out_dir: Path, audio: AudioConfig, shards: ShardConfig):
        schema = mixture_schema(audio.clip_samples, len(SUBTITLED_CLASSES))
        self.name = name
        self.writers = {split: ShardWriter(
            out_dir / split, schema, prefix="mixtures", rows_per_group=shards.rows_per_group,
            groups_per_shard=shards.groups_per_shard, compression=shards.compression,
            metadata={"dataset": name, "split": split, "classes": list(SUBTITLED_CLASSES),
                      "sample_rate": audio.sample_rate, "clip_samples": audio.clip_samples, "weak_labels": True})
            for split in SPLITS}

    def write(self, split: str, mix_id: str, clip: np.ndarray, label: int, scale: float) -> None:
        labels = [1, 1] if label == SPEECH else [0, 1]
        self.writers[split].write({
            "mix_id": [mix_id], "split": [split], "mixture": audio_array(clip[None]),
            "labels": pa.FixedSizeListArray.from_arrays(pa.array(labels, pa.int8()), 2),
            "source_classes": pa.array([[]], pa.list_(pa.int16())),
            "source_clip_ids": pa.array([[]], pa.list_(pa.string())),
            "source_gains": pa.array([[]], pa.list_(pa.float32())),
            "source_shifts": pa.array([[]], pa.list_(pa.int32())),
            "sources": pa.array([[]], pa.list_(pa.list_(pa.float32(), clip.shape[0]))),
            "mixture_scale": pa.array([scale], pa.float32())})

    def close(self) -> dict[str, list[dict]]:
        return {split: [s.__dict__ for s in writer.close()] for split, writer in self.writers.items()}


def recordings_of(folder: Path) -> list[Path]:
    """Every audio file under `folder` that soundfile can decode, by path."""
    suffixes = audio_suffixes()
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def build_subtitled(name: str, config: SubtitledConfig, audio: AudioConfig, shards: ShardConfig, out_dir: Path,
                    max_peak: float = 0.99, progress: bool = True) -> dict:
    """Cut and label every subtitled recording under `config.path` into `out_dir/{train,valid}`; returns the
    datasheet. A recording without subtitles, or that cannot be read, is skipped and counted (with the reason);
    ValueError when no recording gives a clip, naming the folder."""
    folder = Path(config.path)
    if not folder.is_dir():
        raise FileNotFoundError(f"subtitled.{name}.path: {folder} is not a folder")
    sheet = _Sheet()
    writers = _SplitWriters(name, Path(out_dir), audio, shards)
    recordings = recordings_of(folder)
    sheet.recordings = len(recordings)
    for recording in tqdm(recordings, desc=f"subtitled {name}", unit="file", disable=not progress):
        relative = recording.relative_to(folder).as_posix()
        subtitles = find_subtitles(recording)
        if subtitles is None:
            sheet.skipped[relative] = "no subtitle file beside it (.srt, .vtt, .ass)"
            continue
        try:
            _add_recording(recording, relative, subtitles, config, audio, max_peak, writers, sheet)
        except (SubtitleError, sf.LibsndfileError, RuntimeError, ValueError, OSError) as err:
            sheet.skipped[relative] = str(err)
            log.warning("subtitled %s: skipped %s: %s", name, relative, err)
    if not sum(sum(c.values()) for c in sheet.clips.values()):
        raise ValueError(f"subtitled.{name}: no labelled clip from {folder} ({len(recordings)} audio files, "
                         f"{len(sheet.skipped)} skipped: {dict(list(sheet.skipped.items())[:3])})")
    shard_lists = writers.close()
    return _datasheet(name, config, audio, sheet, shard_lists)


def _add_recording(recording: Path, relative: str, subtitles: Path, config: SubtitledConfig, audio: AudioConfig,
                   max_peak: float, writers: _SplitWriters, sheet: _Sheet) -> None:
    cues = read_cues(subtitles)
    chunk_clips = max(1, int(config.chunk_seconds // audio.clip_seconds))
    clips_total = int(_duration(recording) // audio.clip_seconds)
    valid = valid_chunks(relative, -(-clips_total // chunk_clips), config)
    # resampling may round the decoded length up by a clip: label one more than the header promises
    labels = label_clips(cues, np.arange(clips_total + 1) * audio.clip_seconds, audio.clip_seconds,
                         config.min_overlap, config.margin_seconds)
    rows: list[tuple[str, str, np.ndarray, int, float]] = []
    for index, clip in enumerate(iter_clips(recording, audio.sample_rate, audio.clip_samples)):
        if index >= len(labels):   # a container's stated duration is an estimate: clips past it are not labelled
            break
        label = int(labels[index])
        level = float(rms(clip))
        if label == DOUBT or to_db(level) < audio.silence_floor_db:
            sheet.dropped["in doubt" if label == DOUBT else "silent"] += 1
            continue
        target = audio.target_rms * (np.sqrt(2.0) if label == SPEECH else 1.0)  # a d2 mixture's level, or a source's
        levelled = clip * (target / level)
        peak = float(np.abs(levelled).max())
        scale = min(1.0, max_peak / peak)
        split = "valid" if index // chunk_clips in valid else "train"
        rows.append((split, f"{relative}#{index:06d}", (levelled * scale).astype(np.float32), label, scale))
    for split, mix_id, clip, label, scale in rows:  # written only once the whole file decoded
        writers.write(split, f"{writers.name}/{mix_id}", clip, label, scale)
        sheet.clips[split][LABEL_NAMES[label]] += 1
        sheet.scaled += scale < 1.0
    sheet.used.append(relative)


def _datasheet(name: str, config: SubtitledConfig, audio: AudioConfig, sheet: _Sheet,
               shard_lists: dict[str, list[dict]]) -> dict:
    reasons = Counter(reason.split(":")[0] if reason.startswith("no subtitle") else "unreadable"
                      for reason in sheet.skipped.values())
    return {
        "dataset": name, "classes": list(SUBTITLED_CLASSES), "sample_rate": audio.sample_rate,
        "clip_samples": audio.clip_samples, "weak_labels": "subtitles",
        "settings": {"path": config.path, "min_overlap": config.min_overlap, "margin_seconds": config.margin_seconds,
                     "valid_fraction": config.valid_fraction, "chunk_seconds": config.chunk_seconds,
                     "seed": config.seed},
        "recordings": sheet.recordings, "recordings_used": len(sheet.used),
        "recordings_skipped": dict(sorted(sheet.skipped.items())), "skipped_by_reason": dict(sorted(reasons.items())),
        "splits": {split: {"clips": sum(sheet.clips[split].values()), "clips_per_label": dict(sorted(
            sheet.clips[split].items())), "solo_segments": sheet.clips[split]["background"]} for split in SPLITS},
        "clips_dropped": dict(sorted(sheet.dropped.items())),
        "clips_scaled_to_avoid_clipping": sheet.scaled,
        "shards": shard_lists,
    }
