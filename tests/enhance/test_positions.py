"""Masks from overlapping windows weighted by position, and the clip check that pins `enhance` to the model alone.

The toy separator splits by frequency (dialogue below a cut-off bin, background above), perfectly at the centre
of its window and more and more blurred towards the window's edges, as models trained on centred 1-s clips do.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.enhance.clip_check import clip_check
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.stream import LIVE, OFFLINE, MaskStream, StreamSettings, position_weights
from pipeline.separators.signal import SignalSettings

RATE, N_FFT, HOP, CONTEXT_FRAMES = 8600, 400, 200, 44
CUT_BIN = 60  # 1.3 kHz


class _EdgeBlur:
    """Dialogue share a(p, f) of each bin: 1 below CUT_BIN, 0 above, at the window's centre; towards the edges
    it blurs to ½ (`blur` 0: perfect everywhere)."""

    classes = ["speech", "background"]
    settings = SignalSettings(RATE, N_FFT, HOP, CONTEXT_FRAMES, origin="toy")

    def __init__(self, blur: float = 1.0):
        p = np.arange(CONTEXT_FRAMES)
        sharp = np.minimum(1.0, 4.0 * np.minimum(p + 1, CONTEXT_FRAMES - p) / CONTEXT_FRAMES)
        sharp = 1.0 - blur * (1.0 - sharp)
        low = (np.arange(N_FFT // 2 + 1) < CUT_BIN).astype(np.float64)
        self.share = torch.tensor(sharp[:, None] * low + (1 - sharp[:, None]) * 0.5, dtype=torch.float32)

    def magnitudes(self, windows, frames=None):
        share = self.share if frames is None else self.share[frames]
        windows = windows if frames is None else windows[:, frames]
        return torch.stack([windows * share.sqrt(), windows * (1 - share).sqrt()], dim=1)


def _masker(blur: float = 1.0) -> DialogueMasker:
    return DialogueMasker(_EdgeBlur(blur), torch.tensor([True, False]))


def _reference_dialogue(x: np.ndarray, blur: float, update: int, lookahead: int) -> np.ndarray:
    """A direct reading of the rule: frame f of block b gets the position-weighted mean of its masks from every
    window ending at (b' + 1)·update − 1 + lookahead for b' <= b (zero frames before the start)."""
    window = np.hanning(N_FFT + 1)[:-1]
    blocks = (len(x) + N_FFT // 2) // HOP // update + 2
    frames = blocks * update + lookahead + N_FFT // HOP + 1
    padded = np.concatenate([np.zeros(N_FFT // 2), x, np.zeros(frames * HOP + N_FFT)])
    spectra = np.stack([np.fft.rfft(padded[j * HOP:j * HOP + N_FFT] * window) for j in range(frames)])
    share = _EdgeBlur(blur).share.numpy().astype(np.float64)
    weights = position_weights(CONTEXT_FRAMES)
    out = np.zeros(len(padded))
    envelope = np.zeros(len(padded))
    for b in range(blocks):
        for f in range(b * update, (b + 1) * update):
            total, weight = 0.0, 0.0
            for earlier in range(b + 1):
                start = (earlier + 1) * update - 1 + lookahead - CONTEXT_FRAMES + 1
                p = f - start
                if 0 <= p < CONTEXT_FRAMES:
                    total, weight = total + weights[p] * share[p], weight + weights[p]
            out[f * HOP:f * HOP + N_FFT] += np.fft.irfft(spectra[f] * total / weight, n=N_FFT) * window
            envelope[f * HOP:f * HOP + N_FFT] += window ** 2
    return out[N_FFT // 2:N_FFT // 2 + len(x)] / envelope[N_FFT // 2:N_FFT // 2 + len(x)]


@pytest.mark.parametrize("update, lookahead", [(OFFLINE.update_frames, OFFLINE.lookahead_frames), (16, 4),
                                               (LIVE.update_frames, LIVE.lookahead_frames), (5, 7)])
def test_each_frame_gets_the_weighted_mean_of_its_windows(update, lookahead):
    x = np.random.default_rng(update).standard_normal(int(2.3 * RATE)) * 0.1
    stream = MaskStream(_masker(), 1, update, lookahead)
    out = np.concatenate([stream.process(x[None, :5000]), stream.process(x[None, 5000:]), stream.flush()], axis=1)
    np.testing.assert_allclose(out[0], _reference_dialogue(x, 1.0, update, lookahead), atol=2e-5)


def test_position_weights_favour_the_centre_and_never_vanish():
    w = position_weights(CONTEXT_FRAMES)
    assert w.min() > 0 and w.argmax() in (21, 22) and np.allclose(w, w[::-1])


def _clips(count: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Dialogue: a 500 Hz line somewhere in each clip; background: noise above 2 kHz, throughout."""
    rng = np.random.default_rng(5)
    t = np.arange(RATE) / RATE
    dialogue = np.zeros((count, RATE))
    for i in range(count):
        on = int(rng.integers(0, RATE // 2))
        dialogue[i, on:on + RATE // 3] = 0.1 * np.sin(2 * np.pi * 500 * t[:RATE // 3])
    noise = np.fft.rfft(rng.standard_normal((count, RATE)), axis=1)
    noise[:, :2000] = 0
    background = 0.05 * np.fft.irfft(noise, n=RATE, axis=1)
    return (dialogue + background).astype(np.float32), dialogue.astype(np.float32)


def test_a_perfect_separator_scores_the_same_alone_and_in_enhance():
    mixtures, dialogue = _clips()
    check = clip_check(_masker(blur=0.0), mixtures, dialogue, RATE, OFFLINE)
    assert np.median(check.alone) > 30 and np.median(check.enhance) > 30 and abs(check.gap_db) < 1.0


def test_the_clip_check_holds_offline_and_catches_a_setting_that_loses_quality():
    mixtures, dialogue = _clips()
    masker = _masker(blur=1.0)
    offline = clip_check(masker, mixtures, dialogue, RATE, OFFLINE)
    live = clip_check(masker, mixtures, dialogue, RATE, LIVE)
    assert offline.on_target and offline.gap_db > 0, offline.metrics()  # centred views beat the clip's own window
    assert not live.on_target, live.metrics()          # frames seen only at the windows' edges
    assert set(offline.metrics()) == {"alone_si_sdri", "enhance_si_sdri", "gap_db"}


def test_the_clip_check_refuses_mismatched_clips():
    with pytest.raises(ValueError, match="same"):
        clip_check(_masker(), np.zeros((2, RATE), np.float32), np.zeros((3, RATE), np.float32), RATE,
                   StreamSettings(8, 35))
