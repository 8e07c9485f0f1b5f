"""enhance on films the tests make with PyAV: other streams copied bit for bit, codec / layout kept, loudness kept,
stream choice, the original kept, and bad containers refused with one line and no partial output."""
from __future__ import annotations

import json

import av
import numpy as np
import pyloudnorm
import pytest
import scipy.signal
import torch

from pipeline.audio.media import ac3_dialnorm
from pipeline.enhance import masker as masker_module
from pipeline.enhance.cli import main as enhance_main
from pipeline.testing.audio import noise, tone
from pipeline.testing.media import decode_audio, read_packets, write_film
from pipeline.testing.models import save_tiny_vae

RATE = 48000


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """A 3-s mkv: video, AC-3 5.1 (a tone in the centre over noise), AAC stereo, subtitles, chapters; a model."""
    root = tmp_path_factory.mktemp("film")
    model = save_tiny_vae(root / "model.pt", ["speech", "background"])
    surround = np.stack([noise(3.0, RATE, seed=c, amplitude=0.05) for c in range(6)], axis=1)
    surround[:, 2] += tone(3.0, RATE, 300.0, 0.2)
    path = write_film(root / "film.mkv", [(surround, RATE, "5.1", "ac3"), (surround[:, :2], RATE, "stereo", "aac")],
                      subtitles=[(0.2, 0.8, "Hello"), (1.0, 1.6, "there")],
                      chapters=[(0.0, 1.0, "one"), (1.0, 3.0, "two")], metadata={"title": "tiny film"})
    return root, path, model


def _run(model, *argv) -> int:
    return enhance_main([str(a) for a in argv] + ["--model", str(model), "--dialogue-classes", "speech", "--quiet"])


def _loudness(samples: np.ndarray) -> float:
    weights = samples.astype(np.float64)[:, [0, 1, 2, 4, 5]]     # pyloudnorm's 5-channel order, LFE left out
    return pyloudnorm.Meter(RATE).integrated_loudness(weights)


def test_a_film_keeps_its_streams_codec_layout_and_loudness(film, tmp_path):
    root, source, model = film
    out = tmp_path / "film.dialogue.mkv"
    assert _run(model, source, "-o", out, "--report", tmp_path / "report.json") == 0
    for kind in ("video", "subtitle"):
        assert read_packets(out, kind) == read_packets(source, kind) and read_packets(out, kind)
    with av.open(str(source)) as before, av.open(str(out)) as after:
        assert [s.type for s in after.streams] == [s.type for s in before.streams]
        assert after.metadata["title"] == "tiny film" and len(after.chapters()) == 2
        assert after.streams.audio[1].metadata["language"] == "fra"
    original, rate, layout, codec = decode_audio(source)
    enhanced, rate_out, layout_out, codec_out = decode_audio(out)
    assert (rate_out, layout_out, codec_out) == (rate, layout, codec)
    assert abs(len(enhanced) - len(original)) <= 1536                  # one AC-3 frame
    assert abs(_loudness(enhanced) - _loudness(original)) < 0.5
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["channels_processed"] == "FC" and report["codec"] == "ac3"
    assert abs(report["loudness_out_lufs"] - report["loudness_in_lufs"]) < 0.05
    assert report["dialogue_to_background_after_lu"] - report["dialogue_to_background_before_lu"] == \
        pytest.approx(6.0, abs=0.5)
    assert report["true_peak_out_dbtp"] < 0 and report["times_real_time"] > 0
    second, *_ = decode_audio(out, stream=1)                         # the AAC track is copied, not re-encoded
    assert read_packets(out, "audio")[1::2] or second.shape[1] == 2


def test_zero_db_gives_back_the_input_within_the_codecs_tolerance(film, tmp_path):
    _, source, model = film
    out = tmp_path / "same.mkv"
    assert _run(model, source, "-o", out, "--dialogue-gain", "0") == 0
    original, enhanced = decode_audio(source)[0], decode_audio(out)[0]
    # the codec's tolerance: the decoded input encoded once more with the same codec and bit rate, nothing else
    again = write_film(tmp_path / "again.mka", [(original, RATE, "5.1(side)", "ac3")], video=False, bit_rate=448000)
    direct = decode_audio(again)[0]

    def snr(other):
        n = min(len(original), len(other))
        return 10 * np.log10(np.mean(original[:n] ** 2) / np.mean((other[:n] - original[:n]) ** 2))

    assert snr(enhanced) > snr(direct) - 1.0 and snr(direct) > 5


def test_stream_choice_and_keep_original(film, tmp_path):
    _, source, model = film
    out = tmp_path / "second.mkv"
    assert _run(model, source, "-o", out, "--stream", "1", "--keep-original", "--report", tmp_path / "r.json") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["codec"] == "aac" and report["layout"] == "stereo" and report["channels_processed"] == "mid of FL+FR"
    with av.open(str(out)) as container:
        audio = [(s.codec_context.name, s.layout.name, s.metadata.get("title")) for s in container.streams.audio]
    assert audio == [("ac3", "5.1(side)", None), ("aac", "stereo", None), ("aac", "stereo", "original audio")]
    with av.open(str(source)) as container:
        original_aac = [bytes(p) for p in container.demux(container.streams.audio[1]) if p.size]
    with av.open(str(out)) as container:
        kept = [bytes(p) for p in container.demux(container.streams.audio[2]) if p.size]
    with av.open(str(out)) as container:
        first = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
    assert kept == original_aac
    with av.open(str(source)) as container:
        assert first == [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def test_an_m4a_and_another_codec(film, tmp_path):
    _, source, model = film
    stereo = write_film(tmp_path / "song.m4a", [(decode_audio(source)[0][:, :2], RATE, "stereo", "aac")],
                        video=False)
    assert _run(model, stereo, "-o", tmp_path / "out.m4a") == 0
    assert decode_audio(tmp_path / "out.m4a")[1:] == (RATE, "stereo", "aac")
    assert _run(model, source, "-o", tmp_path / "opus.mkv", "--codec", "libopus") == 0   # 5.1(side) remapped
    assert decode_audio(tmp_path / "opus.mkv")[0].shape[1] == 6


@pytest.mark.parametrize("case, message", [
    ("no audio", r"has no audio stream \(it holds video \(mpeg4\)\)"),
    ("corrupt", r"cannot open as a media container"),
    ("codec", r"--codec 'nonsense': no such encoder"),
    ("stream", r"--stream 5, but it has 2 audio stream\(s\)"),
])
def test_bad_films_give_one_line_and_no_output(film, tmp_path, capsys, case, message):
    _, source, model = film
    argv = [source]
    if case == "no audio":
        argv = [write_film(tmp_path / "silent.mkv", [], video=True)]
    elif case == "corrupt":
        broken = tmp_path / "broken.mkv"
        broken.write_bytes(b"\x00garbage" * 500)
        argv = [broken]
    elif case == "codec":
        argv += ["--codec", "nonsense"]
    elif case == "stream":
        argv += ["--stream", "5"]
    assert _run(model, *argv, "-o", tmp_path / "out.mkv") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("enhance:")]
    assert len(err) == 1 and __import__("re").search(message, err[0]), err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".") or p.name.startswith("out")) == []


def test_a_corrupt_packet_is_skipped_and_counted(film, tmp_path):
    _, source, model = film
    data = bytearray(source.read_bytes())
    with av.open(str(source)) as container:
        packets = [p for p in container.demux(container.streams.audio[0]) if p.size]
        target = packets[len(packets) // 2]
        position, size = target.pos, target.size
    data[position + 8:position + size] = bytes(size - 8)              # the syncframe's audio blocks zeroed
    broken = tmp_path / "damaged.mkv"
    broken.write_bytes(bytes(data))
    assert _run(model, broken, "-o", tmp_path / "out.mkv", "--report", tmp_path / "r.json") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["skipped_packets"] >= 1
    assert abs(len(decode_audio(tmp_path / "out.mkv")[0]) - len(decode_audio(source)[0])) <= 1536


class _BandOracle:
    """A perfect separator for a scene whose dialogue lies below `edge_hz` and whose background lies above: the
    classes and signal settings of a real model file, the split by frequency."""

    def __init__(self, inner, edge_hz: float):
        self.classes, self.settings = inner.classes, inner.settings
        n_fft, rate = self.settings.n_fft, self.settings.sample_rate
        low = torch.fft.rfftfreq(n_fft, 1 / rate) < edge_hz
        self.masks = torch.stack([low if c == "speech" else ~low for c in self.classes]).float()   # (K, F)

    def magnitudes(self, windows, frames=None):
        part = windows if frames is None else windows[:, frames]
        return part[:, None] * self.masks[None, :, None, :]


def _band(samples: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    kind, edges = ("bandpass", [low, high]) if low and high else ("lowpass", high) if high else ("highpass", low)
    return scipy.signal.sosfiltfilt(scipy.signal.butter(8, edges, kind, fs=RATE, output="sos"), samples, axis=0)


def test_six_db_more_dialogue_is_heard_about_six_lu_louder_at_the_same_loudness(tmp_path, monkeypatch):
    """A scene of known dialogue (300-900 Hz harmonics with pauses, centre) over known background (1.8-3.2 kHz
    noise, every channel), separated perfectly: +6 dB dialogue raises the dialogue-to-background loudness ratio
    measured in the output by >= 4 LU while integrated loudness stays within 0.5 LU. Blocks of 1 s: the film is
    read, separated and written in several blocks, and its video must still come through packet for packet."""
    seconds, rng = 6.0, np.random.default_rng(5)
    t = np.arange(int(seconds * RATE)) / RATE
    dialogue = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((300, 450, 600, 900), 1)) * 0.08
    dialogue *= (np.sin(2 * np.pi * t / 2.5) > -0.3)                       # lines and pauses
    background = _band(rng.standard_normal((len(t), 6)) * 0.2, 1800, 3200)
    surround = background.copy()
    surround[:, 2] += dialogue
    model = save_tiny_vae(tmp_path / "model.pt", ["speech", "background"])
    real = masker_module.window_separator
    monkeypatch.setattr(masker_module, "window_separator", lambda *a, **k: _BandOracle(real(*a, **k), 1300.0))
    source = write_film(tmp_path / "scene.mkv", [(surround.astype(np.float32), RATE, "5.1", "ac3")], bit_rate=448000)
    out = tmp_path / "scene.dialogue.mkv"
    assert _run(model, source, "-o", out, "--block-seconds", "1", "--dialogue-gain", "6") == 0
    assert read_packets(out, "video") == read_packets(source, "video") and read_packets(out, "video")
    before, after = decode_audio(source)[0], decode_audio(out)[0]
    meter = pyloudnorm.Meter(RATE)

    def ratio(samples):                     # the centre's dialogue band against its background band, in LU
        centre = samples[:, 2].astype(np.float64)
        return meter.integrated_loudness(_band(centre, None, 1100)) - \
            meter.integrated_loudness(_band(centre, 1700, 3300))

    assert ratio(after) - ratio(before) >= 4.0
    assert abs(_loudness(after) - _loudness(before)) < 0.5


@pytest.mark.parametrize("codec, dialnorm", [("ac3", -24), ("eac3", -27)])
def test_ac3_and_eac3_keep_codec_layout_and_dialnorm(film, tmp_path, codec, dialnorm):
    """Dolby tracks come back in their codec and layout with the input's dialnorm in every frame header (a player
    levels programmes by it: losing it would change the loudness the viewer hears)."""
    root, source, model = film
    surround = decode_audio(source)[0]
    path = write_film(tmp_path / f"film.{codec}.mkv", [(surround, RATE, "5.1(side)", codec)], bit_rate=384000,
                      codec_options={"dialnorm": str(dialnorm)})
    with av.open(str(path)) as container:
        first = next(bytes(p) for p in container.demux(container.streams.audio[0]) if p.size)
    assert ac3_dialnorm(first) == dialnorm                     # the test's input really carries it
    out = tmp_path / f"out.{codec}.mkv"
    assert _run(model, path, "-o", out) == 0
    assert decode_audio(out)[1:] == (RATE, "5.1(side)", codec)
    with av.open(str(out)) as container:
        headers = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
    assert headers and {ac3_dialnorm(h) for h in headers} == {dialnorm}


@pytest.mark.parametrize("codec, container", [("aac", "m4a"), ("libopus", "mkv"), ("flac", "mkv")])
def test_seven_one_films_in_every_codec(tmp_path, codec, container):
    """8-channel audio (7.1) decodes and encodes: PyAV 18 miscounts the planes of 8-channel planar frames, which
    crashed the process on reading (AAC, Opus) and on writing."""
    model = save_tiny_vae(tmp_path / "model.pt", ["speech", "background"])
    surround = np.stack([noise(1.5, RATE, seed=c, amplitude=0.05) for c in range(8)], axis=1)
    surround[:, 2] += tone(1.5, RATE, 300.0, 0.2)
    source = write_film(tmp_path / f"film.{container}", [(surround, RATE, "7.1", codec)], video=container == "mkv")
    out = tmp_path / f"out.{container}"
    assert _run(model, source, "-o", out) == 0
    before, rate, layout, name = decode_audio(source)
    after = decode_audio(out)
    assert after[1:] == (rate, layout, name) and layout == "7.1" and after[0].shape[1] == 8
    assert abs(len(after[0]) - len(before)) <= 2048 and np.isfinite(after[0]).all()
    assert abs(_loudness(after[0][:, :6]) - _loudness(before[:, :6])) < 1.0


def test_a_truncated_film_is_enhanced_as_far_as_it_goes_and_says_so(film, tmp_path, capsys):
    """Half the bytes of a film (an unfinished download): what decodes is enhanced, and the summary, the log and
    the report say how much shorter it is than the file declares."""
    _, source, model = film
    data = source.read_bytes()
    half = tmp_path / "half.mkv"
    half.write_bytes(data[:len(data) // 2])
    assert _run(model, half, "-o", tmp_path / "out.mkv", "--report", tmp_path / "r.json") == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["missing_s"] > 0.5
    assert "truncated?" in capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text())["duration_s"] < 2.5
    assert _run(model, source, "-o", tmp_path / "whole.mkv", "--report", tmp_path / "w.json") == 0
    assert json.loads((tmp_path / "w.json").read_text())["missing_s"] == 0.0


def test_an_audio_only_output_of_a_film_says_what_it_leaves_out(film, tmp_path, caplog, capsys):
    _, source, model = film
    with caplog.at_level("WARNING"):
        assert _run(model, source, "-o", tmp_path / "out.wav") == 0
    assert "other streams are not written: video (mpeg4)" in caplog.text and "subtitle" in caplog.text
    assert _run(model, source, "-o", tmp_path / "kept.wav", "--keep-original") == 2
    assert "--keep-original adds a second audio track" in capsys.readouterr().err
    assert not (tmp_path / "kept.wav").exists()
