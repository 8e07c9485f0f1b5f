"""Solo segments (issue 19): one class alone with its one-hot label, in the train and valid splits only.

They leave the test split as it was, the datasheet counts them, training uses them only when a variant's
`solo_share` asks, and with them class supervision separates two classes it cannot separate without them.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import ConfigError, parse_params
from pipeline.corpora.prepare import prepare_clips
from pipeline.corpora.registry import corpus_config
from pipeline.corpora.sc09 import list_sc09
from pipeline.evaluation.run import evaluate_dataset
from pipeline.mixing.build import build_dataset
from pipeline.models.data import MixtureSplit
from pipeline.models.nmf import load_nmf
from pipeline.models.train import train_variant
from pipeline.models.train.run import training_splits
from pipeline.shards import shard_paths
from pipeline.testing.audio import repo_params_raw, with_datasets, write_sc09_layout

CLASSES = ("zero", "one")


def _raw(mixture_sizes: dict, train: int = 40, valid: int = 10, test: int = 8) -> dict:
    raw = repo_params_raw()
    raw["shards"] = {"rows_per_group": 8, "groups_per_shard": 2, "compression": "zstd"}
    raw["corpora"]["sc09"]["digits"] = list(CLASSES)
    sizes = {"train": train, "valid": valid, "test": test}
    with_datasets(raw, {"duo": {
        "classes": {d: [{"corpus": "sc09", "labels": [d]}] for d in CLASSES},
        "mixture_sizes": mixture_sizes, "source_gain_db": [0.0, 0.0], "max_peak": 0.99, "allow_reuse": True,
        "seed": 3, "sizes": {"demo": sizes, "paper": sizes},
    }})
    raw["variants"] = {
        "duo-nmf-class": {"dataset": "duo", "supervision": "class", "model": "nmf"},
        "duo-nmf-class-solo": {"dataset": "duo", "supervision": "class", "model": "nmf", "solo_share": 0.25},
    }
    raw["nmf"].update({"rank": 4, "validations": 2, "schedule": {
        profile: {"train_iterations": 80, "test_iterations": 60} for profile in ("demo", "paper")}})
    raw["evaluate"].update({"batch_size": 8, "examples": 0, "datasets": {"duo": {"speech": [], "inverse": False}},
                            "schedule": {profile: {"forward_mixtures": 8, "inverse_mixtures": 1,
                                                   "inverse_iterations": 1} for profile in ("demo", "paper")}})
    return raw


@pytest.fixture(scope="module")
def clips_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("solo")
    params = parse_params(_raw({2: 1.0}))
    recordings = list_sc09(corpus_config(params, "sc09"), write_sc09_layout(root / "raw", CLASSES, speakers=6))
    prepare_clips("sc09", recordings, root / "clips" / "sc09", params.audio, params.shards, progress=False)
    return root / "clips"


def _build(raw: dict, clips_root, out):
    params = parse_params(raw)
    sheet = build_dataset("duo", params.datasets["duo"], params.audio, params.shards, clips_root, out, progress=False)
    return params, sheet


def _table(out, split) -> pa.Table:
    return pa.concat_tables([pq.read_table(path) for path in shard_paths(out / split)])


def test_config_takes_size_one_but_not_only_size_one():
    assert parse_params(_raw({1: 0.25, 2: 0.75})).datasets["duo"].separation_sizes == (2,)
    for sizes, words in (({1: 1.0}, "at least one size of 2 or more"), ({0: 0.5, 2: 0.5}, "between 1")):
        with pytest.raises(ConfigError, match=words):
            parse_params(_raw(sizes))
    bad = _raw({1: 0.25, 2: 0.75})
    bad["variants"]["duo-nmf-class"]["solo_share"] = 1.0
    with pytest.raises(ConfigError, match=r"in \[0, 1\)"):
        parse_params(bad)


@pytest.fixture(scope="module")
def with_and_without(clips_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    plain = _build(_raw({2: 1.0}, train=30), clips_root, root / "plain")
    solo = _build(_raw({1: 0.25, 2: 0.75}), clips_root, root / "solo")
    return root, plain, solo


def test_solo_segments_go_to_train_and_valid_only_and_the_test_split_is_unchanged(with_and_without):
    root, (_, plain_sheet), (_, solo_sheet) = with_and_without
    solo_train = _table(root / "solo", "train")
    counts = np.array([sum(labels) for labels in solo_train.column("labels").to_pylist()])
    assert (counts == 1).sum() == 10 and (counts == 2).sum() == 30
    for row in solo_train.to_pylist():
        if sum(row["labels"]) == 1:  # a solo segment is its one source, with that source's label
            assert len(row["source_classes"]) == 1 and row["labels"][row["source_classes"][0]] == 1
            np.testing.assert_allclose(row["mixture"], row["sources"][0], atol=1e-6)
    assert solo_sheet["splits"]["train"]["solo_segments"] == 10
    assert solo_sheet["splits"]["valid"]["solo_segments"] == 3  # 10 x 0.25, largest remainder
    assert solo_sheet["splits"]["test"]["solo_segments"] == 0
    # the test split is the one the dataset would have without solo segments, byte for byte in its content
    assert _table(root / "solo", "test").equals(_table(root / "plain", "test"))
    assert plain_sheet["splits"]["train"]["solo_segments"] == 0


def test_training_uses_solo_segments_only_as_asked(with_and_without):
    root, _, _ = with_and_without
    default = MixtureSplit(root / "solo" / "train")
    assert (default.size, default.solo_available, default.solo_served) == (30, 10, 0)
    assert MixtureSplit(root / "solo" / "train", solo_rows=None).size == 40
    labels = np.concatenate([b.labels.numpy() for b in MixtureSplit(root / "solo" / "train", solo_rows=4)
                             .batches(8, shuffle=True, seed=1)])
    assert len(labels) == 34 and (labels.sum(axis=1) == 1).sum() == 4
    train, valid = training_splits(root / "solo", solo_share=0.25)  # 30 mixtures -> 10 solo segments
    assert (train.solo_served, valid.solo_served) == (10, 2)        # valid: 7 mixtures -> round(2.33)
    with pytest.raises(ValueError, match=r"holds 10 solo segments, 20 were asked for"):
        training_splits(root / "solo", solo_share=0.4)


def test_solo_segments_let_class_supervision_separate_two_classes(with_and_without):
    """Every training mixture holds both classes: the labels cannot say which atoms are whose. A quarter of
    solo segments can, and the separation on the same test mixtures improves by a clear margin."""
    root, _, (params, _) = with_and_without
    for variant in params.variants:
        train_variant(variant, params, root / "solo", root / "models" / variant, root / "scratch", progress=False)
    assert load_nmf(root / "models" / "duo-nmf-class-solo" / "model.pt").info["solo_segments"]["train"] == 10
    assert load_nmf(root / "models" / "duo-nmf-class" / "model.pt").info["solo_segments"]["train"] == 0
    metrics = evaluate_dataset("duo", params, root / "solo", root / "models", root / "evaluation", progress=False)
    without = metrics["duo.nmf-class.forward.oracle.sdr_median"]
    with_solo = metrics["duo.nmf-class-solo.forward.oracle.sdr_median"]
    print(f"class-supervised NMF, oracle classes: SDR {without:.2f} dB without, {with_solo:.2f} dB with solo segments")
    assert with_solo > without + 3.0, (without, with_solo)
    assert with_solo > metrics["duo.reference.mixture.oracle.sdr_median"] + 3.0
