"""Batches of a mixture dataset split, streamed from its Parquet row groups.

The order of an epoch depends only on (seed, epoch): row groups are permuted, then rows are shuffled within
windows of `shuffle_groups` groups. Decoded row groups are kept in memory up to `cache_bytes`, so small
datasets are read once and large ones stream with bounded memory; either way the batches are identical.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow.parquet as pq
import torch

from pipeline.shards import audio_matrix, read_manifest, shard_paths


@dataclass(frozen=True)
class Batch:
    """mixture (B, L), labels (B, K) in {0, 1}, sources (B, K, L) with zeros for absent classes.

    `sources` is None when the batch was read without them (class supervision never looks at them).
    """

    mixture: torch.Tensor
    labels: torch.Tensor
    sources: torch.Tensor | None

    def to(self, device: torch.device) -> "Batch":
        sources = None if self.sources is None else self.sources.to(device, non_blocking=True)
        return Batch(self.mixture.to(device, non_blocking=True), self.labels.to(device, non_blocking=True), sources)

    @property
    def size(self) -> int:
        return int(self.mixture.shape[0])


@dataclass(frozen=True)
class _Group:
    mixture: np.ndarray       # (R, L)
    labels: np.ndarray        # (R, K) float32
    offsets: np.ndarray       # (R + 1,) start of each row's sources
    source_class: np.ndarray  # (S,)
    source_audio: np.ndarray  # (S, L)

    @property
    def nbytes(self) -> int:
        return self.mixture.nbytes + self.source_audio.nbytes


class MixtureSplit:
    """One split of a mixture dataset (a folder written by the mix stage).

    Solo segments (rows of one class: a clip alone with its one-hot label) are served only when asked for:
    `solo_rows=None` serves every row, an integer n every mixture of two or more classes and the first n solo
    segments in storage order (the mix stage already shuffled them); 0, the default, none of them.
    """

    def __init__(self, directory: str | Path, cache_bytes: int = 1 << 30, solo_rows: int | None = 0):
        self.directory = Path(directory)
        manifest = read_manifest(self.directory)
        meta = manifest["metadata"]
        self.classes: list[str] = list(meta["classes"])
        self.sample_rate: int = int(meta["sample_rate"])
        self.clip_samples: int = int(meta["clip_samples"])
        self.groups: list[tuple[Path, int]] = []
        for path in shard_paths(self.directory):  # verified against the manifest
            self.groups.extend((path, g) for g in range(pq.ParquetFile(path).num_row_groups))
        self._classes_per_row = [  # classes present in each row, per row group (a solo segment has one)
            (audio_matrix(pq.ParquetFile(path).read_row_group(g, columns=["labels"]).column("labels")) > 0.5)
            .sum(axis=1) for path, g in self.groups]
        self.solo_available = sum(int((c == 1).sum()) for c in self._classes_per_row)
        self.multi_class_rows = sum(int((c >= 2).sum()) for c in self._classes_per_row)
        self.serve_solo(solo_rows)
        self.cache_bytes = cache_bytes
        self._cache: dict[int, _Group] = {}
        self._cached_bytes = 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def solo_served(self) -> int:
        """How many of the rows served are solo segments."""
        return self.size - self.multi_class_rows

    def serve_solo(self, solo_rows: int | None) -> None:
        """Choose the rows served: every row (None), or every mixture of two or more classes and the first
        `solo_rows` solo segments in storage order; ValueError when the split holds fewer."""
        if solo_rows is not None and solo_rows > self.solo_available:
            raise ValueError(f"{self.directory} holds {self.solo_available} solo segments, {solo_rows} were asked "
                             "for; raise the share of size 1 in the dataset's mixture_sizes")
        self._rows, budget = [], solo_rows
        for counts in self._classes_per_row:
            keep = np.ones(len(counts), dtype=bool) if budget is None else counts != 1
            if budget is not None:
                solo = np.flatnonzero(counts == 1)[:budget]
                keep[solo] = True
                budget -= len(solo)
            self._rows.append(np.flatnonzero(keep))
        self.size = sum(len(rows) for rows in self._rows)

    def num_batches(self, batch_size: int, drop_last: bool) -> int:
        return self.size // batch_size if drop_last else -(-self.size // batch_size)

    def batches(self, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, drop_last: bool = False,
                shuffle_groups: int = 8, with_sources: bool = True) -> Iterator[Batch]:
        """Yield the batches of one epoch; deterministic for (seed, epoch).

        `with_sources=False` leaves `Batch.sources` None: it spares building a dense (B, K, L) array per batch
        (34 MB for 100 mixtures of 10 classes) when only mixtures and labels are used.
        """
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(self.groups)) if shuffle else np.arange(len(self.groups))
        pending: list[tuple[_Group, int]] = []  # (group, row) not yet served
        for start in range(0, len(order), shuffle_groups):
            rows = []
            for g in order[start:start + shuffle_groups]:
                group = self._group(int(g))
                rows.extend((group, int(r)) for r in self._rows[int(g)])
            if shuffle:
                rows = [rows[i] for i in rng.permutation(len(rows))]
            pending.extend(rows)
            while len(pending) >= batch_size:
                yield _collate(pending[:batch_size], self.num_classes, with_sources)
                pending = pending[batch_size:]
        if pending and not drop_last:
            yield _collate(pending, self.num_classes, with_sources)

    def _group(self, index: int) -> _Group:
        if index in self._cache:
            return self._cache[index]
        path, group = self.groups[index]
        table = pq.ParquetFile(path).read_row_group(group, columns=["mixture", "labels", "source_classes", "sources"])
        sources = table.column("sources").combine_chunks()
        decoded = _Group(
            mixture=audio_matrix(table.column("mixture")),
            labels=audio_matrix(table.column("labels")).astype(np.float32),
            offsets=sources.offsets.to_numpy(),
            source_class=table.column("source_classes").combine_chunks().flatten().to_numpy().astype(np.int64),
            source_audio=audio_matrix(sources.flatten()),
        )
        if self._cached_bytes + decoded.nbytes <= self.cache_bytes:
            self._cache[index] = decoded
            self._cached_bytes += decoded.nbytes
        return decoded


def _collate(items: list[tuple[_Group, int]], num_classes: int, with_sources: bool = True) -> Batch:
    length = items[0][0].mixture.shape[1]
    mixture = np.empty((len(items), length), dtype=np.float32)
    labels = np.empty((len(items), num_classes), dtype=np.float32)
    sources = np.zeros((len(items), num_classes, length), dtype=np.float32) if with_sources else None
    for i, (group, r) in enumerate(items):
        mixture[i] = group.mixture[r]
        labels[i] = group.labels[r]
        if sources is not None:
            span = slice(group.offsets[r], group.offsets[r + 1])
            sources[i, group.source_class[span]] = group.source_audio[span]
    return Batch(torch.from_numpy(mixture), torch.from_numpy(labels),
                 None if sources is None else torch.from_numpy(sources))
