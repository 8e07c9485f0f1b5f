"""Deciding every mixture before any audio is touched: which classes, which clips, which gains.

A plan is a few small integer/float arrays, so planning 10^5 mixtures costs milliseconds and no audio memory.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import SPLITS, DatasetConfig


class NotEnoughClipsError(ValueError):
    """A class has fewer clips in a split than its mixtures need and reuse is not allowed."""


@dataclass(frozen=True)
class MixturePlan:
    """Mixture i mixes sources j < num_sources[i]: class `source_class[i, j]`, clip `source_clip[i, j]`
    (an index into `clip_ids`), at `source_gain_db[i, j]`. Unused slots hold -1 / 0."""

    split: str
    class_names: tuple[str, ...]
    clip_ids: np.ndarray        # (P,) clip ids of the pool, sorted
    shards: np.ndarray          # (P,) shard file of each pool clip
    rows: np.ndarray            # (P,) row of each pool clip in its shard
    num_sources: np.ndarray     # (N,) int
    source_class: np.ndarray    # (N, S) int, -1 padded
    source_clip: np.ndarray     # (N, S) int, -1 padded
    source_gain_db: np.ndarray  # (N, S) float32, 0 padded
    source_shift: np.ndarray    # (N, S) int: samples each source is rolled by (0: as the clip is)

    @property
    def size(self) -> int:
        return int(self.num_sources.shape[0])


def split_rng(seed: int, split: str, stream: int) -> np.random.Generator:
    """An independent generator per (dataset seed, split, purpose); nothing is seeded globally."""
    return np.random.default_rng([seed, SPLITS.index(split), stream])


def combination_sequence(config: DatasetConfig, count: int, rng: np.random.Generator, split: str = "train"
                         ) -> list[tuple[int, ...]]:
    """The class combination of each mixture: every combination of a size in turn, sizes in their shares.

    Solo segments (size 1) go to the training and validation splits only: the test split mixes the sizes of 2
    or more, so adding solo segments to a dataset leaves its test split as it was.
    """
    k = len(config.classes)
    sizes = list(config.separation_sizes) if split == "test" else sorted(config.mixture_sizes)
    shares = np.array([config.mixture_sizes[s] for s in sizes], dtype=np.float64)
    counts = _largest_remainder(count, shares / shares.sum())
    sequence: list[tuple[int, ...]] = []
    for size, n in zip(sizes, counts):
        combos = list(itertools.combinations(range(k), size))
        sequence.extend(combos[i % len(combos)] for i in range(n))
    if len(sizes) > 1:  # interleave the sizes so that every row group holds all of them
        sequence = [sequence[i] for i in rng.permutation(len(sequence))]
    return sequence


def plan_split(name: str, config: DatasetConfig, split: str, candidates: dict[str, pd.DataFrame],
               clip_samples: int = 0) -> MixturePlan:
    """Plan `config.sizes[split]` mixtures of dataset `name` from the candidate clips of each class.

    In the splits of `config.random_shift_splits`, every source is rolled (circularly) by an offset drawn
    uniformly from [0, clip_samples): short utterances are centred in their clips, and a model that only ever
    sees them there learns where sound sits in the window, which a sliding window (`enhance`) never honours.
    """
    count = config.sizes.of(split)
    classes = config.class_names
    combos = combination_sequence(config, count, split_rng(config.seed, split, 0), split)
    width = max(config.mixture_sizes)
    source_class = np.full((count, width), -1, dtype=np.int64)
    num_sources = np.zeros(count, dtype=np.int64)
    for i, combo in enumerate(combos):
        source_class[i, :len(combo)] = combo
        num_sources[i] = len(combo)

    # Draw clips per class: a fresh permutation of the class's clips each time they run out.
    chosen = np.full((count, width), -1, dtype=np.int64)
    pool_ids: list[np.ndarray] = []
    pool_shards: list[np.ndarray] = []
    pool_rows: list[np.ndarray] = []
    offset = 0
    for k, class_name in enumerate(classes):
        frame = candidates[class_name]
        slots = np.argwhere(source_class == k)
        needed, available = len(slots), len(frame)
        if needed and available == 0:
            raise NotEnoughClipsError(f"dataset {name}, split {split}: class {class_name!r} has no clips "
                                      f"but {needed} mixtures need it; check its corpora and filters")
        if needed > available and not config.allow_reuse:
            raise NotEnoughClipsError(
                f"dataset {name}, split {split}: class {class_name!r} needs {needed} clips but has {available}; "
                f"lower datasets.{name}.sizes, add clips, or set datasets.{name}.allow_reuse: true")
        rng = split_rng(config.seed, split, 1 + k)
        rounds = max(1, math.ceil(needed / max(available, 1)))
        draws = np.concatenate([rng.permutation(available) for _ in range(rounds)])[:needed] if needed else \
            np.zeros(0, dtype=np.int64)
        chosen[slots[:, 0], slots[:, 1]] = draws + offset
        pool_ids.append(frame["clip_id"].to_numpy(dtype=object))
        pool_shards.append(frame["shard"].to_numpy(dtype=object))
        pool_rows.append(frame["row"].to_numpy(dtype=np.int64))
        offset += available

    gain_rng = split_rng(config.seed, split, 1000)
    low, high = config.source_gain_db
    gains = gain_rng.uniform(low, high, size=(count, width)).astype(np.float32) if high > low else \
        np.full((count, width), low, dtype=np.float32)
    gains[source_class < 0] = 0.0
    shifts = np.zeros((count, width), dtype=np.int64)
    if split in config.random_shift_splits and clip_samples > 0:
        shifts = split_rng(config.seed, split, 2000).integers(0, clip_samples, size=(count, width))
        shifts[source_class < 0] = 0

    # Keep only the clips that are used: the pool is what the builder loads into memory.
    all_ids = np.concatenate(pool_ids) if pool_ids else np.zeros(0, dtype=object)
    used = np.unique(chosen[chosen >= 0])
    remap = np.full(len(all_ids) + 1, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return MixturePlan(
        split=split, class_names=classes,
        clip_ids=all_ids[used],
        shards=np.concatenate(pool_shards)[used] if pool_shards else np.zeros(0, dtype=object),
        rows=np.concatenate(pool_rows)[used] if pool_rows else np.zeros(0, dtype=np.int64),
        num_sources=num_sources, source_class=source_class, source_clip=remap[chosen],
        source_gain_db=gains, source_shift=shifts,
    )


def _largest_remainder(total: int, shares: np.ndarray) -> list[int]:
    exact = shares * total
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return counts.tolist()
