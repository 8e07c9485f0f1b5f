"""Separation speed (mixtures/s) of forward and inverse (VAD joint / exhaustive) inference, d1-size model.

Paper-size network with d1's 5 classes; mixtures of two classes; forward on batches of 100; inverse at the
iteration count of params.yaml (`evaluate.schedule` of the active profile, or --iterations), exhaustive over the
10 pairs of 5 classes. NMF separation (the baseline, `pipeline/models/nmf.py`) of the same
batch at 200 multiplicative updates (the paper profile's `nmf.schedule`), with oracle and estimated classes.
BSS-Eval speed: `benchmarks/bench_metrics.py`.

`--batch-sizes 8 32 128 ...`: VAD throughput per batch size (mixtures x combinations x restarts are one
optimisation already), timed over `--sweep-iterations` iterations and scaled to the paper's 300, and the
smallest batch within 10 % of the best throughput: where the device saturates.

Usage (from the repository root):
    ./run.sh python -m benchmarks.bench_inference                 # CPU, 2 threads
    ./run.sh python -m benchmarks.bench_inference --device cuda
    ./run.sh python -m benchmarks.bench_inference --quick
    ./run.sh python -m benchmarks.bench_inference --batch-sizes 4 16 64 256 --device cuda
"""
from __future__ import annotations

import argparse
import time

import torch

from pipeline.config import StftConfig, load_params
from pipeline.features.stft import stft
from pipeline.features.wiener import wiener_separate
from pipeline.inference.forward import forward_separate
from pipeline.inference.inverse import InverseConfig, all_combinations, inverse_exhaustive, inverse_joint
from pipeline.models.train import build_model
from pipeline.models.vae import ModelShape

from benchmarks.bench_training import synthetic_batch


def timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=None,
                        help="sweep VAD throughput over these batch sizes (mixtures per optimisation)")
    parser.add_argument("--nmf-iterations", type=int, default=200,
                        help="NMF updates per test mixture (default 200: nmf.schedule.paper.test_iterations)")
    parser.add_argument("--sweep-iterations", type=int, default=10, help="iterations timed per sweep point")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    params = load_params()
    iterations = args.iterations or (5 if args.quick else params.evaluate.schedule.inverse_iterations)
    model = build_model(ModelShape(num_classes=5), seed=0).to(device).eval()
    spec = StftConfig()
    forward_batch = synthetic_batch(5, 100, device)
    inverse_batch = synthetic_batch(5, 8 if args.quick else 24, device)
    config = InverseConfig(iterations=iterations, tolerance=0.0)
    generator = torch.Generator(device=device).manual_seed(0)

    def forward() -> None:
        magnitudes = stft(forward_batch.mixture, spec).abs()
        wiener_separate(forward_separate(model, magnitudes).sources, forward_batch.mixture, spec)

    magnitudes = stft(inverse_batch.mixture, spec).abs()
    forward()  # warm-up
    rounds = 1 if args.quick else 3
    forward_rate = max(100 / timed(forward) for _ in range(rounds))
    joint = inverse_batch.size / timed(lambda: inverse_joint(model, magnitudes, config, generator))
    pairs = all_combinations(5, [2]).to(device)
    exhaustive = inverse_batch.size / timed(lambda: inverse_exhaustive(model, magnitudes, pairs, config, generator))
    print(f"d1-size model (5 classes), device {device}" + (f", {args.threads} threads" if device.type == "cpu" else ""))
    print(f"forward (classify, Wiener masks, ISTFT): {forward_rate:8.1f} mixtures/s")
    print(f"inverse joint, {iterations} iterations:      {joint:8.2f} mixtures/s")
    print(f"inverse exhaustive (10 pairs), {iterations} it.: {exhaustive:8.2f} mixtures/s")
    nmf_iterations = 20 if args.quick else args.nmf_iterations
    for classes, rate in nmf_rates(spec, device, forward_batch, params.nmf.rank, nmf_iterations).items():
        print(f"NMF, {classes} classes, {nmf_iterations} updates:      {rate:8.1f} mixtures/s")
    if args.batch_sizes:
        sweep(model, spec, device, args.batch_sizes, args.sweep_iterations, iterations)


def nmf_rates(spec: StftConfig, device: torch.device, batch, rank: int, iterations: int) -> dict[str, float]:
    """NMF separation (activations fitted, Wiener mask, ISTFT) of a batch of 100 d1-size mixtures, with the oracle
    classes and with the lowest-divergence pair of 5 classes (10 candidates fitted in one batched call)."""
    from pipeline.models.nmf import NmfModel

    generator = torch.Generator(device=device).manual_seed(0)
    bins = spec.n_fft // 2 + 1
    model = NmfModel(torch.rand(5 * rank, bins, generator=generator, device=device) / bins, [str(k) for k in range(5)],
                     rank, {})
    magnitudes = stft(batch.mixture, spec).abs()
    candidates = {"oracle": batch.labels.unsqueeze(1),
                  "estimated (10 pairs)": all_combinations(5, [2]).to(device).expand(batch.size, -1, -1)}
    rates = {}
    for name, sets in candidates.items():
        def run() -> None:
            sources, _ = model.separate(magnitudes, sets, iterations, generator)
            _sync(wiener_separate(sources, batch.mixture, spec), device)
        run()
        rates[name] = batch.size / timed(run)
    return rates


def sweep(model, spec: StftConfig, device: torch.device, sizes: list[int], iterations: int, paper: int) -> None:
    """VAD joint / exhaustive throughput per batch size, scaled to `paper` iterations; where it saturates."""
    config = InverseConfig(iterations=iterations, tolerance=0.0)
    generator = torch.Generator(device=device).manual_seed(0)
    pairs = all_combinations(5, [2]).to(device)
    print(f"VAD batch sweep ({iterations} iterations timed, shown as mixtures/s at {paper} iterations)")
    print(f"{'batch':>7}{'joint':>12}{'exhaustive':>12}")
    rates: dict[str, dict[int, float]] = {"joint": {}, "exhaustive": {}}
    for size in sizes:
        batch = synthetic_batch(5, size, device, seed=size)
        magnitudes = stft(batch.mixture, spec).abs()
        inverse_joint(model, magnitudes[:1], config, generator)  # warm-up at this shape's code path
        scale = iterations / paper
        rates["joint"][size] = scale * size / timed(lambda: _sync(inverse_joint(model, magnitudes, config,
                                                                               generator), device))
        rates["exhaustive"][size] = scale * size / timed(lambda: _sync(inverse_exhaustive(
            model, magnitudes, pairs, config, generator), device))
        print(f"{size:>7}{rates['joint'][size]:>12.2f}{rates['exhaustive'][size]:>12.2f}")
    for method, by_size in rates.items():
        best = max(by_size.values())
        saturated = min(size for size, rate in by_size.items() if rate >= 0.9 * best)
        print(f"{method}: saturates at batch {saturated} ({best:.2f} mixtures/s at {paper} iterations)")


def _sync(result, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result


if __name__ == "__main__":
    main()
