"""The model file's signal settings (rate, STFT, context length) drive `enhance`; impossible ones are refused."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.stream import StreamingEnhancer
from pipeline.separators.signal import SignalSettings
from pipeline.testing.audio import noise, tone
from pipeline.testing.models import save_tiny_vae

CLASSES = ["speech", "background"]


def _run(enhancer, x, size):
    parts = [enhancer.process(x[i:i + size]) for i in range(0, len(x), size)] + [enhancer.flush()]
    return {kind: np.concatenate([getattr(p, kind) for p in parts]) for kind in ("output", "dialogue")}


def test_a_model_trained_at_another_rate_and_hop_runs_at_its_own_settings(tmp_path):
    # 16 kHz, 256-point STFT, hop 128, 1-s clips: 126 frames of 129 bins (the old constants were 8,600 Hz / 44 x 201)
    path = save_tiny_vae(tmp_path / "m16k.pt", CLASSES, frames=126, bins=129, sample_rate=16000, clip_samples=16000,
                         stft={"n_fft": 256, "hop_length": 128})
    masker = DialogueMasker.load(path, ["speech"])
    assert masker.settings == SignalSettings(16000, 256, 128, 126)
    seen = []
    magnitudes = masker.separator.magnitudes
    masker.separator.magnitudes = lambda windows, frames=None: seen.append(tuple(windows.shape[1:])) or magnitudes(
        windows, frames)
    enhancer = StreamingEnhancer(masker, 44100, 2, dialogue_gain_db=6)
    assert (enhancer.model_rate, enhancer.masks.n_fft, enhancer.masks.hop, enhancer.masks.context) == (16000, 256,
                                                                                                       128, 126)
    # the default look-ahead reaches as far as the model's context allows: 126 - 8 - 1 frames
    assert enhancer.latency_ms == pytest.approx(1000 * (8 + 117 + 1) * 128 / 16000)
    x = np.stack([0.3 * noise(1.5, 44100) + tone(1.5, 44100, 300.0), 0.2 * noise(1.5, 44100, seed=1)], axis=1)
    offline = _run(enhancer, x, len(x))
    assert set(seen) == {(126, 129)}
    assert offline["output"].shape == x.shape and np.isfinite(offline["output"]).all()
    assert np.abs(offline["dialogue"]).max() > 1e-3
    streamed = _run(StreamingEnhancer(masker, 44100, 2, dialogue_gain_db=6), x, 777)
    np.testing.assert_allclose(streamed["output"], offline["output"], atol=1e-5)


def test_a_model_file_from_before_the_rate_was_recorded_uses_that_eras_defaults_and_says_so(tmp_path, caplog):
    path = save_tiny_vae(tmp_path / "old.pt", CLASSES, drop=("sample_rate", "clip_samples"))
    with caplog.at_level(logging.INFO, logger="pipeline.separators.signal"):
        masker = DialogueMasker.load(path, ["speech"])
    assert masker.settings == SignalSettings(8600, 400, 200, 44)
    assert "predates recorded sample rates: using 8600 Hz" in caplog.text and "1-s clips" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.separators.signal"):
        DialogueMasker.load(save_tiny_vae(tmp_path / "new.pt", CLASSES), ["speech"])
    assert "predates" not in caplog.text  # only files without the fields get the defaults


@pytest.mark.parametrize("overrides, message", [
    ({"sample_rate": 0}, r"sample_rate = 0; expected a positive integer"),
    ({"sample_rate": "8600"}, r"sample_rate = '8600'; expected an integer"),
    ({"stft": {"n_fft": 400, "hop_length": 150}, "clip_samples": 8550, "frames": 58},
     r"n_fft = 400, hop = 150; expected n_fft >= 2 and a multiple of the hop"),
    ({"stft": {"n_fft": 400, "hop_length": 0}}, r"stft.hop_length = 0, clip_samples = 8600; expected positive"),
    ({"stft": None}, r"stft = None; expected \{'n_fft'"),
    ({"clip_samples": 16000}, r"the network takes 44 frames, but clip_samples = 16000 at hop 200 makes 81"),
    ({"stft": {"n_fft": 512, "hop_length": 256}, "clip_samples": 11008},
     r"the network takes 201 frequency bins, but stft.n_fft = 512 makes 257"),
    ({"target_rms": float("nan")}, r"target_rms = nan; expected a positive finite level"),
])
def test_signal_settings_that_cannot_be_honoured_are_refused_naming_the_file_and_value(tmp_path, overrides,
                                                                                        message):
    overrides = dict(overrides)
    frames = overrides.pop("frames", 44)
    path = save_tiny_vae(tmp_path / "bad.pt", CLASSES, frames=frames, **overrides)
    with pytest.raises(ValueError, match=rf"^model {tmp_path}/bad\.pt: {message}"):
        DialogueMasker.load(path, ["speech"])


def test_update_and_lookahead_must_fit_the_models_context(tmp_path):
    path = save_tiny_vae(tmp_path / "short.pt", CLASSES, frames=23, clip_samples=4400)  # 23-frame windows
    masker = DialogueMasker.load(path, ["speech"])
    with pytest.raises(ValueError, match=rf"model {tmp_path}/short\.pt: a window of 23 frames cannot hold "
                                         r"update_frames 16 and lookahead_frames 8"):
        StreamingEnhancer(masker, 16000, 1, update_frames=16, lookahead_frames=8)
    StreamingEnhancer(masker, 16000, 1, update_frames=16, lookahead_frames=4)  # fits: 16 + 4 < 23
