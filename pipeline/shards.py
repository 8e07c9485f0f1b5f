"""Deterministic, streaming Parquet shards.

A shard directory holds `<prefix>-00000.parquet`, `<prefix>-00001.parquet`, ... plus `manifest.json`, written
last. Shards are written under a temporary name and renamed when complete, and the manifest (with every
shard's row count and sha256) appears only after the last shard, so an interrupted build is never read as
complete. Same rows + same schema + same pyarrow version -> byte-identical files.

Readers take their shard list from `shard_paths`, which verifies every shard against the manifest (present,
row count, sha256) before any row is read, so a flipped byte or a swapped shard stops the stage naming the
shard. A process hashes each shard file once (keyed by its inode, size and modification time): a stage that
reads a directory several times pays once (benchmarks/bench_shards.py measures hashing against reading).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class IncompleteShardsError(FileNotFoundError):
    """A shard directory has no manifest: it was never finished (or is not a shard directory)."""


class ShardIntegrityError(ValueError):
    """A shard differs from its directory's manifest (missing, other row count, other sha256)."""


def audio_array(samples: np.ndarray) -> pa.FixedSizeListArray:
    """(rows, length) float32 array -> Arrow fixed-size list column, without copying row by row."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim != 2:
        raise ValueError(f"expected audio of shape (rows, samples), got {samples.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(samples.reshape(-1)), samples.shape[1])


def audio_matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Arrow fixed-size list column -> (rows, length) float32 numpy array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    width = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """sha256 hex digest of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ShardInfo:
    file: str
    rows: int
    sha256: str


class ShardWriter:
    """Append rows; they are written in row groups of `rows_per_group`, `groups_per_shard` groups per file.

    Use as a context manager; `close()` (or leaving the block without an exception) finishes the last shard and
    writes the manifest. Leaving with an exception writes no manifest, so the directory reads as incomplete.
    """

    def __init__(self, directory: str | Path, schema: pa.Schema, *, prefix: str = "shard", rows_per_group: int,
                 groups_per_shard: int, compression: str = "zstd", metadata: Mapping[str, Any] | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / MANIFEST).unlink(missing_ok=True)
        self.schema = schema.with_metadata({"pipeline": json.dumps(dict(metadata or {}), sort_keys=True)})
        self.prefix = prefix
        self.rows_per_group = rows_per_group
        self.rows_per_shard = rows_per_group * groups_per_shard
        self.compression = compression
        self.metadata = dict(metadata or {})
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._shard_rows = 0
        self._shards: list[ShardInfo] = []
        self._closed = False

    # -- public -------------------------------------------------------------------------------------------------
    def write(self, rows: pa.Table | Mapping[str, Any]) -> None:
        """Append rows given as a table or a mapping of column name -> Arrow array / sequence."""
        table = rows if isinstance(rows, pa.Table) else pa.table(dict(rows), schema=self.schema)
        table = table.replace_schema_metadata(self.schema.metadata)
        if not table.schema.equals(self.schema, check_metadata=False):
            raise ValueError(f"rows have schema {table.schema}, expected {self.schema}")
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= self.rows_per_group:
            self._flush_group(self.rows_per_group)

    def close(self) -> list[ShardInfo]:
        """Write what is buffered, finish the last shard and write the manifest; returns the shards."""
        if self._closed:
            return self._shards
        if self._pending_rows:
            self._flush_group(self._pending_rows)
        self._finish_shard()
        manifest = {
            "rows": sum(s.rows for s in self._shards),
            "shards": [s.__dict__ for s in self._shards],
            "metadata": self.metadata,
        }
        _write_json_atomic(self.directory / MANIFEST, manifest)
        self._closed = True
        return self._shards

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._writer is not None:
            self._writer.close()  # the .tmp file stays behind, never renamed, never listed

    # -- internals ----------------------------------------------------------------------------------------------
    def _flush_group(self, n: int) -> None:
        table = pa.concat_tables(self._pending)
        group, rest = table.slice(0, n), table.slice(n)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        if self._writer is None:
            self._open_shard()
        self._writer.write_table(group, row_group_size=self.rows_per_group)
        self._shard_rows += group.num_rows
        if self._shard_rows >= self.rows_per_shard:
            self._finish_shard()

    def _shard_path(self, index: int) -> Path:
        return self.directory / f"{self.prefix}-{index:05d}.parquet"

    def _open_shard(self) -> None:
        path = self._shard_path(len(self._shards))
        strings = [f.name for f in self.schema if pa.types.is_string(f.type)]
        scalars = [f.name for f in self.schema if not pa.types.is_nested(f.type)]
        self._writer = pq.ParquetWriter(
            str(path) + ".tmp", self.schema, compression=self.compression,
            use_dictionary=strings, write_statistics=scalars,
        )
        self._shard_rows = 0

    def _finish_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        path = self._shard_path(len(self._shards))
        os.replace(str(path) + ".tmp", path)
        self._shards.append(ShardInfo(file=path.name, rows=self._shard_rows, sha256=file_sha256(path)))
        log.debug("wrote %s (%d rows)", path, self._shard_rows)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a finished shard directory; IncompleteShardsError if the build never finished."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise IncompleteShardsError(
            f"{directory} has no {MANIFEST}: it is not a finished shard directory (an interrupted or failed build?);"
            " re-run the stage that writes it")
    return json.loads(path.read_text())


def shard_paths(directory: str | Path, *, verify: bool = True) -> list[Path]:
    """The shard files of a finished directory, in order; each verified against the manifest unless `verify` is
    False (ShardIntegrityError naming the shard otherwise)."""
    manifest = read_manifest(directory)
    paths = [Path(directory) / s["file"] for s in manifest["shards"]]
    if verify:
        verify_shards(directory, manifest)
    return paths


def verify_shards(directory: str | Path, manifest: Mapping[str, Any] | None = None) -> None:
    """Check every shard of a finished directory against its manifest: present, its row count, its sha256."""
    directory = Path(directory)
    manifest = read_manifest(directory) if manifest is None else manifest
    again = "; the directory was changed after it was written: re-run the stage that writes it"
    total = 0
    for entry in manifest["shards"]:
        path = directory / entry["file"]
        if not path.is_file():
            raise ShardIntegrityError(f"shard {path} is listed in {directory / MANIFEST} but missing{again}")
        actual = _cached_sha256(path)
        if actual != entry["sha256"]:
            raise ShardIntegrityError(f"shard {path} has sha256 {actual}, its manifest says {entry['sha256']} "
                                      f"(a changed byte, or another shard in its place){again}")
        rows = pq.ParquetFile(path).metadata.num_rows
        if rows != entry["rows"]:
            raise ShardIntegrityError(f"shard {path} holds {rows} rows, its manifest says {entry['rows']}{again}")
        total += rows
    if total != manifest["rows"]:
        raise ShardIntegrityError(f"{directory}: its shards hold {total} rows, its manifest says {manifest['rows']}"
                                  f"{again}")


_VERIFIED: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime) -> sha256, per process


def _cached_sha256(path: Path) -> str:
    stat = path.stat()
    key = (os.path.realpath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = file_sha256(path)
    return _VERIFIED[key]


def iter_row_groups(paths: Sequence[Path], columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Stream row groups (one table at a time, bounded memory) from shard files, in order."""
    for path in paths:
        parquet = pq.ParquetFile(path)
        for index in range(parquet.num_row_groups):
            yield parquet.read_row_group(index, columns=list(columns) if columns else None)


def read_table(paths: Sequence[Path], columns: Sequence[str]) -> pa.Table:
    """Read selected (small) columns of several shards into one table."""
    tables = [pq.read_table(p, columns=list(columns)) for p in paths]
    return pa.concat_tables(tables) if tables else pa.table({c: [] for c in columns})


def _write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def write_json(path: str | Path, payload: Any) -> None:
    """Write JSON with sorted keys (stable diffs), atomically, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(path, payload)
