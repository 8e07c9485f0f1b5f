"""What verifying a shard against its manifest costs, beside reading it.

Writes one full shard of params.yaml's `shards` settings (`rows_per_group` x `groups_per_shard` 1-s clips of
random float32 audio at `audio.clip_samples` samples, the clip schema of `prepare`) into a temporary folder, then
times, best of `--repeats`, with the file in the page cache:
- verify: `verify_shards` with an empty per-process cache (sha256 of the file, row counts from the footer);
- read: every row group of the `audio` column decoded to a (rows, samples) float32 matrix, as the readers do;
- read all columns: every row group, every column.
Prints figures only; nothing is asserted.

Usage (from the repository root):

    .venv/bin/python -m benchmarks.bench_shards            # one shard of params.yaml's size (~140 MB)
    .venv/bin/python -m benchmarks.bench_shards --groups 2  # a smaller shard
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import shards
from pipeline.config import load_params
from pipeline.corpora.prepare import clip_schema
from pipeline.shards import ShardWriter, audio_array, audio_matrix, iter_row_groups, shard_paths, verify_shards


def write_shard(directory: Path, rows_per_group: int, groups: int, clip_samples: int) -> Path:
    """One shard of `groups` row groups of random clips; returns its path."""
    rng = np.random.default_rng(0)
    schema = clip_schema(clip_samples)
    with ShardWriter(directory, schema, prefix="clips", rows_per_group=rows_per_group, groups_per_shard=groups,
                     compression="zstd") as writer:
        for group in range(groups):
            n = rows_per_group
            audio = (0.05 * rng.standard_normal((n, clip_samples))).astype(np.float32)
            writer.write(pa.table({
                "clip_id": [f"bench/{group}/{i}" for i in range(n)], "corpus": ["bench"] * n,
                "label": ["x"] * n, "speaker": ["s"] * n, "gender": [None] * n, "split": ["train"] * n,
                "source_file": [f"{group}/{i}.wav" for i in range(n)], "offset": pa.array([0] * n, pa.int64()),
                "sample_rate": pa.array([8600] * n, pa.int32()), "num_samples": pa.array([clip_samples] * n, pa.int32()),
                "rms": pa.array(np.full(n, 0.05, np.float32)), "audio": audio_array(audio)}, schema=schema))
    return shard_paths(directory, verify=False)[0]


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=None, help="row groups in the shard (default: params.yaml)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    params = load_params("params.yaml")
    groups = args.groups or params.shards.groups_per_shard
    with tempfile.TemporaryDirectory() as tmp:
        path = write_shard(Path(tmp) / "s", params.shards.rows_per_group, groups, params.audio.clip_samples)
        size_mb = path.stat().st_size / 1e6

        def verify() -> None:
            shards._VERIFIED.clear()
            verify_shards(path.parent)

        def read_audio() -> None:
            for table in iter_row_groups([path], ["audio"]):
                audio_matrix(table.column("audio"))

        def read_all() -> None:
            for _ in iter_row_groups([path]):
                pass

        read_audio()  # page cache warm
        t_verify, t_audio, t_all = (best_of(args.repeats, fn) for fn in (verify, read_audio, read_all))
    print(f"shard: {params.shards.rows_per_group} x {groups} clips, {size_mb:.1f} MB (zstd)")
    print(f"verify (sha256 + footer): {t_verify * 1e3:8.1f} ms  ({size_mb / t_verify:.0f} MB/s)")
    print(f"read audio column:        {t_audio * 1e3:8.1f} ms  -> verify costs {t_verify / t_audio:.0%} of a read")
    print(f"read all columns:         {t_all * 1e3:8.1f} ms  -> verify costs {t_verify / t_all:.0%} of a read")


if __name__ == "__main__":
    main()
