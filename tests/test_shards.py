from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.shards import (IncompleteShardsError, ShardWriter, audio_array, audio_matrix, file_sha256,
                             ShardIntegrityError, iter_row_groups, read_manifest, shard_paths, verify_shards)

SCHEMA = pa.schema([("id", pa.string()), ("audio", pa.list_(pa.float32(), 4))])


def _rows(start: int, n: int) -> dict:
    audio = np.arange(start * 4, (start + n) * 4, dtype=np.float32).reshape(n, 4)
    return {"id": [f"r{i}" for i in range(start, start + n)], "audio": audio_array(audio)}


def _write(directory, batches) -> list:
    with ShardWriter(directory, SCHEMA, rows_per_group=3, groups_per_shard=2, compression="zstd") as writer:
        for start, n in batches:
            writer.write(_rows(start, n))
    return writer.close()


def test_rows_are_grouped_and_sharded_in_order(tmp_path):
    shards = _write(tmp_path / "s", [(0, 5), (5, 8)])  # 13 rows -> groups 3,3 | 3,3 | 1
    assert [s.rows for s in shards] == [6, 6, 1]
    paths = shard_paths(tmp_path / "s")
    assert [pq.ParquetFile(p).num_row_groups for p in paths] == [2, 2, 1]
    groups = list(iter_row_groups(paths))
    ids = [i for g in groups for i in g.column("id").to_pylist()]
    assert ids == [f"r{i}" for i in range(13)]
    audio = np.concatenate([audio_matrix(g.column("audio")) for g in groups])
    assert np.array_equal(audio, np.arange(52, dtype=np.float32).reshape(13, 4))
    assert read_manifest(tmp_path / "s")["shards"][0]["sha256"] == file_sha256(paths[0])


def test_same_rows_give_byte_identical_shards_whatever_the_batching(tmp_path):
    a = _write(tmp_path / "a", [(0, 13)])
    b = _write(tmp_path / "b", [(0, 1), (1, 7), (8, 5)])
    assert [s.sha256 for s in a] == [s.sha256 for s in b]


def test_interrupted_write_is_never_read_as_complete(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path / "s", SCHEMA, rows_per_group=3, groups_per_shard=1) as writer:
            writer.write(_rows(0, 7))
            raise RuntimeError("killed")
    with pytest.raises(IncompleteShardsError, match="re-run the stage"):
        read_manifest(tmp_path / "s")
    # a re-run into the same folder completes it
    _write(tmp_path / "s", [(0, 7)])
    assert read_manifest(tmp_path / "s")["rows"] == 7


def test_wrong_schema_is_refused(tmp_path):
    with ShardWriter(tmp_path / "s", SCHEMA, rows_per_group=3, groups_per_shard=1) as writer:
        with pytest.raises((ValueError, pa.ArrowInvalid, pa.ArrowTypeError)):
            writer.write({"id": [1], "audio": audio_array(np.zeros((1, 4)))})


def _flip_byte(path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_a_swapped_or_a_missing_shard_is_an_error_naming_the_shard(tmp_path):
    _write(tmp_path / "s", [(0, 13)])
    first, second, _ = shard_paths(tmp_path / "s")
    _flip_byte(second)
    with pytest.raises(ShardIntegrityError, match=r"shard .*shard-00001\.parquet has sha256 .*its manifest says"):
        shard_paths(tmp_path / "s")
    _write(tmp_path / "t", [(0, 13)])
    first, second, _ = shard_paths(tmp_path / "t")
    first.rename(tmp_path / "x"), second.rename(first), (tmp_path / "x").rename(second)
    with pytest.raises(ShardIntegrityError, match=r"shard-00000\.parquet has sha256 .*another shard in its place"):
        shard_paths(tmp_path / "t")
    _write(tmp_path / "u", [(0, 13)])
    (tmp_path / "u" / "shard-00001.parquet").unlink()
    with pytest.raises(ShardIntegrityError, match=r"shard-00001\.parquet is listed in .*manifest\.json but missing"):
        verify_shards(tmp_path / "u")


def test_a_manifest_whose_row_counts_disagree_is_an_error(tmp_path):
    _write(tmp_path / "s", [(0, 13)])
    manifest = read_manifest(tmp_path / "s")
    manifest["shards"][2]["rows"] = 2
    with pytest.raises(ShardIntegrityError, match=r"shard-00002\.parquet holds 1 rows, its manifest says 2"):
        verify_shards(tmp_path / "s", manifest)
    manifest = read_manifest(tmp_path / "s")
    manifest["rows"] = 14
    with pytest.raises(ShardIntegrityError, match=r"its shards hold 13 rows, its manifest says 14"):
        verify_shards(tmp_path / "s", manifest)
