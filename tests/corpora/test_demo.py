"""Tests of the offline demo corpus: espeak binding, procedural backgrounds and each corpus's demo writer."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.corpora.demo.backgrounds import BACKGROUND_KINDS
from pipeline.corpora.demo.espeak import EspeakError, EspeakSynthesizer
from pipeline.corpora.grid import grid_sentence, write_demo_grid
from pipeline.corpora.movie_sfx import COLUMNS as MANIFEST_COLUMNS
from pipeline.corpora.movie_sfx import write_demo_movie_sfx
from pipeline.corpora.sc09 import DIGITS, write_demo_sc09

SC09 = dict(speakers=4, takes=1, valid_fraction=0.25, test_fraction=0.25, seed=5)
GRID_SPEAKERS = {"s1": "male", "s4": "female"}
GRID = dict(speakers=GRID_SPEAKERS, utterances=3, seed=6)
SFX = dict(kinds=sorted(BACKGROUND_KINDS), per_kind=2, seconds=1.0, sample_rate=16_000, seed=7)
REQUIRED_KINDS = {"rain", "wind", "engine", "explosion", "gunshots", "siren", "footsteps"}


def _write_all(root: Path) -> Path:
    write_demo_sc09(root / "sc09", **SC09)
    write_demo_grid(root / "grid", **GRID)
    write_demo_movie_sfx(root / "movie_sfx", **SFX)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_all(tmp_path_factory.mktemp("demo_a"))


@pytest.fixture(scope="module")
def synth() -> EspeakSynthesizer:
    return EspeakSynthesizer()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _band_fraction(x: np.ndarray, sr: int, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    return float(power[(freqs >= low) & (freqs <= high)].sum() / power.sum())


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# --------------------------------------------------------------------------------------------- espeak


def test_espeak_speaks_at_22050_hz(synth: EspeakSynthesizer) -> None:
    audio = synth.synthesize("seven", voice="en+m3", pitch=50, rate=170, amplitude=100)
    assert synth.sample_rate == 22_050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.1 * synth.sample_rate < len(audio) < 2 * synth.sample_rate
    assert np.all(np.abs(audio) <= 1.0) and _rms(audio) > 0.01
    assert _band_fraction(audio, synth.sample_rate, 80, 5000) > 0.8


def test_espeak_is_deterministic_whatever_was_spoken_before(synth: EspeakSynthesizer) -> None:
    settings = dict(voice="en-us+f2", pitch=60, rate=160, amplitude=110, range_=70)
    first = synth.synthesize("bin blue at eff two now", **settings)
    synth.synthesize("something else entirely", voice="en+m1", pitch=20, rate=300, amplitude=80)
    assert np.array_equal(first, synth.synthesize("bin blue at eff two now", **settings))
    assert np.array_equal(first, EspeakSynthesizer().synthesize("bin blue at eff two now", **settings))
    bare = [synth.synthesize("four", voice="en", pitch=50, rate=170, amplitude=100) for _ in range(2)]
    assert np.array_equal(*bare)


def test_espeak_parameters_change_the_sound(synth: EspeakSynthesizer) -> None:
    base = dict(voice="en+m3", pitch=50, rate=170, amplitude=100)
    reference = synth.synthesize("three", **base)
    for change in ({"voice": "en+f3"}, {"pitch": 80}, {"rate": 120}):
        other = synth.synthesize("three", **(base | change))
        assert len(other) != len(reference) or not np.array_equal(other, reference), change
    louder = synth.synthesize("three", **(base | {"amplitude": 150}))
    assert _rms(louder) > _rms(reference)


def test_espeak_rejects_bad_input(synth: EspeakSynthesizer) -> None:
    with pytest.raises(ValueError):
        synth.synthesize("  ", voice="en", pitch=50, rate=170, amplitude=100)
    with pytest.raises(EspeakError, match="no-such-voice"):
        synth.synthesize("one", voice="no-such-voice", pitch=50, rate=170, amplitude=100)


# --------------------------------------------------------------------------------------------- backgrounds


def test_background_kinds_cover_the_required_sounds() -> None:
    assert REQUIRED_KINDS <= set(BACKGROUND_KINDS)
    assert len(BACKGROUND_KINDS) >= 6


@pytest.mark.parametrize("kind", sorted(BACKGROUND_KINDS))
@pytest.mark.parametrize(("seconds", "sr"), [(1.5, 22_050), (0.37, 8_000)])
def test_background_is_finite_loud_and_the_right_length(kind: str, seconds: float, sr: int) -> None:
    audio = BACKGROUND_KINDS[kind](np.random.default_rng([1, 2]), seconds, sr)
    assert audio.dtype == np.float32 and audio.shape == (round(seconds * sr),)
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
    assert _rms(audio) > 1e-3


@pytest.mark.parametrize("kind", sorted(BACKGROUND_KINDS))
def test_background_depends_on_the_generator_only(kind: str) -> None:
    generate = BACKGROUND_KINDS[kind]
    same = [generate(np.random.default_rng(3), 1.0, 16_000) for _ in range(2)]
    other = generate(np.random.default_rng(4), 1.0, 16_000)
    assert np.array_equal(*same)
    assert not np.array_equal(same[0], other)


# --------------------------------------------------------------------------------------------- SC09


def test_sc09_layout(corpus: Path) -> None:
    root = corpus / "sc09"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(DIGITS)
    wavs = sorted(root.glob("*/*.wav"))
    assert len(wavs) == SC09["speakers"] * SC09["takes"] * len(DIGITS)
    speakers = set()
    for wav in wavs:
        match = re.fullmatch(r"([0-9a-f]{8})_nohash_(\d+)\.wav", wav.name)
        assert match and int(match[2]) < SC09["takes"], wav.name
        speakers.add(match[1])
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert info.frames <= 16_000
    assert len(speakers) == SC09["speakers"]
    for digit in DIGITS:  # every speaker says every digit
        assert {p.name.split("_")[0] for p in (root / digit).glob("*.wav")} == speakers


def test_sc09_splits_are_sorted_and_speaker_disjoint(corpus: Path) -> None:
    root = corpus / "sc09"
    lists = {name: (root / f"{name}_list.txt").read_text().splitlines() for name in ("validation", "testing")}
    speakers_of = {}
    for name, lines in lists.items():
        assert lines and lines == sorted(lines)
        assert all((root / line).is_file() and line.count("/") == 1 for line in lines)
        speakers_of[name] = {line.split("/")[1].split("_")[0] for line in lines}
        # A listed speaker has all of its files listed.
        expected = {p.relative_to(root).as_posix() for s in speakers_of[name] for p in root.glob(f"*/{s}_nohash_*.wav")}
        assert set(lines) == expected
    assert not speakers_of["validation"] & speakers_of["testing"]
    all_speakers = {p.name.split("_")[0] for p in root.glob("*/*.wav")}
    assert all_speakers - speakers_of["validation"] - speakers_of["testing"]  # some are left for training


def test_sc09_speech_is_loud_and_in_the_speech_band(corpus: Path) -> None:
    for wav in sorted((corpus / "sc09").glob("*/*.wav"))[:10]:
        audio, sr = sf.read(wav, dtype="float32")
        assert _rms(audio) > 0.01, wav
        assert _band_fraction(audio, sr, 80, 4000) > 0.8, wav


def test_sc09_rejects_splits_that_leave_no_training_speaker(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="training"):
        write_demo_sc09(tmp_path, speakers=2, takes=1, valid_fraction=0.3, test_fraction=0.3, seed=0)


# --------------------------------------------------------------------------------------------- GRID


def test_grid_sentence_decodes_codes() -> None:
    assert grid_sentence("bbaf2n") == "bin blue at f two now"
    assert grid_sentence("lgbzzp") == "lay green by z zero please"
    assert grid_sentence("swia9s") == "set white in a nine soon"


@pytest.mark.parametrize("code", ["bbawzn", "xbaf2n", "bbaf2", "bbaf2nn", "bbaf0n", "BBAF2N"])
def test_grid_sentence_rejects_bad_codes(code: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(code))):
        grid_sentence(code)


def test_grid_layout(corpus: Path) -> None:
    root = corpus / "grid"
    assert sorted(p.name for p in root.iterdir()) == sorted(GRID_SPEAKERS)
    for speaker in GRID_SPEAKERS:
        wavs = sorted((root / speaker).glob("*.wav"))
        assert len(wavs) == GRID["utterances"] == len({w.stem for w in wavs})
        for wav in wavs:
            grid_sentence(wav.stem)  # a valid GRID code
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype) == (25_000, 1, "PCM_16")
            audio, sr = sf.read(wav, dtype="float32")
            assert _rms(audio) > 0.01 and _band_fraction(audio, sr, 80, 4000) > 0.8


def _median_f0(audio: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch (60-400 Hz) of the loud 40-ms frames."""
    size = int(0.04 * sr)
    frames = audio[: len(audio) // size * size].reshape(-1, size)
    loud = frames[np.sqrt(np.mean(frames**2, axis=1)) > 0.3 * _rms(audio)]
    lags = np.arange(sr // 400, sr // 60)
    f0 = []
    for frame in loud:
        frame = frame - frame.mean()
        corr = np.correlate(frame, frame, mode="full")[size - 1:]
        f0.append(sr / lags[np.argmax(corr[lags])])
    return float(np.median(f0))


def test_grid_voices_follow_gender(corpus: Path) -> None:
    def speaker_f0(speaker: str) -> float:
        wavs = sorted((corpus / "grid" / speaker).glob("*.wav"))
        return float(np.median([_median_f0(*sf.read(wav, dtype="float32")) for wav in wavs]))

    assert speaker_f0("s1") < 160 < speaker_f0("s4")


def test_grid_rejects_unknown_gender(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gender"):
        write_demo_grid(tmp_path, speakers={"s1": "robot"}, utterances=1, seed=0)


# --------------------------------------------------------------------------------------------- movie sound effects


def test_movie_sfx_layout_and_manifest(corpus: Path) -> None:
    root = corpus / "movie_sfx"
    with open(root / "manifest.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == MANIFEST_COLUMNS
        assert MANIFEST_COLUMNS == ("file", "url", "sha256", "licence", "title", "label", "contains_speech")
        rows = list(reader)
    assert [row["file"] for row in rows] == sorted(row["file"] for row in rows)
    expected = {f"{kind}_{i:03d}.wav" for kind in SFX["kinds"] for i in range(SFX["per_kind"])}
    assert {row["file"] for row in rows} == expected == {p.name for p in root.glob("files/*")}
    for row in rows:
        path = root / "files" / row["file"]
        assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (row["url"], row["licence"], row["contains_speech"]) == ("", "CC0 (generated)", "false")
        assert row["label"] == Path(row["file"]).stem.rsplit("_", 1)[0] and row["title"]
        info = sf.info(path)
        assert (info.samplerate, info.frames, info.subtype) == (16_000, 16_000, "PCM_16")


def test_movie_sfx_rejects_unknown_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="babble"):
        write_demo_movie_sfx(tmp_path, kinds=["rain", "babble"], per_kind=1, seconds=1.0, sample_rate=8000, seed=0)


# --------------------------------------------------------------------------------------------- determinism


def test_corpus_is_byte_for_byte_deterministic(corpus: Path, tmp_path: Path) -> None:
    again = _files(_write_all(tmp_path))
    assert again == _files(corpus)
    assert not any(name.endswith(".tmp") for name in again)


def test_corpus_depends_on_the_seed(corpus: Path, tmp_path: Path) -> None:
    write_demo_sc09(tmp_path / "sc09", **(SC09 | {"seed": SC09["seed"] + 1}))
    write_demo_movie_sfx(tmp_path / "movie_sfx", **(SFX | {"seed": SFX["seed"] + 1}))
    before = _files(corpus / "sc09")
    after = _files(tmp_path / "sc09")
    assert set(before).isdisjoint(f for f in after if f.endswith(".wav"))  # new speaker ids
    assert _files(tmp_path / "movie_sfx")["files/rain_000.wav"] != _files(corpus / "movie_sfx")["files/rain_000.wav"]
