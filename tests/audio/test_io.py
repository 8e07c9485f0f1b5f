from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio.io import AudioError, load_mono, read_audio, resample
from pipeline.testing.audio import tone, write_wav


def test_stereo_any_rate_becomes_mono_at_target_rate(tmp_path):
    path = write_wav(tmp_path / "stereo.wav", tone(0.5, 44100, channels=2), 44100)
    signal = load_mono(path, 8600)
    assert signal.dtype == np.float32 and signal.ndim == 1 and signal.shape[0] == 4300


@pytest.mark.parametrize("suffix, fmt", [(".flac", "FLAC"), (".ogg", "OGG")])
def test_flac_and_ogg_decode(tmp_path, suffix, fmt):
    import soundfile as sf
    path = tmp_path / f"a{suffix}"
    sf.write(str(path), tone(0.3, 16000), 16000, format=fmt)
    assert load_mono(path, 8600).shape[0] == 2580


def test_resampled_tone_keeps_its_frequency():
    out = resample(tone(1.0, 16000, frequency=1000.0), 16000, 8600)
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 8600 / len(out) - 1000.0) < 2.0


def test_nan_samples_are_rejected_with_the_file_name(tmp_path):
    samples = tone(0.2, 8000)
    samples[10] = np.nan
    path = write_wav(tmp_path / "nan.wav", samples, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: 1 NaN or infinite"):
        read_audio(path)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00garbage", b"not audio at all" * 10])
def test_corrupt_or_empty_files_are_rejected(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=r"bad\.wav"):
        read_audio(path)


def test_truncated_file_is_rejected_or_shorter(tmp_path):
    path = write_wav(tmp_path / "t.wav", tone(1.0, 8000), 8000)
    data = path.read_bytes()
    path.write_bytes(data[:44])  # header only: no samples
    with pytest.raises(AudioError, match="no samples|cannot decode"):
        read_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")
