"""enhance on pipes: WAV or raw PCM in on standard input, WAV or raw out on standard output."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import soundfile as sf

from pipeline.testing.audio import REPO_ROOT, noise, tone, write_wav
from pipeline.testing.models import save_tiny_vae

ENHANCE = [sys.executable, "-m", "pipeline.enhance"]


def _pipe(argv, data: bytes) -> tuple[int, bytes, str]:
    done = subprocess.run(ENHANCE + [str(a) for a in argv] + ["--quiet"], input=data, capture_output=True,
                          cwd=REPO_ROOT, timeout=120)
    return done.returncode, done.stdout, done.stderr.decode()


def test_wav_and_raw_round_trip_through_pipes(tmp_path):
    model = save_tiny_vae(tmp_path / "model.pt", ["speech", "background"])
    x = np.stack([0.3 * noise(2.0, 16000) + tone(2.0, 16000), 0.2 * noise(2.0, 16000, seed=1)], axis=1)
    source = write_wav(tmp_path / "in.wav", x, 16000)
    common = ["--model", model, "--dialogue-classes", "speech"]
    code, out, err = _pipe(["-", "-o", "-", *common, "--dialogue-gain", "0", "--no-keep-loudness"],
                           source.read_bytes())
    assert code == 0, err
    y, rate = sf.read(io.BytesIO(out), dtype="float32")
    assert rate == 16000 and y.shape == x.shape
    np.testing.assert_allclose(y, sf.read(str(source), dtype="float32")[0], atol=1e-4)   # 0 dB: the input
    assert "real time" in err                                                             # the summary: stderr
    raw = sf.read(str(source), dtype="float32")[0].astype("<f4").tobytes()
    code, out, err = _pipe(["-", "-o", "-", *common, "--format", "f32le", "--rate", "16000", "--layout", "stereo"],
                           raw)
    assert code == 0, err
    z = np.frombuffer(out, "<f4").reshape(-1, 2)
    assert z.shape == x.shape and np.isfinite(z).all() and not np.allclose(z, x, atol=1e-3)  # +6 dB changed it
    code, _, err = _pipe(["-", "-o", tmp_path / "file.flac", *common], source.read_bytes())
    assert code == 0 and sf.info(str(tmp_path / "file.flac")).frames == len(x)
    code, out, err = _pipe(["-", "-o", "-", *common], b"not audio at all" * 10)
    assert code == 2 and "standard input" in err and out == b""
    assert "a pipe carries WAV, or raw PCM" in err and "mkv, mp4" not in err    # not the formats a file may be
