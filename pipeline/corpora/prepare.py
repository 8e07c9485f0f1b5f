"""Recordings -> 1-s, RMS-normalised clips in Parquet shards (one directory per corpus, one shard series per split).

Every corpus recipe lists its recordings; this module does the rest the same way for all of them: decode,
downmix, resample (soxr), cut into clips, drop near-silent clips, normalise, and write shards streaming, with
bounded memory. A recording that cannot be used is skipped, listed with its reason and counted; it never stops
the corpus.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from pipeline.audio.clips import cut_clips, normalise_rms, rms, silent_clips, to_db
from pipeline.audio.io import AudioError, load_mono
from pipeline.config import SPLITS, AudioConfig, Params, ShardConfig
from pipeline.corpora.recipes import list_recordings
from pipeline.corpora.recordings import Recording
from pipeline.parallel import Inline, ParallelMap
from pipeline.shards import ShardWriter, audio_array

log = logging.getLogger(__name__)

BATCH_RECORDINGS = 64  # recordings per decoding task (one at a time costs more in messages than it saves)
NOTABLE_SILENT_SHARE = 0.1  # a speaker or label losing this share of its recordings as silent is named in the report
NO_SPEAKER = "(none)"  # the speaker key of recordings without one


def clip_schema(clip_samples: int) -> pa.Schema:
    """Columns of a clip table; `audio` is a fixed-size float32 list of `clip_samples`."""
    return pa.schema([
        ("clip_id", pa.string()),
        ("corpus", pa.string()),
        ("label", pa.string()),
        ("speaker", pa.string()),
        ("gender", pa.string()),
        ("split", pa.string()),
        ("source_file", pa.string()),
        ("offset", pa.int64()),
        ("sample_rate", pa.int32()),
        ("num_samples", pa.int32()),
        ("rms", pa.float32()),
        ("audio", pa.list_(pa.float32(), clip_samples)),
    ])


@dataclass
class PrepareReport:
    """What `prepare_clips` did: counts per split and label, and every skipped item with its reason."""

    corpus: str
    recordings: int = 0
    recordings_used: int = 0
    excluded: int = 0
    clips: Counter = field(default_factory=Counter)            # split -> clips written
    clips_per_label: Counter = field(default_factory=Counter)  # "split/label" -> clips written
    dropped_silent: int = 0
    silence: dict[str, dict[str, Counter]] = field(  # "speaker"/"label" -> name -> counts (see `count_silence`)
        default_factory=lambda: {"speaker": {}, "label": {}})
    skipped: list[dict[str, str]] = field(default_factory=list)
    rms_db: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        reasons = Counter(item["reason"].split(":")[0] for item in self.skipped)
        levels = np.asarray(self.rms_db, dtype=np.float64)
        return {
            "corpus": self.corpus,
            "recordings": self.recordings,
            "recordings_used": self.recordings_used,
            "recordings_excluded": self.excluded,
            "recordings_skipped": len(self.skipped),
            "skipped_by_reason": dict(sorted(reasons.items())),
            "skipped": self.skipped,
            "clips": {split: self.clips.get(split, 0) for split in SPLITS},
            "clips_total": sum(self.clips.values()),
            "clips_per_label": dict(sorted(self.clips_per_label.items())),
            "clips_dropped_silent": self.dropped_silent,
            "silence_by_speaker": _shares(self.silence["speaker"]),
            "silence_by_label": _shares(self.silence["label"]),
            "silence_notable": self.notable_silence(),
            "clip_rms_db_before_normalisation": _stats(levels),
        }


    def count_silence(self, recording: Recording, clips: int, silent: int) -> None:
        """Count one decoded recording's clips and silent clips (and whether it was silent throughout) under its
        speaker and its label."""
        for kind, name in (("speaker", recording.speaker or NO_SPEAKER), ("label", recording.label)):
            counts = self.silence[kind].setdefault(name, Counter())
            counts.update(recordings=1, recordings_silent=int(silent == clips), clips=clips, clips_silent=silent)

    def notable_silence(self) -> list[str]:
        """Speakers and labels that lost at least NOTABLE_SILENT_SHARE of their recordings as silent, worst first."""
        rows = [(c["recordings_silent"] / c["recordings"], kind, name, c)
                for kind in ("speaker", "label") for name, c in self.silence[kind].items()]
        return [f"{kind} {name}: {c['recordings_silent']} of {c['recordings']} recordings silent ({share:.0%})"
                for share, kind, name, c in sorted(rows, key=lambda r: (-r[0], r[1], r[2]))
                if share >= NOTABLE_SILENT_SHARE]


def prepare_corpus(name: str, params: Params, raw_dir: Path | None, out_dir: Path, *, progress: bool = True,
                   parallel: ParallelMap | None = None) -> dict:
    """List and prepare corpus `name` into clip shards under `out_dir/<split>/`; returns the prepare report."""
    recordings, excluded = list_recordings(name, params, raw_dir)
    log.info("%s: %d recordings, %d excluded before decoding", name, len(recordings), len(excluded))
    return prepare_clips(name, recordings, out_dir, params.audio, params.shards, excluded=excluded,
                         progress=progress, parallel=parallel).as_dict()


def prepare_clips(corpus: str, recordings: Sequence[Recording], out_dir: str | Path, audio: AudioConfig,
                  shards: ShardConfig, *, excluded: Sequence[dict[str, str]] = (), progress: bool = True,
                  parallel: ParallelMap | None = None) -> PrepareReport:
    """Write the clip table of `recordings` to `out_dir/<split>/clips-NNNNN.parquet` and return the report.

    `excluded` lists items the corpus recipe left out before decoding (`file`, `reason`); they are reported too.
    Decoding runs as one task of `parallel` (default: inline) per batch of `BATCH_RECORDINGS` recordings; the
    shards are written here, in recording order, so the output is byte-identical whichever map decoded it.
    """
    out_dir = Path(out_dir)
    report = PrepareReport(corpus=corpus, recordings=len(recordings), excluded=len(excluded),
                           skipped=[dict(item) for item in excluded])
    if not recordings:
        raise ValueError(f"corpus {corpus!r} lists no recordings; expected at least one audio file")
    schema = clip_schema(audio.clip_samples)
    metadata = {"corpus": corpus, "sample_rate": audio.sample_rate, "clip_samples": audio.clip_samples,
                "target_rms": audio.target_rms}
    by_split = {split: [r for r in recordings if r.split == split] for split in SPLITS}
    jobs = [(split, index, items[start:start + BATCH_RECORDINGS])
            for split, items in by_split.items()
            for index, start in enumerate(range(0, len(items), BATCH_RECORDINGS))]
    decoded = (parallel or Inline()).map(decode_batch, [(corpus, batch, audio) for *_, batch in jobs],
                                         task="decode", names=[f"{corpus}/{s}-{i:05d}" for s, i, _ in jobs])
    bar = tqdm(total=len(recordings), desc=f"prepare {corpus}", unit="file", disable=not progress)
    for split in by_split:  # jobs are in split order, so each split's batches come back together
        with ShardWriter(out_dir / split, schema, prefix="clips", rows_per_group=shards.rows_per_group,
                         groups_per_shard=shards.groups_per_shard, compression=shards.compression,
                         metadata={**metadata, "split": split}) as writer:
            for batch in (batch for job_split, _, batch in jobs if job_split == split):
                for recording, outcome in zip(batch, next(decoded)):
                    bar.update(1)
                    _record(report, writer, split, recording, outcome)
    bar.close()
    for line in report.notable_silence():
        log.warning("%s: %s (see audio.silence_* in params.yaml)", corpus, line)
    if report.recordings_used == 0:
        raise ValueError(f"corpus {corpus!r}: none of its {len(recordings)} recordings could be used "
                         f"(first reason: {report.skipped[0]['reason'] if report.skipped else 'unknown'})")
    return report


def _record(report: PrepareReport, writer: ShardWriter, split: str, recording: Recording, outcome) -> None:
    """Write one recording's clips, or count and list why it was skipped."""
    if isinstance(outcome, str):
        report.skipped.append({"file": recording.source_file, "reason": outcome})
        log.warning("skipped %s: %s", recording.source_file, outcome)
        return
    rows, levels, silent = outcome
    report.dropped_silent += silent
    report.count_silence(recording, len(levels) + silent, silent)
    if rows is None:
        report.skipped.append({"file": recording.source_file,
                               "reason": "silent: every clip below audio.silence_floor_db, or quieter than "
                                         "audio.silence_threshold_db and the recording's loudest clip"})
        return
    writer.write(rows)
    report.recordings_used += 1
    report.clips[split] += len(levels)
    report.clips_per_label[f"{split}/{recording.label}"] += len(levels)
    report.rms_db.extend(levels)


def clips_of_recording(corpus: str, recording: Recording,
                       audio: AudioConfig) -> tuple[pa.Table | None, list[float], int]:
    """Decode one recording into clip rows; returns (rows or None if all silent, RMS dB of kept clips, dropped)."""
    signal = load_mono(recording.path, audio.sample_rate)
    pieces = cut_clips(signal, audio.clip_samples, audio.min_tail_fraction)
    levels = rms(np.stack([p.samples for p in pieces]))
    silent = silent_clips(to_db(levels), relative_db=audio.silence_relative_db,
                          threshold_db=audio.silence_threshold_db, floor_db=audio.silence_floor_db)
    keep = [i for i in range(len(pieces)) if not silent[i]]
    dropped = len(pieces) - len(keep)
    if not keep:
        return None, [], dropped
    samples = np.stack([normalise_rms(pieces[i].samples, audio.target_rms) for i in keep])
    n = len(keep)
    rows = pa.table({
        "clip_id": [f"{corpus}/{recording.source_file}#{pieces[i].offset}" for i in keep],
        "corpus": [corpus] * n,
        "label": [recording.label] * n,
        "speaker": [recording.speaker] * n,
        "gender": [recording.gender] * n,
        "split": [recording.split] * n,
        "source_file": [recording.source_file] * n,
        "offset": pa.array([pieces[i].offset for i in keep], pa.int64()),
        "sample_rate": pa.array([audio.sample_rate] * n, pa.int32()),
        "num_samples": pa.array([audio.clip_samples] * n, pa.int32()),
        "rms": pa.array(levels[keep].astype(np.float32)),
        "audio": audio_array(samples),
    }, schema=clip_schema(audio.clip_samples))
    return rows, [float(to_db(levels[i])) for i in keep], dropped


def _decode_one(args: tuple[str, Recording, AudioConfig]):
    corpus, recording, audio = args
    try:
        return clips_of_recording(corpus, recording, audio)
    except (AudioError, FileNotFoundError, ValueError, RuntimeError) as err:
        return f"{type(err).__name__}: {err}"


def decode_batch(job: tuple[str, Sequence[Recording], AudioConfig]) -> list:
    """Decode a batch of recordings: one outcome per recording, as `clips_of_recording` or an error string."""
    corpus, batch, audio = job
    return [_decode_one((corpus, recording, audio)) for recording in batch]


def _shares(counts: dict[str, Counter]) -> dict[str, dict[str, float | int]]:
    keys = ("recordings", "recordings_silent", "clips", "clips_silent")
    return {name: {**{key: c[key] for key in keys},
                   "recordings_silent_share": round(c["recordings_silent"] / c["recordings"], 4)}
            for name, c in sorted(counts.items())}


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"count": int(values.size), "mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4),
            "min": round(float(values.min()), 4), "max": round(float(values.max()), 4)}
