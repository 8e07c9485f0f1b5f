"""Weak labels from subtitles (issue 19): clips labelled by SubRip / WebVTT / ASS cues, a class-supervised
dataset that trains a model `enhance` takes; unusable files are skipped and counted, never fatal."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pysubs2
import pytest
import soundfile as sf

from pipeline.config import ConfigError, parse_params
from pipeline.enhance.cli import main as enhance_main
from pipeline.mixing.subtitled import BACKGROUND, DOUBT, SPEECH, build_subtitled, label_clips, read_cues
from pipeline.models.data import MixtureSplit
from pipeline.models.train import train_variant
from pipeline.shards import read_manifest, shard_paths
from pipeline.testing.datasets import tiny_training_raw

RATE = 16000
SPEECH_SPANS = [(2.0, 5.0), (9.5, 12.0), (17.0, 19.0)]  # seconds where the test "film" has a voice
SECONDS = 24


def _srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_srt(path, spans):
    path.write_text("".join(f"{i}\n{_srt_time(a)} --> {_srt_time(b)}\nline {i}\n\n" for i, (a, b) in
                            enumerate(spans, 1)), encoding="utf-8")


def write_vtt(path, spans):
    body = "".join(f"{_srt_time(a).replace(',', '.')} --> {_srt_time(b).replace(',', '.')}\nline\n\n"
                   for a, b in spans)
    path.write_text("WEBVTT\n\n" + body, encoding="utf-8")


def film(seconds: float = SECONDS, spans=SPEECH_SPANS, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """A voice-like harmonic tone during `spans` over continuous noise, stereo."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 8)) * 0.1
    gate = np.zeros_like(t)
    for a, b in spans:
        gate[(t >= a) & (t < b)] = 1.0
    mono = voice * gate + 0.02 * rng.standard_normal(t.shape)
    return np.stack([mono, mono * 0.9], axis=1).astype(np.float32)


def test_labels_follow_the_cues_with_a_margin_of_doubt():
    cues = np.array([[2.0, 5.0], [9.6, 9.9]])
    starts = np.arange(12, dtype=float)
    labels = label_clips(cues, starts, 1.0, min_overlap=0.5, margin_seconds=1.0)
    #   clip:     0  1  2  3  4  5  6  7  8  9  10 11
    expected = [BACKGROUND, DOUBT, SPEECH, SPEECH, SPEECH, DOUBT, BACKGROUND, BACKGROUND, DOUBT, DOUBT,
                DOUBT, BACKGROUND]
    assert labels.tolist() == expected  # clip 9 holds 0.3 s of a cue: too little to call it speech
    assert label_clips(cues, starts, 1.0, 0.5, 1.0, block=5).tolist() == expected  # compared block by block
    assert label_clips(np.zeros((0, 2)), starts, 1.0, 0.5, 1.0).tolist() == [BACKGROUND] * 12


def test_cues_are_read_from_srt_vtt_and_ass_and_merged(tmp_path):
    write_srt(tmp_path / "a.srt", [(1.0, 2.0), (1.5, 3.0), (5.0, 6.0)])
    write_vtt(tmp_path / "b.vtt", [(1.0, 2.0)])
    ass = pysubs2.SSAFile()  # ASS written by the subtitle library itself
    ass.append(pysubs2.SSAEvent(start=4000, end=5500, text="Hi"))
    ass.append(pysubs2.SSAEvent(start=7000, end=8000, text="not spoken", type="Comment"))
    ass.save(str(tmp_path / "c.ass"))
    assert read_cues(tmp_path / "a.srt").tolist() == [[1.0, 3.0], [5.0, 6.0]]
    assert read_cues(tmp_path / "b.vtt").tolist() == [[1.0, 2.0]]
    assert read_cues(tmp_path / "c.ass").tolist() == [[4.0, 5.5]]
    (tmp_path / "latin.srt").write_bytes("1\n00:00:01,000 --> 00:00:02,000\nCaf\xe9\n\n".encode("latin-1"))
    assert read_cues(tmp_path / "latin.srt").tolist() == [[1.0, 2.0]]


def _params(folder, **settings):
    raw = tiny_training_raw()
    raw["subtitled"] = {"films": {"path": str(folder), "valid_fraction": 0.2, "chunk_seconds": 4.0, **settings}}
    raw["variants"]["films-class"] = {"dataset": "films", "supervision": "class", "model": "vae",
                                      "solo_share": 0.25}
    return raw


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    root = tmp_path_factory.mktemp("films")
    folder = root / "films"
    (folder / "season").mkdir(parents=True)
    sf.write(folder / "one.wav", film(), RATE)
    write_srt(folder / "one.srt", SPEECH_SPANS)
    sf.write(folder / "season" / "two.flac", film(seed=1, rate=22050), 22050)  # another rate, resampled
    write_vtt(folder / "season" / "two.en.vtt", SPEECH_SPANS)
    sf.write(folder / "no_subtitles.wav", film(seconds=3), RATE)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    write_srt(folder / "broken.srt", SPEECH_SPANS)
    sf.write(folder / "bad_cues.wav", film(seconds=3), RATE)
    (folder / "bad_cues.srt").write_bytes(b"\x00\x01\x02 not subtitles at all --> ???")
    params = parse_params(_params(folder))
    sheet = build_subtitled("films", params.subtitled["films"], params.audio, params.shards, root / "data",
                            progress=False)
    return root, folder, params, sheet


def _rows(root):
    return pa.concat_tables([pq.read_table(p) for split in ("train", "valid")
                             for p in shard_paths(root / "data" / split)]).to_pylist()


def test_every_clip_gets_the_label_of_its_cues(films):
    root, folder, params, sheet = films
    expected = label_clips(np.array(SPEECH_SPANS), np.arange(SECONDS, dtype=float), 1.0, 0.5, 1.0)
    rows = _rows(root)
    for name in ("one.wav", "season/two.flac"):
        got = {int(r["mix_id"].split("#")[1]): r["labels"] for r in rows if r["mix_id"].startswith(f"films/{name}#")}
        want = {i: ([1, 1] if label == SPEECH else [0, 1]) for i, label in enumerate(expected) if label != DOUBT}
        assert got == want, name
    assert all(r["sources"] == [] and r["source_classes"] == [] for r in rows)
    speech, background = int((expected == SPEECH).sum()), int((expected == BACKGROUND).sum())
    clips = {label: sum(sheet["splits"][s]["clips_per_label"].get(label, 0) for s in ("train", "valid"))
             for label in ("speech+background", "background")}
    assert clips == {"speech+background": 2 * speech, "background": 2 * background}
    assert sheet["clips_dropped"] == {"in doubt": 2 * int((expected == DOUBT).sum())}
    assert sheet["splits"]["valid"]["clips"] > 0 and sheet["splits"]["train"]["clips"] > 0


def test_unusable_files_are_skipped_and_counted_not_fatal(films):
    _, _, _, sheet = films
    assert sheet["recordings"] == 5 and sheet["recordings_used"] == 2
    skipped = sheet["recordings_skipped"]
    assert set(skipped) == {"no_subtitles.wav", "broken.wav", "bad_cues.wav"}
    assert skipped["no_subtitles.wav"].startswith("no subtitle file")
    assert "bad_cues.srt" in skipped["bad_cues.wav"]
    assert sheet["skipped_by_reason"] == {"no subtitle file beside it (.srt, .vtt, .ass)": 1, "unreadable": 2}


def test_the_same_films_give_the_same_bytes(films, tmp_path):
    root, _, params, _ = films
    build_subtitled("films", params.subtitled["films"], params.audio, params.shards, tmp_path, progress=False)
    for split in ("train", "valid"):
        assert read_manifest(tmp_path / split)["shards"] == read_manifest(root / "data" / split)["shards"]


def test_a_folder_with_nothing_usable_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    sf.write(tmp_path / "empty" / "x.wav", film(seconds=3), RATE)
    params = parse_params(_params(tmp_path / "empty"))
    with pytest.raises(ValueError, match=r"subtitled.films: no labelled clip from .*empty \(1 audio files, 1 skipped"):
        build_subtitled("films", params.subtitled["films"], params.audio, params.shards, tmp_path / "out",
                        progress=False)


def test_config_refuses_source_supervision_and_name_clashes(tmp_path):
    raw = _params(tmp_path)
    raw["variants"]["films-class"]["supervision"] = "source"
    with pytest.raises(ConfigError, match="supervision class"):
        parse_params(raw)
    raw = _params(tmp_path)
    raw["subtitled"]["dt"] = raw["subtitled"]["films"]
    with pytest.raises(ConfigError, match="names different from the datasets"):
        parse_params(raw)


def test_a_model_trained_on_subtitled_films_enhances_a_film(films, tmp_path):
    root, folder, params, _ = films
    train = MixtureSplit(root / "data" / "train", solo_rows=None)
    assert train.solo_available > 0 and train.classes == ["speech", "background"]
    result = train_variant("films-class", params, root / "data", tmp_path / "model", tmp_path / "scratch",
                           progress=False)
    assert result.summary["best_step"] > 0
    out = tmp_path / "one.enhanced.wav"
    assert enhance_main([str(folder / "one.wav"), "-o", str(out), "--model", str(tmp_path / "model" / "model.pt"),
                         "--dialogue-classes", "speech", "--quiet"]) == 0
    enhanced, rate = sf.read(out)
    assert rate == RATE and enhanced.shape == film().shape and np.isfinite(enhanced).all()


def test_films_in_containers_are_read_through_pyav(tmp_path):
    from pipeline.testing.media import write_film
    folder = tmp_path / "films"
    write_film(folder / "movie.mkv", [(film(rate=48000), 48000, "stereo", "aac")])
    write_srt(folder / "movie.en.srt", SPEECH_SPANS)
    params = parse_params(_params(folder))
    build_subtitled("films", params.subtitled["films"], params.audio, params.shards, tmp_path / "data",
                    progress=False)
    expected = label_clips(np.array(SPEECH_SPANS), np.arange(SECONDS, dtype=float), 1.0, 0.5, 1.0)
    got = {int(r["mix_id"].split("#")[1]): r["labels"] for r in _rows(tmp_path)}
    want = {i: ([1, 1] if label == SPEECH else [0, 1]) for i, label in enumerate(expected) if label != DOUBT}
    assert {i: v for i, v in got.items() if i < SECONDS} == want
