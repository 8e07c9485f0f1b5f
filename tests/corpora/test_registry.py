"""The corpus registry: one recipe per built-in corpus, its params section validated with dotted-key errors."""
from __future__ import annotations

import csv
import tarfile
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_params, parse_params
from pipeline.corpora import grid, movie_sfx, sc09
from pipeline.corpora.recipes import fetch_corpus, list_recordings
from pipeline.corpora.registry import RECIPES, corpus_config, recipe, validate_corpora
from pipeline.orchestration.downloads import planned_downloads
from pipeline.shards import file_sha256
from pipeline.testing.audio import (REPO_ROOT, noise, repo_params_raw, tone, with_datasets, write_sc09_layout,
                                    write_wav)

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there: a fetch passes only when the cache already holds the file


def test_the_registry_holds_each_corpus_module_under_its_name_and_matches_params_yaml():
    assert RECIPES == {"sc09": sc09.RECIPE, "grid": grid.RECIPE, "movie_sfx": movie_sfx.RECIPE}
    # dvc.yaml's fetch/prepare stages iterate over the keys of the `corpora` section
    assert set(load_params(REPO_ROOT / "params.yaml").corpora) == set(RECIPES)
    with pytest.raises(ValueError, match=r"unknown built-in corpus 'timit'; expected one of \['grid', "):
        recipe("timit")


def test_every_section_of_the_repository_params_validates_into_its_schema():
    configs = validate_corpora(load_params(REPO_ROOT / "params.yaml"))
    assert {name: type(config) for name, config in configs.items()} == {
        "sc09": sc09.Sc09Config, "grid": grid.GridConfig, "movie_sfx": movie_sfx.MovieSfxConfig}
    assert configs["grid"].speakers == {"s1": "male", "s4": "female"} and configs["grid"].paper.sha256 == {}
    assert configs["sc09"].digits[0] == "zero" and configs["sc09"].demo.speakers == 40
    assert configs["movie_sfx"].demo.kinds[:2] == ("rain", "wind")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["grid"]["speakers"].update(s9="robot"), "corpora.grid.speakers.s9 = 'robot': expected male or female"),
    (lambda c: c["grid"]["speakers"].update({"s 9": "male"}), "corpora.grid.speakers.s 9 = 's 9': expected a name"),
    (lambda c: c["grid"].update(split_fractions={"train": 0.5, "valid": 0.1, "test": 0.1}),
     "corpora.grid.split_fractions = {'train': 0.5, 'valid': 0.1, 'test': 0.1}: expected fractions summing to 1"),
    (lambda c: c["grid"]["paper"].update(url_template="https://example.org/s1.tar"),
     "corpora.grid.paper.url_template = 'https://example.org/s1.tar': expected a URL with a {speaker} placeholder"),
    (lambda c: c["grid"]["paper"].update(sha256={"s1": "abc"}),
     "corpora.grid.paper.sha256.s1 = 'abc': expected a sha256 digest (64 hexadecimal digits)"),
    (lambda c: c["grid"]["demo"].update(utterances=10**6), "corpora.grid.demo.utterances = 1000000: expected at most"),
    (lambda c: c["sc09"]["demo"].update(speakers="40"), "corpora.sc09.demo.speakers = '40': expected an integer"),
    (lambda c: c["sc09"]["demo"].update(speakers=2),
     "corpora.sc09.demo.speakers = 2: expected more speakers than the 1 valid + 1 test ones"),
    (lambda c: c["sc09"]["demo"].update(test_fraction=1.0),
     "corpora.sc09.demo.test_fraction = 1.0: expected a fraction in [0, 1)"),
    (lambda c: c["sc09"].update(digits=["zero", "zero"]),
     "corpora.sc09.digits = ['zero', 'zero']: expected a non-empty list of distinct words"),
    (lambda c: c["sc09"]["paper"].update(mirror="x"), "corpora.sc09.paper.mirror: unknown key (known: sha256, url)"),
    (lambda c: c["sc09"]["paper"].pop("url"), "corpora.sc09.paper.url: missing"),
    (lambda c: c["movie_sfx"]["demo"].update(kinds=["rain", "babble"]),
     "corpora.movie_sfx.demo.kinds = ['rain', 'babble']: expected distinct background kinds among"),
    (lambda c: c["movie_sfx"]["demo"].update(sample_rate=22.05),
     "corpora.movie_sfx.demo.sample_rate = 22.05: expected an integer"),
    (lambda c: c.update(timit={}), "corpora.timit: unknown corpus (known: grid, movie_sfx, sc09;"),
])
def test_a_bad_corpus_section_names_the_dotted_key_the_value_and_what_was_expected(edit, message):
    raw = repo_params_raw()
    edit(raw["corpora"])
    params = parse_params(raw)  # the corpus sections are the registry's to validate
    with pytest.raises(ConfigError) as caught:
        validate_corpora(params)
    assert str(caught.value).startswith(message)


def test_a_corpus_without_a_section_cannot_be_fetched_or_listed(tmp_path):
    raw = repo_params_raw()
    del raw["corpora"]["grid"]
    # without d2 and d3, the datasets that draw from grid (and their variants, DRNN, evaluation and scenes)
    with_datasets(raw, {name: spec for name, spec in raw["datasets"].items() if name not in ("d2", "d3")})
    params = parse_params(raw)
    assert set(validate_corpora(params)) == {"sc09", "movie_sfx"}
    with pytest.raises(ConfigError, match=r"^corpora\.grid: missing"):
        fetch_corpus("grid", params, tmp_path / "raw", tmp_path / "downloads")
    with pytest.raises(ValueError, match=r"unknown corpus 'grid'; expected one of \('sc09', 'movie_sfx'\)"):
        list_recordings("grid", params, tmp_path / "raw")


def _paper(**corpora):
    raw = repo_params_raw()
    raw["profile"] = "paper"
    for name, edit in corpora.items():
        raw["corpora"][name]["paper"].update(edit)
    return parse_params(raw)


def _place(planned, source):
    """Put `source` where the plan says the download lands, as a previous (flow) download would have."""
    dest = Path(planned.dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(source.read_bytes())


def test_sc09_and_grid_download_exactly_the_planned_files(tmp_path):
    corpus = write_sc09_layout(tmp_path / "src", digits=sc09.DIGITS, speakers=3)
    archive = tmp_path / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(corpus, arcname=".")
    params = _paper(sc09={"url": f"{UNREACHABLE}/speech_commands_v0.02.tar.gz", "sha256": file_sha256(archive)},
                    grid={"url_template": UNREACHABLE + "/{speaker}.tar"})
    (planned,) = planned_downloads("sc09", params, tmp_path / "downloads")
    assert (planned.url, planned.sha256, planned.required) == (f"{UNREACHABLE}/speech_commands_v0.02.tar.gz",
                                                               file_sha256(archive), True)
    _place(planned, archive)
    fetch_corpus("sc09", params, tmp_path / "raw_sc09", tmp_path / "downloads")
    assert len(list_recordings("sc09", params, tmp_path / "raw_sc09")[0]) == 30

    grid_plan = planned_downloads("grid", params, tmp_path / "downloads")
    assert [p.name for p in grid_plan] == ["grid_s1", "grid_s4"]
    for speaker, item in zip(("s1", "s4"), grid_plan):
        folder = tmp_path / "grid_src" / speaker
        write_wav(folder / "bbaf2n.wav", tone(3.0, 25000), 25000)
        with tarfile.open(tmp_path / f"{speaker}.tar", "w") as tar:
            tar.add(folder, arcname=speaker)
        _place(item, tmp_path / f"{speaker}.tar")
    fetch_corpus("grid", params, tmp_path / "raw_grid", tmp_path / "downloads")
    assert {r.speaker for r in list_recordings("grid", params, tmp_path / "raw_grid")[0]} == {"s1", "s4"}


def test_movie_sfx_downloads_exactly_the_planned_speech_free_files(tmp_path):
    rain = write_wav(tmp_path / "rain.wav", noise(2.0, 22050, seed=1), 22050)
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=movie_sfx.COLUMNS)
        writer.writeheader()
        writer.writerow({"file": "rain.wav", "url": f"{UNREACHABLE}/rain.wav", "sha256": "", "licence": "CC0",
                         "title": "Rain", "label": "rain", "contains_speech": "false"})
        writer.writerow({"file": "talk.wav", "url": f"{UNREACHABLE}/talk.wav", "sha256": "", "licence": "CC0",
                         "title": "Talk", "label": "", "contains_speech": "true"})
    params = _paper(movie_sfx={"manifest": str(manifest)})
    (planned,) = planned_downloads("movie_sfx", params, tmp_path / "downloads")
    assert (planned.name, planned.sha256, planned.required) == ("rain.wav", None, False)
    _place(planned, rain)
    report = fetch_corpus("movie_sfx", params, tmp_path / "raw", tmp_path / "downloads")
    assert report["failed_downloads"] == [] and report["unverified_sha256"] == {"rain.wav": file_sha256(rain)}
    assert [r.source_file for r in list_recordings("movie_sfx", params, tmp_path / "raw")[0]] == ["files/rain.wav"]


def test_nothing_is_planned_under_profile_demo(tmp_path):
    params = parse_params(repo_params_raw())
    assert all(planned_downloads(name, params, tmp_path) == [] for name in RECIPES)
    assert corpus_config(params, "sc09") == sc09.Sc09Config(**repo_params_raw()["corpora"]["sc09"])
