"""Throughput of the separation metrics on 2-source 1-s mixtures at 8,600 Hz.

Measures, on synthetic signals (a speech-like harmonic series and noise, estimates at ~10 dB SNR):
- BSS-Eval: `score_many` with no speech flags (BSS-Eval + SI-SDR per mixture), on local pools of 1 and 2 processes; each
  parallel count runs twice: "cold" includes starting the forkserver and importing the metric libraries
  (~2 s, once per process), "warm" only the pool start (~0.5 s), as in a run that scores several models;
- PESQ: `pesq_nb` (soxr resampling to 8 kHz + narrow-band PESQ) on 1-s pairs, in one process;
- full scoring: `score_many` with speech flags (BSS-Eval + SI-SDR + 2 PESQ per speech source), workers 2.
Prints a small table (items, seconds, items/s) and the load average; nothing is asserted.

Usage (from the repository root):

    .venv/bin/python -m benchmarks.bench_metrics              # 64 mixtures, 64 PESQ pairs
    .venv/bin/python -m benchmarks.bench_metrics --quick      # smoke run: 8 of each
    .venv/bin/python -m benchmarks.bench_metrics --mixtures 256 --workers 1 2
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make `import pipeline` work
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from pipeline.metrics import separation as sep  # noqa: E402
from pipeline.parallel import LocalPool  # noqa: E402

RATE = 8600
LENGTH = 8600


def speech_like(rng: np.random.Generator) -> np.ndarray:
    """(LENGTH,) float32 harmonic series with a random gliding pitch and a syllable-like envelope."""
    t = np.arange(LENGTH) / RATE
    f0 = rng.uniform(100, 200) + 40 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t + rng.uniform(0, np.pi)), 0, None) ** 0.6
    return (0.3 * envelope * voice / np.abs(voice).max()).astype(np.float32)


def make_items(count: int, seed: int, speech: bool) -> list[sep.Item]:
    """`count` 2-source items (speech-like, noise) with estimates at ~10 dB SNR."""
    rng = np.random.default_rng(seed)
    items = []
    for k in range(count):
        references = np.stack([speech_like(rng), 0.05 * rng.standard_normal(LENGTH)]).astype(np.float32)
        noise = rng.standard_normal(references.shape) * np.sqrt((references**2).mean(axis=1, keepdims=True) / 10)
        estimates = (references + noise).astype(np.float32)
        items.append((f"mix-{k:05d}", references, estimates, references.sum(axis=0), (speech, False),
                      ("speech", "background")))
    return items


def timed(function, *args, **kwargs) -> float:
    """Seconds taken by function(*args, **kwargs)."""
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def bench_pesq(items: list[sep.Item]) -> float:
    """Seconds for one `pesq_nb` per item (speech reference vs its estimate)."""
    def run() -> None:
        for _, references, estimates, *_ in items:
            sep.pesq_nb(references[0], estimates[0], RATE)
    return timed(run)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixtures", type=int, default=64, help="mixtures (and PESQ pairs) to score (default 64)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts for BSS-Eval")
    ap.add_argument("--chunk", type=int, default=4, help="score_many chunk size (default 4)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 8 mixtures")
    args = ap.parse_args(argv)
    count = 8 if args.quick else args.mixtures
    bss_items, speech_items = make_items(count, 0, speech=False), make_items(count, 1, speech=True)
    sep.score_many(bss_items[:1], RATE)  # warm-up: imports mir_eval, scipy, pesq, soxr

    print(f"separation metrics: 2-source 1-s mixtures at {RATE} Hz, {count} items, chunk {args.chunk}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    header = f"{'task':<36}{'workers':>8}{'items':>7}{'seconds':>9}{'items/s':>9}"
    print(header)
    print("-" * len(header))

    def row(task: str, workers: int, seconds: float) -> None:
        print(f"{task:<36}{workers:>8}{count:>7}{seconds:>9.2f}{count / seconds:>9.1f}")

    for workers in args.workers:
        with LocalPool("processes", workers, preload=sep.WORKER_PRELOAD) as pool:  # cold: starts its workers
            for start in [""] if workers == 1 else [" cold", " warm"]:
                row(f"BSS-Eval + SI-SDR (mixtures){start}", workers,
                    timed(sep.score_many, bss_items, RATE, parallel=pool, chunk=args.chunk))
    row("PESQ nb, 1-s pairs", 1, bench_pesq(speech_items))
    workers = max(args.workers)
    with LocalPool("processes", workers, preload=sep.WORKER_PRELOAD) as pool:
        row("full score_mixture (mixtures)", workers,
            timed(sep.score_many, speech_items, RATE, parallel=pool, chunk=args.chunk))


if __name__ == "__main__":
    main()
