from __future__ import annotations

import pytest

from pipeline.config import ConfigError, load_params, parse_params
from pipeline.testing.audio import REPO_ROOT, repo_params_raw


def test_repository_params_load_with_paper_figures():
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.audio.sample_rate == 8600 and params.audio.clip_samples == 8600
    assert (params.stft.bins, params.stft.frames(8600)) == (201, 44)
    assert set(params.datasets) == {"d1", "d2", "d3", "d4"}
    assert len(params.datasets["d1"].classes) == 5 and len(params.datasets["d3"].classes) == 3


def test_profile_selects_dataset_sizes():
    raw = repo_params_raw()
    assert parse_params(raw).datasets["d1"].sizes.train < 15000
    raw["profile"] = "paper"
    paper = parse_params(raw).datasets
    assert (paper["d1"].sizes.train, paper["d1"].sizes.valid, paper["d1"].sizes.test) == (15000, 1875, 1875)
    assert (paper["d4"].sizes.train, paper["d4"].sizes.test) == (1500, 1000)


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["audio"].update(sample_rte=1), "audio.sample_rte: unknown key"),
    (lambda r: r["audio"].pop("target_rms"), "audio.target_rms: missing"),
    (lambda r: r["audio"].update(target_rms="loud"), "audio.target_rms: got 'loud', expected a finite number"),
    (lambda r: r["audio"].update(target_rms=-1.0), "audio.target_rms: got -1.0, expected > 0"),
    (lambda r: r.update(profile="fast"), "profile: got 'fast'"),
    (lambda r: r["datasets"]["d1"]["classes"]["zero"][0].update(corpus="nope"),
     "datasets.d1.classes.zero.corpus: got 'nope'"),
    (lambda r: r["datasets"]["d1"].update(mixture_sizes={7: 1.0}), "datasets.d1.mixture_sizes.7"),
    (lambda r: r["corpora"]["grid"]["speakers"].update(s9="robot"), "corpora.grid.speakers.s9: got 'robot'"),
    (lambda r: r["corpora"]["grid"].update(split_fractions={"train": 0.5, "valid": 0.1, "test": 0.1}),
     "corpora.grid.split_fractions"),
    (lambda r: r["datasets"]["d2"]["sizes"].pop("demo"), "datasets.d2.sizes: no entry for profile 'demo'"),
    (lambda r: r["datasets"]["d2"].update(allow_reuse="yes"), "datasets.d2.allow_reuse: got 'yes'"),
    (lambda r: r["train"].update(precision="fp16"), "train.precision: got 'fp16', expected fp32 or bf16"),
])
def test_bad_params_name_the_key(edit, message):
    raw = repo_params_raw()
    edit(raw)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_params(raw)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="params.yaml"):
        load_params(tmp_path / "params.yaml")
