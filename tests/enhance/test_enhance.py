"""The enhance command and the streaming processor on recordings the tests make (several rates, channels)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from pipeline.enhance.cli import main as enhance_main
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.registry import resolve_model
from pipeline.enhance.stream import MaskStream, StreamingEnhancer
from pipeline.separators.signal import SignalSettings
from pipeline.testing.audio import REPO_ROOT, noise, tone, write_wav
from pipeline.testing.models import save_tiny_vae

CLASSES = ["speech", "background"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny (untrained) model file with the provenance `enhance` reads, and a registry naming it."""
    root = tmp_path_factory.mktemp("model")
    path = save_tiny_vae(root / "model.pt", CLASSES)
    registry = {"default": "tiny", "selection": "test",
                "models": {"tiny": {"path": str(path), "dataset": "dx", "classes": CLASSES,
                                    "dialogue_classes": ["speech"], "dialogue_si_sdri_median": 0.0}}}
    (root / "registry.json").write_text(json.dumps(registry))
    return path, root / "registry.json"


def _masker(model_file):
    return DialogueMasker.load(model_file[0], ["speech"])


def _signal(rate, channels, seconds=2.3, seed=0):
    x = 0.3 * noise(seconds, rate, seed=seed) + tone(seconds, rate, 440.0, 0.2)
    return np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)


def _run(enhancer, x, chunks):
    parts, at = [], 0
    for size in chunks:
        parts.append(enhancer.process(x[at:at + size]))
        at += size
    parts.append(enhancer.flush())
    return {kind: np.concatenate([getattr(p, kind) for p in parts]) for kind in ("output", "dialogue", "background")}


@pytest.mark.parametrize("rate, channels", [(44100, 2), (16000, 1), (8600, 1)])
def test_streaming_equals_offline_whatever_the_chunks(model_file, rate, channels):
    x = _signal(rate, channels)
    offline = _run(StreamingEnhancer(_masker(model_file), rate, channels, dialogue_gain_db=6, background_gain_db=-3),
                   x, [len(x)])
    rng = np.random.default_rng(rate)
    sizes = []
    while sum(sizes) < len(x):
        sizes.append(int(rng.integers(1, 3000)))
    streamed = _run(StreamingEnhancer(_masker(model_file), rate, channels, dialogue_gain_db=6, background_gain_db=-3),
                    x, sizes)
    for kind in offline:
        assert offline[kind].shape == x.shape
        np.testing.assert_allclose(streamed[kind], offline[kind], atol=1e-5)
    np.testing.assert_allclose(offline["dialogue"] + offline["background"], x, atol=1e-6)
    assert np.abs(offline["dialogue"]).max() > 1e-3  # the model did separate something


def test_zero_db_returns_the_input_unchanged(model_file):
    x = _signal(22050, 2)
    out = _run(StreamingEnhancer(_masker(model_file), 22050, 2), x, [1000] * 60)["output"]
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_content_above_the_model_band_is_kept(model_file):
    rate = 44100
    high = tone(2.0, rate, 10000.0, 0.2)
    x = (high + 0.3 * noise(2.0, rate, seed=2))[:, None]
    out = _run(StreamingEnhancer(_masker(model_file), rate, 1, dialogue_gain_db=10), x, [len(x)])["output"][:, 0]
    def level_at(signal, hz):
        spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
        return spectrum[int(round(hz * len(signal) / rate))]
    assert level_at(out, 10000.0) == pytest.approx(level_at(x[:, 0], 10000.0), rel=0.02)


def test_loud_remix_is_limited_below_full_scale(model_file):
    x = np.clip(3 * _signal(16000, 1), -0.99, 0.99)
    out = _run(StreamingEnhancer(_masker(model_file), 16000, 1, dialogue_gain_db=20, background_gain_db=20),
               x, [4096] * 20)["output"]
    assert np.abs(out).max() <= 1.0 and np.abs(out).max() > 0.9


def test_latency_is_what_the_stream_says(model_file):
    stream = MaskStream(_masker(model_file), channels=1, update_frames=8, lookahead_frames=4)
    out = stream.process(np.zeros((1, 8600)))
    # the lag is (lookahead + 1) hops right after a model run, (update + lookahead + 1) hops just before the next
    assert stream.latency == 13 * 200 and 8600 - stream.latency <= out.shape[1] <= 8600 - 5 * 200
    assert out.shape[1] + stream.flush().shape[1] == 8600


@pytest.mark.parametrize("gain, message", [(50, "outside"), (float("nan"), "outside")])
def test_absurd_gains_are_refused(model_file, gain, message):
    with pytest.raises(ValueError, match=message):
        StreamingEnhancer(_masker(model_file), 16000, 1, dialogue_gain_db=gain)


def test_nan_samples_are_refused(model_file):
    enhancer = StreamingEnhancer(_masker(model_file), 16000, 1)
    enhancer.process(np.zeros((1000, 1), np.float32))
    bad = np.zeros((100, 1), np.float32)
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite samples, the first at 0\.063 s \(sample 1007\)"):
        enhancer.process(bad)


def test_a_model_without_background_is_refused(model_file):
    with pytest.raises(ValueError, match="every class"):
        DialogueMasker.load(model_file[0], CLASSES)
    with pytest.raises(ValueError, match="must be some of them"):
        DialogueMasker.load(model_file[0], ["music"])


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix, rate, channels", [(".wav", 44100, 2), (".flac", 16000, 1), (".ogg", 22050, 2)])
def test_command_keeps_rate_channels_length_and_writes_stems(model_file, tmp_path, suffix, rate, channels):
    source = tmp_path / f"in{suffix}"
    sf.write(str(source), _signal(rate, channels, seconds=1.7), rate)
    before = _sha(source)
    code = enhance_main([str(source), "-o", str(tmp_path / f"out{suffix}"), "--registry", str(model_file[1]),
                         "--stems", str(tmp_path / "stems"), "--dialogue-gain", "6", "--quiet"])
    assert code == 0 and _sha(source) == before
    out, out_rate = sf.read(str(tmp_path / f"out{suffix}"), always_2d=True)
    assert out_rate == rate and out.shape == (sf.info(str(source)).frames, channels)
    dialogue = sf.read(str(tmp_path / "stems" / f"in.dialogue{suffix}"), always_2d=True)[0]
    background = sf.read(str(tmp_path / "stems" / f"in.background{suffix}"), always_2d=True)[0]
    assert dialogue.shape == background.shape == out.shape
    assert not list(tmp_path.glob(".*partial*"))


def test_command_errors_name_the_problem_and_leave_the_input_alone(model_file, tmp_path, capsys):
    source = write_wav(tmp_path / "in.wav", tone(1.0, 16000), 16000)
    before = _sha(source)
    registry = ["--registry", str(model_file[1]), "--quiet"]
    assert enhance_main([str(source), "-o", str(source), *registry]) == 2
    assert "is the input file" in capsys.readouterr().err and _sha(source) == before
    (tmp_path / "empty.wav").write_bytes(b"")
    assert enhance_main([str(tmp_path / "empty.wav"), "-o", str(tmp_path / "o.wav"), *registry]) == 2
    assert "empty.wav: cannot read audio" in capsys.readouterr().err
    silent = tmp_path / "zero.wav"
    sf.write(str(silent), np.zeros((0, 1)), 16000)
    assert enhance_main([str(silent), "-o", str(tmp_path / "o.wav"), *registry]) == 2
    assert "contains no samples" in capsys.readouterr().err
    nan = tone(1.0, 16000)
    nan[100] = np.nan
    write_wav(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    assert enhance_main([str(tmp_path / "nan.wav"), "-o", str(tmp_path / "o.wav"), *registry]) == 2
    assert "NaN" in capsys.readouterr().err and not (tmp_path / "o.wav").exists()
    assert enhance_main([str(source), "-o", str(tmp_path / "o.wav"), "--dialogue-gain", "60", *registry]) == 2
    assert "outside" in capsys.readouterr().err
    assert enhance_main([str(source), "-o", str(tmp_path / "o.wav"), "--model", str(tmp_path / "x.pt"),
                         *registry]) == 2
    assert "not in the registry" in capsys.readouterr().err
    assert enhance_main([str(tmp_path / "missing.wav"), "-o", str(tmp_path / "o.wav"), *registry]) == 2
    assert not list(tmp_path.glob(".*partial*"))


def test_python_dash_m_entry_point(model_file, tmp_path):
    source = write_wav(tmp_path / "in.wav", tone(0.5, 8000), 8000)
    done = subprocess.run([sys.executable, "-m", "pipeline.enhance", str(source), "-o", str(tmp_path / "o.wav"),
                           "--registry", str(model_file[1]), "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sf.info(str(tmp_path / "o.wav")).frames == 4000


class _FixedRatio:
    """A toy streaming separator: speech gets the window's magnitudes, background three times them."""

    classes = CLASSES
    settings = SignalSettings(8600, 400, 200, 44)

    def magnitudes(self, windows, frames=None):
        windows = windows if frames is None else windows[:, frames]
        return torch.stack([windows, 3 * windows], dim=1)


def test_a_registered_streaming_kind_is_what_the_registry_entry_names(model_file, tmp_path, monkeypatch):
    from pipeline.separators import registry as kinds
    from pipeline.separators.base import Kind

    monkeypatch.setitem(kinds.KINDS, "toy", Kind("toy", lambda *_: [], lambda *_: None,
                                                  window=lambda path, device: _FixedRatio()))
    entry = json.loads(model_file[1].read_text())
    entry["models"]["tiny"]["separator"] = "toy"
    (tmp_path / "registry.json").write_text(json.dumps(entry))
    path, dialogue, kind = resolve_model(None, None, tmp_path / "registry.json")
    assert (path, dialogue, kind) == (model_file[0], ["speech"], "toy")
    assert resolve_model(str(model_file[0]), None, model_file[1])[2] == "vae-forward"  # entries without one
    masker = DialogueMasker.load(path, dialogue, kind=kind)
    mask = masker(torch.rand(3, 44, 201) + 0.1)
    assert mask.shape == (3, 44, 201) and torch.allclose(mask, torch.full_like(mask, 0.1))
    source = write_wav(tmp_path / "in.wav", tone(0.5, 8600), 8600)
    assert enhance_main([str(source), "-o", str(tmp_path / "o.wav"), "--registry", str(tmp_path / "registry.json"),
                         "--quiet", "--dialogue-gain", "0", "--background-gain", "0"]) == 0
    with pytest.raises(ValueError, match="unknown separator kind 'nope'; known kinds: .*vae-forward"):
        DialogueMasker.load(path, dialogue, kind="nope")


def test_the_registry_ranks_each_dialogue_model_by_its_streaming_row(tmp_path):
    from pipeline.enhance.registry import SELECTION_WITHOUT_SCENES, build_registry, streaming_row
    from tests.reports.conftest import report_params, write_fake_evaluation

    params = report_params()
    for seed, dataset in enumerate(sorted(params.datasets)):
        write_fake_evaluation(tmp_path / "evaluation" / dataset, dataset, params, seed)
    registry = build_registry(params, tmp_path / "evaluation", tmp_path / "models")
    assert registry["selection"] == SELECTION_WITHOUT_SCENES and registry["default"] in registry["models"]
    for variant, entry in registry["models"].items():
        row = streaming_row(params, variant)
        assert row.key.endswith(".forward.classify") and row.kind == "vae-forward" and "separator" not in entry
        scores = pd.read_parquet(tmp_path / "evaluation" / entry["dataset"] / "scores.parquet")
        picked = scores[(scores["system"] == row.key) & scores["source"].isin(entry["dialogue_classes"])]
        assert entry["dialogue_si_sdri_median"] == round(float(picked["si_sdri"].median()), 4)
    best = max(registry["models"].values(), key=lambda e: e["dialogue_si_sdri_median"])
    assert registry["models"][registry["default"]] is best
