from __future__ import annotations

import pytest
import torch

from pipeline.config import StftConfig
from pipeline.features.stft import istft, magnitude, stft


def test_paper_shapes_for_a_one_second_clip():
    spec = StftConfig(400, 200)
    x = torch.randn(3, 2, 8600)
    assert stft(x, spec).shape == (3, 2, 44, 201)
    assert magnitude(x, spec).min() >= 0
    assert (spec.bins, spec.frames(8600)) == (201, 44)


def test_round_trip_recovers_the_waveform():
    x = torch.randn(4, 8600, dtype=torch.float64)
    y = istft(stft(x), length=8600)
    assert torch.allclose(x, y, atol=1e-10)


def test_window_is_hann_not_rectangular():
    # A pure tone between bins leaks far less with Hann than with a rectangular window.
    t = torch.arange(8600) / 8600
    x = torch.sin(2 * torch.pi * 1010.75 * t)
    frame = magnitude(x)[20]
    peak = int(frame.argmax())
    far = torch.cat([frame[: peak - 10], frame[peak + 10:]])
    assert far.max() / frame.max() < 1e-4  # rectangular: ~1e-3


def test_istft_rejects_wrong_orientation():
    with pytest.raises(ValueError, match="expected F = 201"):
        istft(torch.zeros(201, 44, dtype=torch.complex64), length=8600)
