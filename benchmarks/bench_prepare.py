"""Throughput of `prepare_clips` (decode -> resample -> cut -> normalise -> Parquet shards), per core.

Writes N synthetic 16-bit wav recordings into a temporary folder under /tmp, lists them as `Recording`s and
runs `prepare_clips` on a local pool of 1 and 2 processes, for two corpus shapes:

  * SC09-like: 1-s, 16 kHz files (one clip each),
  * GRID-like: 3-s, 25 kHz files (three clips each).

Prints recordings/s and clips/s, the per-core figure (workers=1) and the speed-up with 2 workers. Prints
figures only; nothing is asserted.

Usage (from the repository root):

    .venv/bin/python -m benchmarks.bench_prepare                 # 400 files per shape
    .venv/bin/python -m benchmarks.bench_prepare --files 1000 --keep
    .venv/bin/python -m benchmarks.bench_prepare --quick         # smoke run (40 files)
    .venv/bin/python benchmarks/bench_prepare.py                 # also works
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `import pipeline` work
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from pipeline.config import parse_params  # noqa: E402
from pipeline.corpora.prepare import prepare_clips  # noqa: E402
from pipeline.parallel import LocalPool  # noqa: E402
from pipeline.corpora.recordings import Recording  # noqa: E402
from pipeline.testing.audio import repo_params_raw, write_wav  # noqa: E402

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SHAPES = {  # name -> (seconds, sample rate)
    "sc09-like (1 s, 16 kHz)": (1.0, 16000),
    "grid-like (3 s, 25 kHz)": (3.0, 25000),
}


def synth(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A speech-ish signal: a few harmonics under an envelope, plus noise; peak < 1."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f0 = rng.uniform(90, 250)
    voiced = sum(rng.uniform(0.1, 0.4) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.28))
                 for h in range(1, 6))
    envelope = np.clip(np.sin(np.pi * t / seconds), 0, None) ** 0.5
    signal = envelope * voiced + 0.02 * rng.standard_normal(n)
    return (0.8 * signal / max(np.abs(signal).max(), 1e-9)).astype(np.float32)


def write_corpus(root: Path, files: int, seconds: float, rate: int, seed: int) -> list[Recording]:
    rng = np.random.default_rng(seed)
    recordings = []
    for i in range(files):
        label = DIGITS[i % len(DIGITS)]
        speaker = f"{i // len(DIGITS):08x}"
        relative = f"{label}/{speaker}_nohash_0.wav"
        write_wav(root / relative, synth(seconds, rate, rng), rate)
        u = (i * 7919 % 100) / 100
        split = "train" if u < 0.8 else "valid" if u < 0.9 else "test"
        recordings.append(Recording(path=root / relative, source_file=relative, label=label, speaker=speaker,
                                    gender=None, split=split))
    return recordings


def run_once(recordings: list[Recording], out_dir: Path, params, workers: int) -> tuple[float, int]:
    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    with LocalPool("processes", workers) as pool:
        report = prepare_clips("bench", recordings, out_dir, params.audio, params.shards, progress=False,
                               parallel=pool)
    elapsed = time.perf_counter() - start
    clips = sum(report.clips.values())
    if report.recordings_used != len(recordings):
        print(f"  warning: {len(recordings) - report.recordings_used} recordings skipped", file=sys.stderr)
    return elapsed, clips


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=400, help="recordings per corpus shape (default 400)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 40 files per shape")
    ap.add_argument("--repeats", type=int, default=3, help="runs per setting; the fastest is reported (default 3)")
    args = ap.parse_args(argv)
    files = 40 if args.quick else args.files

    params = parse_params(repo_params_raw())
    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare-", dir="/tmp"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"prepare_clips benchmark: {files} files per shape, target {params.audio.sample_rate} Hz, "
          f"shards {params.shards.rows_per_group}x{params.shards.groups_per_shard} {params.shards.compression}, "
          f"{cores} cores available, load average {os.getloadavg()[0]:.2f}, temp {tmp}")
    header = f"{'corpus shape':<26}{'workers':>8}{'files':>7}{'clips':>7}{'seconds':>9}{'rec/s':>9}" \
             f"{'clips/s':>9}{'clips/s/core':>13}{'speed-up':>9}"
    print(header)
    print("-" * len(header))
    try:
        for s, (name, (seconds, rate)) in enumerate(SHAPES.items()):
            recordings = write_corpus(tmp / f"raw{s}", files, seconds, rate, seed=s)
            run_once(recordings[:10], tmp / f"warmup{s}", params, 1)  # untimed: first-call costs (soxr, zstd)
            base = None
            for workers in (1, 2):
                elapsed, clips = min((run_once(recordings, tmp / f"clips{s}-w{workers}", params, workers)
                                      for _ in range(max(1, args.repeats))), key=lambda r: r[0])
                base = base or elapsed
                print(f"{name:<26}{workers:>8}{files:>7}{clips:>7}{elapsed:>9.2f}{files / elapsed:>9.1f}"
                      f"{clips / elapsed:>9.1f}{clips / elapsed / workers:>13.1f}{base / elapsed:>8.2f}x")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
