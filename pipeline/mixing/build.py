"""Building a mixture dataset: plan -> load the used clips once -> mix in row-group batches -> Parquet shards.

Memory is the clips a split actually uses (loaded once, row group by row group; at most the corpus split) plus
one batch of mixtures. It grows with the mixture count only until every clip is in use, then stays flat
(benchmarks/bench_mix.py: 971 MiB for 18,750 d1 mixtures, 996 MiB for 37,500).
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.audio.clips import rms, to_db
from pipeline.config import SPLITS, AudioConfig, DatasetConfig, ShardConfig
from pipeline.mixing.catalog import class_candidates
from pipeline.mixing.plan import MixturePlan, plan_split
from pipeline.parallel import Inline, ParallelMap
from pipeline.shards import ShardWriter, audio_array, audio_matrix

log = logging.getLogger(__name__)


def mixture_schema(clip_samples: int, num_classes: int) -> pa.Schema:
    """Columns of a mixture table. Sources are stored as mixed (after gains and any anti-clipping scale), so
    `mixture == sum(sources)`; `labels` is the multi-hot vector over the dataset's classes."""
    audio = pa.list_(pa.float32(), clip_samples)
    return pa.schema([
        ("mix_id", pa.string()),
        ("split", pa.string()),
        ("mixture", audio),
        ("labels", pa.list_(pa.int8(), num_classes)),
        ("source_classes", pa.list_(pa.int16())),
        ("source_clip_ids", pa.list_(pa.string())),
        ("source_gains", pa.list_(pa.float32())),
        ("source_shifts", pa.list_(pa.int32())),
        ("sources", pa.list_(audio)),
        ("mixture_scale", pa.float32()),
    ])


def load_pool(plan: MixturePlan, clip_samples: int) -> np.ndarray:
    """Audio of every clip the plan uses, (P + 1, clip_samples) float32; the extra last row is silence."""
    pool = np.zeros((len(plan.clip_ids) + 1, clip_samples), dtype=np.float32)
    wanted: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for index, (shard, row) in enumerate(zip(plan.shards, plan.rows)):
        wanted[shard].append((int(row), index))
    for shard in sorted(wanted):
        rows = np.array(sorted(wanted[shard]), dtype=np.int64)
        parquet = pq.ParquetFile(shard)
        start = 0
        for group in range(parquet.num_row_groups):
            size = parquet.metadata.row_group(group).num_rows
            inside = rows[(rows[:, 0] >= start) & (rows[:, 0] < start + size)]
            if len(inside):
                audio = audio_matrix(parquet.read_row_group(group, columns=["audio"]).column("audio"))
                pool[inside[:, 1]] = audio[inside[:, 0] - start]
            start += size
    return pool


@dataclass
class SplitStats:
    """Datasheet figures for one split, accumulated batch by batch."""

    mixtures: int = 0
    per_class: Counter = field(default_factory=Counter)
    per_combination: Counter = field(default_factory=Counter)
    scaled: int = 0
    mixture_rms_db: list[np.ndarray] = field(default_factory=list)
    mixture_peak: list[np.ndarray] = field(default_factory=list)


def mix_batch(plan: MixturePlan, pool: np.ndarray, start: int, stop: int, max_peak: float,
              dataset: str) -> tuple[dict, np.ndarray, np.ndarray]:
    """Mix plan rows [start, stop) at once; returns Arrow columns, the mixtures (B, L) and the scales (B,)."""
    clips = plan.source_clip[start:stop]                                   # (B, S), -1 padded
    sources = pool[np.where(clips >= 0, clips, len(pool) - 1)]             # (B, S, L); padding reads silence
    gains = np.where(clips >= 0, 10.0 ** (plan.source_gain_db[start:stop] / 20.0), 0.0).astype(np.float32)
    sources *= gains[:, :, None]
    shifts = plan.source_shift[start:stop]
    for row, slot in zip(*np.nonzero(shifts)):
        sources[row, slot] = np.roll(sources[row, slot], shifts[row, slot])
    peak = np.abs(sources.sum(axis=1)).max(axis=1)
    scale = np.where(peak > max_peak, max_peak / np.maximum(peak, 1e-12), 1.0).astype(np.float32)
    sources *= scale[:, None, None]
    mixtures = sources.sum(axis=1, dtype=np.float32)

    counts = plan.num_sources[start:stop]
    present = clips >= 0
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    labels = np.zeros((stop - start, len(plan.class_names)), dtype=np.int8)
    rows_of = np.nonzero(present)[0]
    labels[rows_of, plan.source_class[start:stop][present]] = 1
    columns = {
        "mix_id": [f"{dataset}/{plan.split}/{i:06d}" for i in range(start, stop)],
        "split": [plan.split] * (stop - start),
        "mixture": audio_array(mixtures),
        "labels": pa.FixedSizeListArray.from_arrays(pa.array(labels.reshape(-1)), labels.shape[1]),
        "source_classes": pa.ListArray.from_arrays(offsets, pa.array(plan.source_class[start:stop][present],
                                                                     pa.int16())),
        "source_clip_ids": pa.ListArray.from_arrays(offsets, pa.array(plan.clip_ids[clips[present]].tolist(),
                                                                      pa.string())),
        "source_gains": pa.ListArray.from_arrays(offsets, pa.array((gains * scale[:, None])[present])),
        "source_shifts": pa.ListArray.from_arrays(offsets, pa.array(shifts[present].astype(np.int32))),
        "sources": pa.ListArray.from_arrays(offsets, audio_array(sources[present])),
        "mixture_scale": pa.array(scale),
    }
    return columns, mixtures, scale


def build_split(name: str, config: DatasetConfig, split: str, audio: AudioConfig, shards: ShardConfig,
                clips_root: Path, out_dir: Path, progress: bool = True) -> tuple[dict, list[dict]]:
    """Build one split of dataset `name`; returns its datasheet section and its shards."""
    candidates = class_candidates(config, clips_root, split)
    plan = plan_split(name, config, split, candidates, audio.clip_samples)
    pool = load_pool(plan, audio.clip_samples)
    schema = mixture_schema(audio.clip_samples, len(config.classes))
    stats = SplitStats()
    metadata = {"dataset": name, "split": split, "classes": list(config.class_names),
                "sample_rate": audio.sample_rate, "clip_samples": audio.clip_samples}
    batch = shards.rows_per_group
    with ShardWriter(out_dir / split, schema, prefix="mixtures", rows_per_group=batch,
                     groups_per_shard=shards.groups_per_shard, compression=shards.compression,
                     metadata=metadata) as writer:
        for start in tqdm(range(0, plan.size, batch), desc=f"mix {name}/{split}", unit="group",
                          disable=not progress):
            stop = min(start + batch, plan.size)
            columns, mixtures, scale = mix_batch(plan, pool, start, stop, config.max_peak, name)
            writer.write(columns)
            _accumulate(stats, plan, start, stop, mixtures, scale)
    manifest_shards = [s.__dict__ for s in writer.close()]
    return _split_sheet(plan, candidates, stats), manifest_shards


def build_dataset(name: str, config: DatasetConfig, audio: AudioConfig, shards: ShardConfig, clips_root: Path,
                  out_dir: Path, progress: bool = True, *, parallel: ParallelMap | None = None) -> dict:
    """Build every split of dataset `name` under `out_dir/<split>/`; returns the datasheet (without corpora).

    Splits are independent (own plan, own folder): each is one task of `parallel` (default: inline, one after
    the other, with progress bars); the bytes written do not depend on the map.
    """
    sheet = {"dataset": name, "classes": list(config.class_names), "sample_rate": audio.sample_rate,
             "clip_samples": audio.clip_samples, "splits": {}, "shards": {}}
    parallel = parallel or Inline()
    show = progress and isinstance(parallel, Inline)  # bars of other processes would interleave
    jobs = [(name, config, split, audio, shards, str(clips_root), str(out_dir), show) for split in SPLITS]
    built = parallel.map(build_split_job, jobs, task="mix-split", names=[f"{name}/{split}" for split in SPLITS])
    for split, (section, split_shards) in zip(SPLITS, built):
        sheet["splits"][split], sheet["shards"][split] = section, split_shards
    return sheet


def build_split_job(job: tuple) -> tuple[dict, list[dict]]:
    """`build_split` as one task: (name, config, split, audio, shards, clips_root, out_dir, progress)."""
    name, config, split, audio, shards, clips_root, out_dir, progress = job
    return build_split(name, config, split, audio, shards, Path(clips_root), Path(out_dir), progress=progress)


def _accumulate(stats: SplitStats, plan: MixturePlan, start: int, stop: int, mixtures: np.ndarray,
                scale: np.ndarray) -> None:
    stats.mixtures += stop - start
    for row in plan.source_class[start:stop]:
        combo = tuple(int(k) for k in row if k >= 0)
        stats.per_combination["+".join(plan.class_names[k] for k in combo)] += 1
        for k in combo:
            stats.per_class[plan.class_names[k]] += 1
    stats.scaled += int((scale < 1.0).sum())
    stats.mixture_rms_db.append(to_db(rms(mixtures)))
    stats.mixture_peak.append(np.abs(mixtures).max(axis=1))


def _split_sheet(plan: MixturePlan, candidates: dict, stats: SplitStats) -> dict:
    uses = np.bincount(plan.source_clip[plan.source_clip >= 0], minlength=len(plan.clip_ids))
    return {
        "mixtures": stats.mixtures,
        "mixtures_per_class": {c: stats.per_class.get(c, 0) for c in plan.class_names},
        "mixtures_per_combination": dict(sorted(stats.per_combination.items())),
        "solo_segments": int((plan.num_sources == 1).sum()),  # one class alone: training and validation only
        "clips_available_per_class": {c: int(len(candidates[c])) for c in plan.class_names},
        "clips_used": int(len(plan.clip_ids)),
        "clip_uses_max": int(uses.max()) if uses.size else 0,
        "clips_reused": int((uses > 1).sum()),
        "mixtures_scaled_to_avoid_clipping": stats.scaled,
        "mixture_rms_db": _summary(stats.mixture_rms_db),
        "mixture_peak": _summary(stats.mixture_peak),
    }


def _summary(parts: list[np.ndarray]) -> dict:
    values = np.concatenate(parts) if parts else np.zeros(0)
    if values.size == 0:
        return {"mean": None, "min": None, "max": None}
    return {"mean": round(float(values.mean()), 4), "min": round(float(values.min()), 4),
            "max": round(float(values.max()), 4)}
