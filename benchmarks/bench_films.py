"""Speed and memory of `enhance` on a film: a synthetic 5.1 48 kHz AC-3 track beside a small video stream.

For each length (minutes) a film is written with PyAV (mkv: 64x48 mpeg4 video at 5 fps, AC-3 5.1 at 448 kb/s: a
voice-like harmonic tone in the centre over noise everywhere), then `enhance film.mkv -o out.mkv` runs in a
subprocess with the registry's default model (or a paper-size network of d2's classes when there is none) and
the default settings (centre channel, two passes at matched loudness, the model on every core but one while
decoding and encoding run in threads of their own); its wall time, real-time factor and peak
RSS (getrusage of the child) are printed and written to benchmarks/results/films.json. Peak RSS should not grow
with the length. Usage: ./run.sh python -m benchmarks.bench_films --minutes 10 30 [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from pipeline.enhance.cli import default_threads
from pipeline.enhance.registry import DEFAULT_REGISTRY

RESULTS = Path(__file__).resolve().parent / "results"
RATE = 48000


def write_synthetic_film(path: Path, minutes: float, fps: int = 5) -> Path:
    """A film of `minutes`, written 10 s at a time (memory stays flat)."""
    rng = np.random.default_rng(0)
    seconds = int(minutes * 60)
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("ac3", rate=RATE, layout="5.1")
        audio.bit_rate = 448_000
        picture = np.zeros((48, 64, 3), np.uint8)
        frame_index, at = 0, 0
        for start in range(0, seconds, 10):
            n = min(10, seconds - start) * RATE
            t = (at + np.arange(n)) / RATE
            voice = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 8)) * 0.1
            voice *= (np.sin(2 * np.pi * t / 7) > 0)                         # lines and pauses
            block = 0.03 * rng.standard_normal((6, n))
            block[2] += voice
            block[3] *= 0.3
            frame = av.AudioFrame.from_ndarray(block.astype(np.float32), format="fltp", layout="5.1")
            frame.sample_rate, frame.pts = RATE, at
            for packet in audio.encode(frame):
                out.mux(packet)
            at += n
            for _ in range(min(10, seconds - start) * fps):
                picture[:] = (frame_index * 3) % 256
                image = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
                image.pts = frame_index
                frame_index += 1
                for packet in video.encode(image):
                    out.mux(packet)
        for stream in (audio, video):
            for packet in stream.encode(None):
                out.mux(packet)
    return path


def model_args(root: Path) -> list[str]:
    if DEFAULT_REGISTRY.is_file():
        return []
    from pipeline.models.checkpoint import save_model
    from pipeline.models.train import build_model
    from pipeline.models.vae import ModelShape
    model = build_model(ModelShape(num_classes=2), seed=0)
    path = root / "model.pt"
    save_model(path, model, model.state_dict(), {"classes": ["speech", "background"], "sample_rate": 8600,
                                                 "clip_samples": 8600, "stft": {"n_fft": 400, "hop_length": 200},
                                                 "target_rms": 0.05})
    return ["--model", str(path), "--dialogue-classes", "speech"]


def run_once(film: Path, out: Path, extra: list[str], threads: int | None) -> dict:
    report = out.with_suffix(".json")
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    if threads is not None:
        extra = [*extra, "--threads", str(threads)]
    code = ("import resource, sys; from pipeline.enhance.cli import main; c = main(sys.argv[1:]); "
            "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(c)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(film), "-o", str(out), "--quiet", "--report", str(report),
                           *extra], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr)
    rss = int(done.stdout.split("RSS")[-1].split()[0])
    figures = json.loads(report.read_text())
    return {"wall_s_process": round(wall, 2), "peak_rss_mib": round(rss / 1024, 1), **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30])
    parser.add_argument("--threads", type=int, default=None,
                        help="the model's threads (default: enhance's own, every core but one)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more enhance options")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        extra = model_args(root) + args.extra
        for minutes in args.minutes:
            film = write_synthetic_film(root / f"film{minutes:g}.mkv", minutes)
            row = {"minutes": minutes, **run_once(film, root / f"out{minutes:g}.mkv", extra, args.threads)}
            rows.append(row)
            print(f"{minutes:g} min 5.1 AC-3 film: {row['wall_s']:.1f} s in enhance ({row['times_real_time']}x real "
                  f"time, RTF {row['real_time_factor']}), process {row['wall_s_process']:.1f} s, peak RSS "
                  f"{row['peak_rss_mib']:.0f} MiB; loudness {row['loudness_in_lufs']} -> {row['loudness_out_lufs']} "
                  f"LUFS, true peak {row['true_peak_in_dbtp']} -> {row['true_peak_out_dbtp']} dBTP, dialogue-to-"
                  f"background {row['dialogue_to_background_before_lu']} -> "
                  f"{row['dialogue_to_background_after_lu']} LU", flush=True)
            film.unlink()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "films.json").write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                                    "cores": len(os.sched_getaffinity(0)),
                                                    "model_threads": args.threads or default_threads(),
                                                    "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
