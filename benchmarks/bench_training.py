"""Training throughput (mixtures/s) of the class-supervised d1-size model: batch 100, filters 128/128/256,
latent 128, two classes present per mixture, K = 5 and K = 10 classes; full steps (STFT, encoder, the decoders
of the present classes, loss, backward, Adam). Best of several timed rounds: shared machines are noisy.

Usage (from the repository root):
    ./run.sh python -m benchmarks.bench_training                  # CPU, 2 threads
    ./run.sh python -m benchmarks.bench_training --device cuda    # on a GPU machine
    ./run.sh python -m benchmarks.bench_training --quick
"""
from __future__ import annotations

import argparse
import time

import torch

from pipeline.config import StftConfig
from pipeline.models.data import Batch
from pipeline.models.objective import Objective, compute
from pipeline.models.train import build_model
from pipeline.models.vae import ModelShape


def synthetic_batch(classes: int, batch: int, device: torch.device, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.zeros(batch, classes)
    for i in range(batch):
        labels[i, torch.randperm(classes, generator=generator)[:2]] = 1
    sources = 0.05 * torch.randn(batch, classes, 8600, generator=generator) * labels[:, :, None]
    return Batch(sources.sum(dim=1), labels, sources).to(device)


def throughput(classes: int, device: torch.device, steps: int, rounds: int) -> float:
    model = build_model(ModelShape(num_classes=classes), seed=0).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), fused=True)
    objective = Objective("class", "mag-kl", beta=10.0, class_weight=1.0, stft=StftConfig())
    batch = synthetic_batch(classes, 100, device)
    generator = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        terms = compute(model, batch, objective, generator)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()

    for _ in range(3):
        step()
    best = 0.0
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, steps * batch.size / (time.perf_counter() - began))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    steps, rounds = (3, 1) if args.quick else (10, 5)
    print(f"class-supervised training, batch 100, paper-size network, device {device}"
          + (f", {args.threads} threads" if device.type == "cpu" else ""))
    for classes in (5, 10):
        print(f"K = {classes:>2}: {throughput(classes, device, steps, rounds):7.0f} mixtures/s (best of {rounds} rounds)")
    print("target on a 2-core CPU: >= 950 mixtures/s at K = 10 (a straightforward implementation: ~640/s)")


if __name__ == "__main__":
    main()
