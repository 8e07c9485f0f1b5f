from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio.clips import cut_clips, normalise_rms, rms


def test_short_recording_is_centred_and_padded():
    (clip,) = cut_clips(np.ones(600, dtype=np.float32), 1000, 0.5)
    assert clip.offset == -200 and clip.samples.shape == (1000,)
    assert clip.samples[:200].sum() == 0 and clip.samples[200:800].sum() == 600 and clip.samples[800:].sum() == 0


def test_long_recording_is_cut_and_short_tail_dropped():
    clips = cut_clips(np.arange(2300, dtype=np.float32), 1000, 0.5)
    assert [c.offset for c in clips] == [0, 1000]  # tail of 300 < 0.5 clip


def test_long_tail_is_padded_and_kept():
    clips = cut_clips(np.ones(2600, dtype=np.float32), 1000, 0.5)
    assert [c.offset for c in clips] == [0, 1000, 2000]
    assert clips[-1].samples[:600].sum() == 600 and clips[-1].samples[600:].sum() == 0


def test_normalise_rms():
    out = normalise_rms(np.random.default_rng(0).standard_normal(5000).astype(np.float32), 0.05)
    assert out.dtype == np.float32 and rms(out) == pytest.approx(0.05, rel=1e-5)
    with pytest.raises(ValueError, match="silent"):
        normalise_rms(np.zeros(10, dtype=np.float32), 0.05)


def test_stereo_is_refused_by_the_cutter():
    with pytest.raises(ValueError, match="mono"):
        cut_clips(np.zeros((10, 2), dtype=np.float32), 4, 0.5)


def test_silence_is_judged_against_the_recording_and_a_floor():
    from pipeline.audio.clips import silent_clips

    decide = lambda levels: silent_clips(np.array(levels), relative_db=30, threshold_db=-50, floor_db=-90).tolist()
    assert decide([-55.0]) == [False]                       # one quiet clip: a quiet recording, not silence
    assert decide([-44.0, -56.0, -80.0]) == [False, False, True]  # only what is far below the recording's level
    assert decide([-10.0, -45.0]) == [False, False]         # above the absolute threshold: kept however far below
    assert decide([-95.0]) == [True]                        # digital silence, whatever the recording
    with pytest.raises(ValueError, match="shape"):
        silent_clips(np.array([]), relative_db=30, threshold_db=-50, floor_db=-90)
