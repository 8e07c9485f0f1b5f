"""Recordings -> 1-s, RMS-normalised clips in Parquet shards (one directory per corpus, one shard series per split).

Every corpus recipe lists its recordings; this module does the rest the same way for all of them: decode,
downmix, resample (soxr), cut into clips, drop near-silent clips, normalise, and write shards streaming, with
bounded memory. A recording that cannot be used is skipped, listed with its reason and counted; it never stops
the corpus.
"""
from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from pipeline.audio.clips import cut_clips, normalise_rms, rms, to_db
from pipeline.audio.io import AudioError, load_mono
from pipeline.config import SPLITS, AudioConfig, ShardConfig
from pipeline.corpora.recordings import Recording
from pipeline.orchestration.fanout import Fanout, current_fanout
from pipeline.shards import ShardWriter, audio_array

log = logging.getLogger(__name__)

BATCH_RECORDINGS = 256  # recordings decoded per round; bounds the clips held in memory
CHUNK_RECORDINGS = 16   # recordings per inter-process message (one at a time costs more than it saves)
DECODED_DIR = ".decoded"  # under the output folder while a fanned-out prepare runs: one file pair per batch


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
            "clip_rms_db_before_normalisation": _stats(levels),
        }


def prepare_clips(corpus: str, recordings: Sequence[Recording], out_dir: str | Path, audio: AudioConfig,
                  shards: ShardConfig, *, excluded: Sequence[dict[str, str]] = (), workers: int = 1,
                  progress: bool = True, fanout: Fanout | None = None) -> PrepareReport:
    """Write the clip table of `recordings` to `out_dir/<split>/clips-NNNNN.parquet` and return the report.

    `excluded` lists items the corpus recipe left out before decoding (`file`, `reason`); they are reported too.
    Decoding runs on `workers` local processes, or, given a `fanout` (default: the one installed with
    `pipeline.orchestration.fanout.use_fanout`), as one task per batch of `BATCH_RECORDINGS` recordings; either
    way the shards are written here, in recording order, so the output is byte-identical.
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
    bar = tqdm(total=len(recordings), desc=f"prepare {corpus}", unit="file", disable=not progress)
    fanout = fanout or current_fanout()
    with _Decoder(corpus, by_split, audio, workers, fanout, out_dir / DECODED_DIR) as decoded:
        for split in by_split:
            with ShardWriter(out_dir / split, schema, prefix="clips", rows_per_group=shards.rows_per_group,
                             groups_per_shard=shards.groups_per_shard, compression=shards.compression,
                             metadata={**metadata, "split": split}) as writer:
                for recording, outcome in decoded(split):
                    bar.update(1)
                    if isinstance(outcome, str):
                        report.skipped.append({"file": recording.source_file, "reason": outcome})
                        log.warning("skipped %s: %s", recording.source_file, outcome)
                        continue
                    rows, levels, silent = outcome
                    report.dropped_silent += silent
                    if rows is None:
                        report.skipped.append({"file": recording.source_file,
                                               "reason": "silent: every clip below silence_threshold_db"})
                        continue
                    writer.write(rows)
                    report.recordings_used += 1
                    report.clips[split] += len(levels)
                    report.clips_per_label[f"{split}/{recording.label}"] += len(levels)
                    report.rms_db.extend(levels)
    bar.close()
    if report.recordings_used == 0:
        raise ValueError(f"corpus {corpus!r}: none of its {len(recordings)} recordings could be used "
                         f"(first reason: {report.skipped[0]['reason'] if report.skipped else 'unknown'})")
    return report


def clips_of_recording(corpus: str, recording: Recording,
                       audio: AudioConfig) -> tuple[pa.Table | None, list[float], int]:
    """Decode one recording into clip rows; returns (rows or None if all silent, RMS dB of kept clips, dropped)."""
    signal = load_mono(recording.path, audio.sample_rate)
    pieces = cut_clips(signal, audio.clip_samples, audio.min_tail_fraction)
    levels = rms(np.stack([p.samples for p in pieces]))
    keep = [i for i, level in enumerate(levels) if to_db(level) >= audio.silence_threshold_db]
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


def _decode_all(corpus: str, items: Sequence[Recording], audio: AudioConfig,
                pool) -> Iterator[tuple[Recording, object]]:
    """Decode recordings in order (results are ordered, so the output does not depend on worker timing)."""
    for start in range(0, len(items), BATCH_RECORDINGS):
        batch = items[start:start + BATCH_RECORDINGS]
        yield from zip(batch, pool.map(_decode_one, [(corpus, r, audio) for r in batch], chunksize=CHUNK_RECORDINGS))


class _Decoder:
    """`decoded(split)` yields (recording, outcome) of a split in order; splits must be asked for in order.

    Without a fanout: the local pool, split by split (as before fan-out existed). With one: every batch of every
    split is submitted up front (the fanout bounds how many run at once); out-of-process batches come back as
    files under `scratch`, read one at a time and deleted, so memory stays one batch.
    """

    def __init__(self, corpus: str, by_split: dict[str, list[Recording]], audio: AudioConfig, workers: int,
                 fanout: Fanout | None, scratch: Path):
        self.corpus, self.by_split, self.audio, self.fanout, self.scratch = corpus, by_split, audio, fanout, scratch
        self.pool = _pool(workers) if fanout is None else None
        self.jobs = [(split, index, items[start:start + BATCH_RECORDINGS])
                     for split, items in by_split.items()
                     for index, start in enumerate(range(0, len(items), BATCH_RECORDINGS))]
        self.results: Iterator | None = None

    def __enter__(self):
        if self.pool is not None:
            self.pool.__enter__()
        elif self.fanout.in_process:
            self.results = self.fanout.map(decode_batch, [(self.corpus, batch, self.audio) for *_, batch in self.jobs],
                                           task="decode", names=[f"{s}-{i:05d}" for s, i, _ in self.jobs])
        else:
            self.scratch.mkdir(parents=True, exist_ok=True)
            self.results = self.fanout.map(
                decode_batch_to_file,
                [(self.corpus, batch, self.audio, str(self.scratch / f"{s}-{i:05d}")) for s, i, batch in self.jobs],
                task="decode", names=[f"{self.corpus}/{s}-{i:05d}" for s, i, _ in self.jobs])
        return self

    def __call__(self, split: str) -> Iterator[tuple[Recording, object]]:
        if self.pool is not None:
            yield from _decode_all(self.corpus, self.by_split[split], self.audio, self.pool)
            return
        for job_split, _, batch in self.jobs:
            if job_split != split:
                continue
            result = next(self.results)
            yield from zip(batch, result if self.fanout.in_process else load_decoded(result, delete=True))

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.__exit__(*exc)
        if self.results is not None:
            self.results.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def decode_batch(job: tuple[str, Sequence[Recording], AudioConfig]) -> list:
    """Decode a batch of recordings: one outcome per recording, as `clips_of_recording` or an error string."""
    corpus, batch, audio = job
    return [_decode_one((corpus, recording, audio)) for recording in batch]


def decode_batch_to_file(job: tuple[str, Sequence[Recording], AudioConfig, str]) -> str:
    """`decode_batch`, written to `<stem>.arrow` (the rows) and `<stem>.json` (outcomes); returns the stem."""
    corpus, batch, audio, stem = job
    outcomes = decode_batch((corpus, batch, audio))
    tables, index = [], []
    for outcome in outcomes:
        if isinstance(outcome, str):
            index.append({"error": outcome})
            continue
        rows, levels, dropped = outcome
        index.append({"rows": 0 if rows is None else rows.num_rows, "levels": levels, "dropped": dropped})
        if rows is not None:
            tables.append(rows)
    schema = clip_schema(audio.clip_samples)
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    tmp = Path(stem + ".arrow.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        writer.write_table(table)
    tmp.replace(stem + ".arrow")
    Path(stem + ".json").write_text(json.dumps(index))
    return stem


def load_decoded(stem: str, delete: bool = False) -> list:
    """The outcomes written by `decode_batch_to_file` (rows as Arrow tables, levels exactly as computed)."""
    with pa.OSFile(stem + ".arrow", "rb") as source:  # read into memory: the file is deleted below
        table = pa.ipc.open_file(source).read_all()
    index = json.loads(Path(stem + ".json").read_text())
    outcomes, start = [], 0
    for item in index:
        if "error" in item:
            outcomes.append(item["error"])
            continue
        rows = table.slice(start, item["rows"]) if item["rows"] else None
        start += item["rows"]
        outcomes.append((rows, item["levels"], item["dropped"]))
    if delete:
        Path(stem + ".arrow").unlink(missing_ok=True)
        Path(stem + ".json").unlink(missing_ok=True)
    return outcomes


class _InlinePool:
    """The `map` of an executor, run in this process (no start-up cost for one worker)."""

    def map(self, fn, items, chunksize=1):
        return [fn(item) for item in items]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _pool(workers: int):
    return _InlinePool() if workers <= 1 else ProcessPoolExecutor(max_workers=workers)


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"count": int(values.size), "mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4),
            "min": round(float(values.min()), 4), "max": round(float(values.max()), 4)}
