from __future__ import annotations

import dataclasses

import pytest

from pipeline.config import ConfigError, SplitSizes, load_params, parse_params
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
    (lambda r: r["audio"].update(sample_rte=1), "audio.sample_rte: unknown key (known: clip_seconds, "),
    (lambda r: r["audio"].pop("target_rms"), "audio.target_rms: missing"),
    (lambda r: r["audio"].update(target_rms="loud"), "audio.target_rms = 'loud': expected a number"),
    (lambda r: r["audio"].update(target_rms=-1.0), "audio.target_rms = -1.0: expected a number > 0"),
    (lambda r: r["audio"].update(target_rms=float("nan")), "audio.target_rms = nan: expected a finite number"),
    (lambda r: r.update(profile="fast"), "profile = 'fast': expected one of ('demo', 'paper')"),
    (lambda r: r.update(evaluation={}), "evaluation: unknown key (known: audio, corpora, "),
    (lambda r: r.update(audio=[8600]), "audio = [8600]: expected a mapping"),
    (lambda r: r["datasets"]["d1"]["classes"]["zero"][0].update(corpus="nope"),
     "datasets.d1.classes.zero.corpus = 'nope': expected one of the corpora ['grid', 'movie_sfx', 'sc09']"),
    (lambda r: r["datasets"]["d1"].update(mixture_sizes={7: 1.0}),
     "datasets.d1.mixture_sizes.7 = 7: expected a mixture size between 1 (solo segments) and the number of classes (5)"),
    (lambda r: r["datasets"]["d1"]["sizes"]["demo"].update(train=-3),
     "datasets.d1.sizes.demo.train = -3: expected a non-negative integer"),
    (lambda r: r["datasets"]["d2"]["sizes"].pop("demo"),
     "datasets.d2.sizes = {'paper': {'train': 20000, 'valid': 2500, 'test': 1875}}: expected an entry for profile "
     "'demo' (have ['paper'])"),
    (lambda r: r["datasets"]["d2"].update(allow_reuse="yes"),
     "datasets.d2.allow_reuse = 'yes': expected true or false"),
    (lambda r: r["train"].update(precision="fp16"), "train.precision = 'fp16': expected fp32 or bf16"),
    (lambda r: r["train"]["schedule"]["demo"].update(max_steps=0),
     "train.schedule.demo.max_steps = 0: expected a positive integer"),
    (lambda r: r["train"].update(device="tpu"), "train.device = 'tpu': expected auto, cpu, cuda or cuda:N"),
    (lambda r: r["model"].update(filters=[128, 128, 256, 512]),
     "model.filters = [128, 128, 256, 512]: expected a list of at most 3 values"),
    (lambda r: r["variants"]["d1-class-vae"].update(loss="wave-snr"),
     "variants.d1-class-vae.loss = 'wave-snr': expected mag-kl with class supervision"),
    (lambda r: r["drnn"].update(recurrent=4), "drnn.recurrent = 4: expected 0 (no recurrent layer), 1, 2, 3 (DRNN-k) "
                                              "or stacked"),
    (lambda r: r["drnn"].update(context=2), "drnn.context = 2: expected an odd number of frames >= 1"),
    (lambda r: r["drnn"]["ablations"]["drnn-kl"].update(loss="l1"), "drnn.ablations.drnn-kl.loss = 'l1': expected "
                                                                    "mse or kl"),
    (lambda r: r["drnn"].update(discriminative=0.5), "drnn.discriminative = 0.5: expected a weight in [0, 0.5)"),
    (lambda r: r["drnn"]["ablations"].update({"kl": {"loss": "kl"}}),
     "drnn.ablations.kl = 'kl': expected a name starting with 'drnn-'"),
    (lambda r: r["drnn"]["ablation_datasets"].update(demo=["d9"]),
     "drnn.ablation_datasets.0 = 'd9': expected one of the datasets ['d1', 'd2', 'd3', 'd4']"),
    (lambda r: r["evaluate"]["datasets"]["d2"].update(speech=["dialogue"]),
     "evaluate.datasets.d2.speech = ['dialogue']: expected classes of d2: ['speech', 'background']"),
    # Strict types: a number written as a string is refused, not coerced; so is a boolean where a number belongs.
    (lambda r: r["audio"].update(sample_rate="8600"), "audio.sample_rate = '8600': expected an integer"),
    (lambda r: r["audio"].update(sample_rate=8600.0), "audio.sample_rate = 8600.0: expected an integer"),
    (lambda r: r["shards"].update(rows_per_group=True), "shards.rows_per_group = True: expected an integer"),
    (lambda r: r["datasets"]["d1"].update(seed="1"), "datasets.d1.seed = '1': expected an integer"),
    # Values that cannot make sense.
    (lambda r: r["audio"].update(sample_rate=860), "audio.sample_rate = 860: expected an integer >= 1000 (Hz)"),
    (lambda r: (r["audio"].update(clip_seconds=0.2), r["stft"].update(n_fft=2048)),
     "stft.n_fft = 2048: expected at most a clip's length, audio.sample_rate x audio.clip_seconds = 1720 samples"),
    (lambda r: r["stft"].update(n_fft=16384), "stft.n_fft = 16384: expected at most a clip's length"),
    (lambda r: r["stft"].update(hop_length=512), "stft.hop_length = 512: expected at most n_fft (400)"),
    (lambda r: r["audio"].update(silence_threshold_db=10), "audio.silence_threshold_db = 10: expected a level"),
    # Names that become DVC stage names or folders.
    (lambda r: r["datasets"].update({"d1 big": r["datasets"]["d1"]}),
     "datasets.d1 big = 'd1 big': expected a name of letters, digits, '_' and '-'"),
    (lambda r: r["variants"].update({"d1/vae": r["variants"]["d1-class-vae"]}), "variants.d1/vae = 'd1/vae'"),
    (lambda r: r["folders"].update({"my.sfx": {"path": "/data"}}), "folders.my.sfx = 'my.sfx'"),
    (lambda r: r["corpora"].update({"sc 09": {}}), "corpora.sc 09 = 'sc 09': expected a name of letters"),
    (lambda r: r["corpora"].update(timit=["x"]), "corpora.timit = ['x']: expected a mapping"),
    (lambda r: r["folders"].update({"grid": {"path": "/data"}}),
     "folders = ['grid']: expected names different from the built-in corpora"),
    (lambda r: r["folders"].update({"mine": {"path": "/data", "split_fractions": {"train": 1.0, "valid": 0.5,
                                                                                 "test": 0.0}}}),
     "folders.mine.split_fractions = {'train': 1.0, 'valid': 0.5, 'test': 0.0}: expected fractions summing to 1"),
    (lambda r: r["folders"].update(mine={"path": "/data", "labels": "subfolder"}),
     "folders.mine.labels = 'subfolder': expected subfolders or the path of a .csv file"),
    (lambda r: r["audio"].update(clip_seconds=0.001), "audio.clip_seconds = 0.001: expected a clip length in seconds"),
    (lambda r: r["audio"].update(silence_relative_db=0), "audio.silence_relative_db = 0: expected a number > 0"),
    (lambda r: r["audio"].update(silence_floor_db=-20),
     "audio.silence_floor_db = -20.0: expected at most silence_threshold_db (-50.0)"),
])
def test_bad_params_name_the_key_the_value_and_what_was_expected(edit, message):
    raw = repo_params_raw()
    edit(raw)
    with pytest.raises(ConfigError) as caught:
        parse_params(raw)
    assert str(caught.value).startswith(message)


def test_several_problems_give_one_message_that_counts_the_others():
    raw = repo_params_raw()
    raw["audio"].update(target_rms="loud", clip_seconds="long")
    with pytest.raises(ConfigError, match=r"^audio\.clip_seconds = 'long': expected a number \(and 1 more problem\)$"):
        parse_params(raw)
    raw = repo_params_raw()
    raw["datasets"]["d1"]["sizes"]["demo"].update(train=-3, valid=-1)
    with pytest.raises(ConfigError, match=r"^datasets\.d1\.sizes\.demo\.train = -3: expected a non-negative integer "
                                          r"\(and 1 more problem\)$"):
        parse_params(raw)


def test_sections_are_frozen_dataclasses_that_validate_again_when_replaced():
    params = parse_params(repo_params_raw())
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.audio.sample_rate = 16000
    assert dataclasses.asdict(params.stft) == {"n_fft": 400, "hop_length": 200}
    assert dataclasses.replace(params.datasets["d1"], sizes=SplitSizes(6, 1, 1)).sizes.of("valid") == 1
    with pytest.raises(ValueError, match="positive integer"):
        dataclasses.replace(params.stft, hop_length=0)


def test_mixture_sizes_may_be_given_as_digit_strings():
    raw = repo_params_raw()
    raw["datasets"]["d3"]["mixture_sizes"] = {"2": 0.75, "3": 0.25}
    assert parse_params(raw).datasets["d3"].mixture_sizes == {2: 0.75, 3: 0.25}


def test_the_orchestration_section_is_no_pipeline_parameter():
    raw = repo_params_raw()
    raw["orchestration"] = {"task_runner": "threads"}
    assert parse_params(raw) == parse_params(repo_params_raw())


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="params.yaml"):
        load_params(tmp_path / "params.yaml")


