"""Separation speed (mixtures/s) of forward and inverse (VAD joint / exhaustive) inference, d1-size model.

Paper-size network with d1's 5 classes; mixtures of two classes; forward on batches of 100; inverse at the
iteration count of params.yaml (`evaluate.schedule` of the active profile, or --iterations), exhaustive over the
10 pairs of 5 classes. BSS-Eval speed: `benchmarks/bench_metrics.py`.

Usage (from the repository root):
    ./run.sh python -m benchmarks.bench_inference                 # CPU, 2 threads
    ./run.sh python -m benchmarks.bench_inference --device cuda
    ./run.sh python -m benchmarks.bench_inference --quick
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


if __name__ == "__main__":
    main()
