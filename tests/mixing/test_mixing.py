from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.config import parse_params
from pipeline.corpora.prepare import prepare_clips
from pipeline.corpora.registry import corpus_config
from pipeline.corpora.sc09 import list_sc09
from pipeline.mixing.build import build_dataset
from pipeline.mixing.plan import NotEnoughClipsError
from pipeline.shards import read_manifest, shard_paths
from pipeline.testing.audio import repo_params_raw, with_datasets, write_sc09_layout

DIGITS = ("zero", "one", "two")


def _params(**dataset):
    raw = repo_params_raw()
    raw["shards"] = {"rows_per_group": 4, "groups_per_shard": 2, "compression": "zstd"}
    raw["corpora"]["sc09"]["digits"] = list(DIGITS)
    spec = {
        "classes": {d: [{"corpus": "sc09", "labels": [d]}] for d in DIGITS},
        "mixture_sizes": {2: 1.0}, "source_gain_db": [0.0, 0.0], "max_peak": 0.99, "allow_reuse": True,
        "seed": 7, "sizes": {"demo": {"train": 12, "valid": 3, "test": 3}, "paper": {"train": 1, "valid": 1, "test": 1}},
    }
    spec.update(dataset)
    return parse_params(with_datasets(raw, {"dx": spec}))


@pytest.fixture(scope="module")
def clips_root(tmp_path_factory):
    """sc09-style clips: 3 digits x 6 speakers (4 train, 1 valid, 1 test per digit)."""
    root = tmp_path_factory.mktemp("corpus")
    params = _params()
    recordings = list_sc09(corpus_config(params, "sc09"), write_sc09_layout(root / "raw", DIGITS, speakers=6))
    prepare_clips("sc09", recordings, root / "clips" / "sc09", params.audio, params.shards, progress=False)
    return root / "clips"


def _build(params, clips_root, out):
    return build_dataset("dx", params.datasets["dx"], params.audio, params.shards, clips_root, out, progress=False)


def _rows(out, split):
    return [row for path in shard_paths(out / split) for row in pq.read_table(path).to_pylist()]


def test_mixtures_are_sums_of_their_sources_with_matching_labels(clips_root, tmp_path):
    sheet = _build(_params(), clips_root, tmp_path / "dx")
    for split, size in (("train", 12), ("valid", 3), ("test", 3)):
        rows = _rows(tmp_path / "dx", split)
        assert len(rows) == size == sheet["splits"][split]["mixtures"]
        for row in rows:
            sources = np.asarray(row["sources"], dtype=np.float32)
            np.testing.assert_allclose(np.asarray(row["mixture"]), sources.sum(axis=0), atol=1e-6)
            assert np.abs(row["mixture"]).max() <= 0.99 + 1e-6
            assert row["labels"] == [int(k in row["source_classes"]) for k in range(3)]
            assert len(row["source_clip_ids"]) == 2 and row["split"] == split
    # every pair in turn: 12 train mixtures over 3 pairs -> 4 each
    assert sheet["splits"]["train"]["mixtures_per_combination"] == {"zero+one": 4, "zero+two": 4, "one+two": 4}


def test_sources_come_only_from_their_split(clips_root, tmp_path):
    _build(_params(), clips_root, tmp_path / "dx")
    # write_sc09_layout puts speaker 0 in valid, speaker 1 in test
    for split, speaker in (("valid", "spk00000"), ("test", "spk00001")):
        ids = {cid for row in _rows(tmp_path / "dx", split) for cid in row["source_clip_ids"]}
        assert ids and all(speaker in cid for cid in ids)
    train_ids = {cid for row in _rows(tmp_path / "dx", "train") for cid in row["source_clip_ids"]}
    assert not any("spk00000" in cid or "spk00001" in cid for cid in train_ids)


def test_same_params_and_seed_give_byte_identical_shards(clips_root, tmp_path):
    _build(_params(), clips_root, tmp_path / "a")
    _build(_params(), clips_root, tmp_path / "b")
    _build(_params(seed=8), clips_root, tmp_path / "c")
    digest = lambda d: [s["sha256"] for split in ("train", "valid", "test") for s in read_manifest(d / split)["shards"]]
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_too_few_clips_without_reuse_names_class_split_and_numbers(clips_root, tmp_path):
    params = _params(allow_reuse=False)
    with pytest.raises(NotEnoughClipsError, match=r"split train: class 'zero' needs 8 clips but has 4"):
        _build(params, clips_root, tmp_path / "dx")


def test_reuse_is_recorded(clips_root, tmp_path):
    sheet = _build(_params(), clips_root, tmp_path / "dx")
    train = sheet["splits"]["train"]
    assert train["clip_uses_max"] == 2 and train["clips_reused"] == 12 and train["clips_used"] == 12


def test_mixed_sizes_follow_their_shares(clips_root, tmp_path):
    params = _params(mixture_sizes={2: 0.75, 3: 0.25},
                     sizes={"demo": {"train": 8, "valid": 4, "test": 0}, "paper": {"train": 1, "valid": 1, "test": 1}})
    sheet = _build(params, clips_root, tmp_path / "dx")
    combos = sheet["splits"]["train"]["mixtures_per_combination"]
    assert combos.get("zero+one+two") == 2 and sum(combos.values()) == 8
    assert sheet["splits"]["test"]["mixtures"] == 0 and read_manifest(tmp_path / "dx" / "test")["rows"] == 0


def test_loud_sources_are_scaled_to_avoid_clipping_and_recorded(clips_root, tmp_path):
    sheet = _build(_params(source_gain_db=[20.0, 20.0]), clips_root, tmp_path / "dx")
    assert sheet["splits"]["train"]["mixtures_scaled_to_avoid_clipping"] == 12
    for row in _rows(tmp_path / "dx", "train"):
        assert np.abs(row["mixture"]).max() == pytest.approx(0.99, abs=1e-5) and row["mixture_scale"] < 1
        assert all(g == pytest.approx(10 * row["mixture_scale"], rel=1e-5) for g in row["source_gains"])


def test_overlapping_classes_are_refused(clips_root, tmp_path):
    params = _params(classes={"any": [{"corpus": "sc09"}], "zero": [{"corpus": "sc09", "labels": ["zero"]}]})
    with pytest.raises(ValueError, match="belongs to classes 'any' and 'zero'"):
        _build(params, clips_root, tmp_path / "dx")


def test_missing_clip_tables_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run its prepare stage"):
        _build(_params(), tmp_path / "nothing", tmp_path / "dx")


def test_random_shifts_roll_the_sources_of_the_chosen_splits_only(clips_root, tmp_path):
    plain = _build(_params(), clips_root, tmp_path / "plain")
    shifted = _build(_params(random_shift_splits=["train"]), clips_root, tmp_path / "shifted")
    assert plain["splits"]["test"] == shifted["splits"]["test"]          # the same plan otherwise
    assert _rows(tmp_path / "plain", "test") == _rows(tmp_path / "shifted", "test")
    shifts = []
    for before, after in zip(_rows(tmp_path / "plain", "train"), _rows(tmp_path / "shifted", "train")):
        assert before["source_clip_ids"] == after["source_clip_ids"] and before["source_shifts"] == [0, 0]
        for source, rolled, shift in zip(before["sources"], after["sources"], after["source_shifts"]):
            np.testing.assert_array_equal(np.roll(np.asarray(source), shift), np.asarray(rolled))
            shifts.append(shift)
        np.testing.assert_allclose(np.asarray(after["mixture"]), np.asarray(after["sources"]).sum(axis=0), atol=1e-6)
    assert len(set(shifts)) > len(shifts) // 2 and all(0 <= s < 8600 for s in shifts)  # spread over the clip
    assert _build(_params(random_shift_splits=["train"]), clips_root, tmp_path / "again") == shifted  # deterministic


def test_an_unknown_split_to_shift_is_named():
    with pytest.raises(ValueError, match=r"datasets\.dx\.random_shift_splits\.0 = 'training'"):
        _params(random_shift_splits=["training"])


def test_mix_and_the_training_reader_refuse_a_shard_that_differs_from_its_manifest(clips_root, tmp_path):
    import shutil

    from pipeline.models.data import MixtureSplit
    from pipeline.shards import ShardIntegrityError

    params = _params()
    _build(params, clips_root, tmp_path / "dx")
    mixture_shard = shard_paths(tmp_path / "dx" / "train")[0]
    data = bytearray(mixture_shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    mixture_shard.write_bytes(bytes(data))
    with pytest.raises(ShardIntegrityError, match=r"dx/train/mixtures-00000\.parquet has sha256"):
        MixtureSplit(tmp_path / "dx" / "train")

    corrupt = tmp_path / "clips"
    shutil.copytree(clips_root, corrupt)
    clip_shard = shard_paths(corrupt / "sc09" / "train")[0]
    data = bytearray(clip_shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    clip_shard.write_bytes(bytes(data))
    with pytest.raises(ShardIntegrityError, match=r"sc09/train/clips-00000\.parquet has sha256"):
        _build(params, corrupt, tmp_path / "dy")
