"""Channel plans: the centre of 5.1 / 7.1 alone, mid / side or per channel for stereo, --channels."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from pipeline.enhance.cli import main as enhance_main
from pipeline.enhance.layouts import default_layout, plan_channels
from pipeline.testing.audio import noise, tone, write_wav
from pipeline.testing.models import save_tiny_vae


def test_default_plans():
    assert plan_channels(default_layout(6)[1]).description == "FC"
    assert plan_channels(default_layout(8)[1]).description == "FC"
    assert plan_channels(("FL", "FR")).description == "mid of FL+FR"
    assert plan_channels(("FL", "FR"), stereo="per-channel").description == "FL+FR"
    assert plan_channels(("FC",)).description == "FC"
    assert plan_channels(default_layout(6)[1], "fl,FC").description == "FL+FC"
    with pytest.raises(ValueError, match=r"--channels 'XX': XX not in the input's layout \(FL, FR, FC, LFE, BL, BR\)"):
        plan_channels(default_layout(6)[1], "XX")


def test_mid_side_puts_the_mid_dialogue_in_both_channels():
    plan = plan_channels(("FL", "FR"))
    x = np.array([[1.0, 0.0], [0.5, 0.5]], np.float32)
    assert plan.select(x)[:, 0].tolist() == [0.5, 0.5]
    np.testing.assert_allclose(plan.spread(np.array([[0.2], [0.4]], np.float32), 2), [[0.2, 0.2], [0.4, 0.4]])


def test_centre_only_leaves_the_surround_channels_unchanged(tmp_path):
    model = save_tiny_vae(tmp_path / "model.pt", ["speech", "background"])
    x = np.stack([0.2 * noise(2.0, 48000, seed=c) for c in range(6)], axis=1)
    x[:, 2] += tone(2.0, 48000, 300.0, 0.3)
    source = write_wav(tmp_path / "in.wav", x, 48000, subtype="FLOAT")
    argv = [str(source), "--model", str(tmp_path / "model.pt"), "--dialogue-classes", "speech", "--quiet"]
    assert enhance_main(argv + ["-o", str(tmp_path / "out.wav"), "--no-keep-loudness"]) == 0
    y = sf.read(str(tmp_path / "out.wav"), dtype="float32")[0]
    untouched = [0, 1, 3, 4, 5]
    np.testing.assert_array_equal(y[:, untouched], x[:, untouched])
    assert np.abs(y[:, 2] - x[:, 2]).max() > 1e-3
    assert enhance_main(argv + ["-o", str(tmp_path / "loud.wav")]) == 0      # keep-loudness: one common gain
    z = sf.read(str(tmp_path / "loud.wav"), dtype="float32")[0]
    ratio = z[:, untouched] / np.where(x[:, untouched] == 0, 1, x[:, untouched])
    assert np.ptp(ratio[np.abs(x[:, untouched]) > 1e-3]) < 1e-4
    del model


def test_the_centre_and_the_phantom_centre_of_the_front_pair():
    """`--channels FC,FL+FR`: the model hears the centre and the mid of front left / right as two channels; the
    mid's dialogue goes into both fronts, the rest of the layout is left alone."""
    names = default_layout(6)[1]                                    # FL FR FC LFE BL BR
    plan = plan_channels(names, "FC,fl+FR")
    assert plan.description == "mid of FL+FR, FC" and plan.model_channels == 2 and plan.indices == (0, 1, 2)
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_allclose(plan.select(x), [[0.5, 2.0], [6.5, 8.0]])
    stem = plan.spread(np.array([[0.1, 0.2], [0.3, 0.4]], np.float32), 6)
    np.testing.assert_allclose(stem, [[0.1, 0.1, 0.2, 0, 0, 0], [0.3, 0.3, 0.4, 0, 0, 0]])
    with pytest.raises(ValueError, match="a channel appears twice"):
        plan_channels(names, "FC,FC+FL")


def test_the_phantom_centre_is_enhanced_in_a_file(tmp_path):
    save_tiny_vae(tmp_path / "model.pt", ["speech", "background"])
    x = np.stack([0.2 * noise(2.0, 48000, seed=c) for c in range(6)], axis=1)
    x[:, :2] += tone(2.0, 48000, 300.0, 0.3)[:, None]              # dialogue panned between FL and FR
    source = write_wav(tmp_path / "in.wav", x, 48000, subtype="FLOAT")
    argv = [str(source), "--model", str(tmp_path / "model.pt"), "--dialogue-classes", "speech", "--quiet",
            "-o", str(tmp_path / "out.wav"), "--no-keep-loudness", "--channels", "FC,FL+FR",
            "--report", str(tmp_path / "r.json")]
    assert enhance_main(argv) == 0
    y = sf.read(str(tmp_path / "out.wav"), dtype="float32")[0]
    np.testing.assert_array_equal(y[:, 3:], x[:, 3:])
    assert min(np.abs(y[:, c] - x[:, c]).max() for c in range(3)) > 1e-3
    assert __import__("json").loads((tmp_path / "r.json").read_text())["channels_processed"] == "mid of FL+FR, FC"


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT"])
def test_a_surround_wav_keeps_its_layout_and_sample_format(tmp_path, subtype):
    """soundfile writes no WAV channel mask, so a 5.1 WAV used to come back as six anonymous channels: multichannel
    WAVs are written by FFmpeg's muxer, with the input's layout and sample format."""
    import av
    from pipeline.testing.media import write_film
    save_tiny_vae(tmp_path / "model.pt", ["speech", "background"])
    x = np.stack([0.2 * noise(1.0, 48000, seed=c) for c in range(6)], axis=1).astype(np.float32)
    source = write_film(tmp_path / "in.wav", [(x, 48000, "5.1(side)", "pcm_s24le" if subtype == "PCM_24" else
                                                "pcm_f32le")], video=False)
    argv = [str(source), "--model", str(tmp_path / "model.pt"), "--dialogue-classes", "speech", "--quiet",
            "-o", str(tmp_path / "out.wav")]
    assert enhance_main(argv) == 0
    with av.open(str(source)) as before, av.open(str(tmp_path / "out.wav")) as after:
        assert after.streams.audio[0].layout.name == before.streams.audio[0].layout.name
        assert before.streams.audio[0].layout.name.startswith("5.1")           # a real mask, not "6 channels"
    assert sf.info(str(tmp_path / "out.wav")).subtype == sf.info(str(source)).subtype == subtype
    y = sf.read(str(tmp_path / "out.wav"), dtype="float32")[0]
    assert y.shape == x.shape and np.isfinite(y).all()
