"""Throughput of the separation metrics: the batched BSS-Eval engine beside mir_eval, in one run.

On synthetic 2-source 1-s mixtures at 8,600 Hz (a speech-like harmonic series and noise, resampled from 16 kHz
like every clip of the pipeline; estimates at ~10 dB SNR with some leakage of the other source):
- engine: `score_many` without speech flags (BSS-Eval SDR/SIR/SAR + SI-SDR per source), a paper-size test split
  (1,875 mixtures; the issue's target: <= 30 s on 2 CPU cores), on a warm pool of worker processes;
- mir_eval: the same scores with `mir_eval.separation.bss_eval_sources` (what the pipeline used before), on the
  same pool, on the first `--mir-eval-mixtures` of the same items (it is slow: ~10 mixtures/s per core);
- both with the permutation search (`--permutation`) when asked: what partition-based baselines need;
- PESQ nb on 1-s pairs (soxr to 8 kHz + narrow-band PESQ), one process;
- `--device cuda`: the engine batched on the GPU as well.
Prints a table (items, seconds, items/s), the largest difference between the two in dB, and as the summary line
`<N>x faster than mir_eval` (ratio of mixtures/s on the same machine and workers). Nothing is asserted.

Usage (from the repository root):

    ./run.sh python -m benchmarks.bench_metrics                       # 1,875 mixtures, mir_eval on 200
    ./run.sh python -m benchmarks.bench_metrics --quick               # smoke run: 64 / 16
    ./run.sh python -m benchmarks.bench_metrics --device cuda         # on a GPU machine
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make `import pipeline` work
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.metrics import separation as sep  # noqa: E402
from pipeline.metrics.bss_batch import bss_eval_batch, mir_eval_bss_eval  # noqa: E402
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


def resampled_noise(rng: np.random.Generator) -> np.ndarray:
    """(LENGTH,) white noise resampled from 16 kHz, as a background clip is."""
    import soxr

    noise = rng.standard_normal(int(LENGTH * 16000 / RATE) + 64)
    return 0.05 * soxr.resample(noise, 16000, RATE, quality="HQ")[:LENGTH]


def make_items(count: int, seed: int, speech: bool) -> list[sep.Item]:
    """`count` 2-source items (speech-like, noise) with estimates at ~10 dB SNR and 10 % leakage."""
    rng = np.random.default_rng(seed)
    items = []
    for k in range(count):
        references = np.stack([speech_like(rng), resampled_noise(rng)]).astype(np.float32)
        noise = rng.standard_normal(references.shape) * np.sqrt((references**2).mean(axis=1, keepdims=True) / 10)
        estimates = (references + 0.1 * references[::-1] + noise).astype(np.float32)
        items.append((f"mix-{k:05d}", references, estimates, references.sum(axis=0), (speech, False),
                      ("speech", "background")))
    return items


def mir_eval_chunk(items: list[sep.Item], permutation: bool = False) -> list[dict]:
    """The mir_eval path of one chunk: BSS-Eval (mir_eval) + SI-SDR per source, one BLAS thread."""
    from threadpoolctl import threadpool_limits

    rows = []
    with threadpool_limits(1):
        for mixture_id, references, estimates, *_ in items:
            values = mir_eval_bss_eval(references, estimates, permutation)
            for s in range(len(references)):
                rows.append({"mixture_id": mixture_id, "index": s, "sdr": values["sdr"][s], "sir": values["sir"][s],
                             "sar": values["sar"][s], "si_sdr": sep.si_sdr(references[s], estimates[s])})
    return rows


def timed(function, *args, **kwargs) -> tuple[float, object]:
    """(seconds, result) of function(*args, **kwargs)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def chunks(items: list, size: int) -> list[list]:
    return [items[k:k + size] for k in range(0, len(items), size)]


def bench_pesq(items: list[sep.Item]) -> float:
    """Seconds for one `pesq_nb` per item (speech reference vs its estimate)."""
    def run() -> None:
        for _, references, estimates, *_ in items:
            sep.pesq_nb(references[0], estimates[0], RATE)
    return timed(run)[0]


def bench_cuda(items: list[sep.Item], permutation: bool, batch: int = 256) -> float:
    """Seconds for the engine on CUDA over every item, in batches of `batch` mixtures."""
    import torch

    references = np.stack([item[1] for item in items]).astype(np.float64)
    estimates = np.stack([item[2] for item in items]).astype(np.float64)
    bss_eval_batch(references[:2], estimates[:2], device="cuda", permutation=permutation)  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(0, len(items), batch):
        bss_eval_batch(references[k:k + batch], estimates[k:k + batch], device="cuda", permutation=permutation)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixtures", type=int, default=1875, help="mixtures the engine scores (default 1875)")
    ap.add_argument("--mir-eval-mixtures", type=int, default=200, help="of those, scored by mir_eval too")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of both paths (default 2)")
    ap.add_argument("--chunk", type=int, default=16, help="mixtures per task (default 16, as evaluate)")
    ap.add_argument("--permutation", action="store_true", help="also time the permutation search")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: the engine also on the GPU")
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 mixtures, mir_eval on 16")
    args = ap.parse_args(argv)
    count = 64 if args.quick else args.mixtures
    reference_count = min(count, 16 if args.quick else args.mir_eval_mixtures)
    items = make_items(count, 0, speech=False)
    speech_items = make_items(min(count, 64), 1, speech=True)

    print(f"separation metrics: 2-source 1-s mixtures at {RATE} Hz, chunk {args.chunk}, {args.workers} worker "
          f"processes, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    header = f"{'task':<44}{'items':>7}{'seconds':>9}{'items/s':>9}"
    print(header)
    print("-" * len(header))

    def row(task: str, items_done: int, seconds: float) -> float:
        rate = items_done / seconds
        print(f"{task:<44}{items_done:>7}{seconds:>9.2f}{rate:>9.1f}")
        return rate

    ratios = []
    with LocalPool("processes", args.workers, preload=sep.WORKER_PRELOAD + ("mir_eval.separation",)) as pool:
        sep.score_many(items[:2 * args.workers], RATE, parallel=pool, chunk=1)  # warm: imports, numba cache
        seconds, frame = timed(sep.score_many, items, RATE, parallel=pool, chunk=args.chunk)
        engine_rate = row("engine: BSS-Eval + SI-SDR (known order)", count, seconds)
        seconds, rows = timed(lambda: [r for part in pool.map(mir_eval_chunk, chunks(items[:reference_count],
                                                                                       args.chunk), task="mir_eval")
                                       for r in part])
        mir_rate = row("mir_eval: BSS-Eval + SI-SDR (known order)", reference_count, seconds)
        ratios.append(engine_rate / mir_rate)
        reference = pd.DataFrame(rows)
        mine = frame[frame["mixture_id"].isin(reference["mixture_id"])].reset_index(drop=True)
        worst = max(float(np.nanmax(np.abs(mine[name].to_numpy() - reference[name].to_numpy())))
                    for name in ("sdr", "sir", "sar"))
        print(f"{'':<4}largest |engine - mir_eval| over SDR/SIR/SAR: {worst:.2e} dB "
              f"(resampled audio: the Gram matrix is numerically rank-deficient, see tests/metrics/test_bss_eval.py)")
        print(f"{'':<4}a paper-size test split ({args.mixtures} mixtures) at this rate: "
              f"{args.mixtures / engine_rate:.1f} s (mir_eval: {args.mixtures / mir_rate:.0f} s)")
        if args.permutation:
            perm_items = [(i, r, e[::-1].copy(), *rest) for i, r, e, *rest in items[:reference_count]]
            seconds, _ = timed(lambda: [bss_eval_batch(np.stack([x[1] for x in part]), np.stack([x[2] for x in part]),
                                                       permutation=True) for part in chunks(perm_items, args.chunk)])
            perm_rate = row("engine: BSS-Eval with permutation, 1 process", reference_count, seconds)
            seconds, _ = timed(lambda: [mir_eval_chunk(part, True) for part in chunks(perm_items, args.chunk)])
            row("mir_eval: BSS-Eval with permutation, 1 process", reference_count, seconds)
            ratios.append(perm_rate / (reference_count / seconds))
    if args.device.startswith("cuda"):
        row("engine on CUDA: BSS-Eval (known order)", count, bench_cuda(items, permutation=False))
    row("PESQ nb, 1-s pairs, 1 process", len(speech_items), bench_pesq(speech_items))
    print(f"{math.floor(ratios[0] * 10) / 10:.1f}x faster than mir_eval")


if __name__ == "__main__":
    main()
