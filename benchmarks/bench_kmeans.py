"""K-means inference of the partition-based separators (seed 003): mixtures per second, batched over mixtures.

DPCL and SCE separate a mixture by clustering its per-bin embeddings (pipeline/models/kmeans.py): hard k-means
(Lloyd, `steps` iterations, the best of `restarts` seeded starts; the evaluation's `dpcl.kmeans` params) and, in
DPCL++, soft k-means (β, a few steps). The points are a 1-s mixture's time-frequency bins at the demo's signal
settings (44 frames x 201 bins = 8,844 points), weighted like the separator weights them, with embeddings of
dimension E (10: the demo's, 40: the seed's) drawn as two noisy clusters, C = 2 sources.

Timed, each on the same mixtures: the pipeline's batched k-means at several batch sizes (one call clusters the
whole batch; restarts run as one batch too), the same one mixture at a time, and scikit-learn's KMeans (Lloyd,
`n_init` = restarts, the same steps) one mixture at a time: the field's usual tool, as a yardstick. Each figure
is the best of `--repeats` runs. Writes benchmarks/results/kmeans.json.

Usage: ./run.sh python -m benchmarks.bench_kmeans [--device cuda] [--embedding 10 40] [--mixtures 64]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.models import kmeans

RESULTS = Path(__file__).resolve().parent / "results"
POINTS = 44 * 201


def synthetic_embeddings(mixtures: int, dimension: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, E) unit-norm embeddings of two noisy clusters and (B, N) weights (a few silent bins weigh 0)."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(mixtures, 2, dimension, generator=generator), dim=-1)
    owner = torch.randint(0, 2, (mixtures, POINTS), generator=generator)
    points = torch.gather(centres, 1, owner.unsqueeze(-1).expand(-1, -1, dimension))
    points = torch.nn.functional.normalize(points + 0.4 * torch.randn(points.shape, generator=generator), dim=-1)
    weights = torch.rand(mixtures, POINTS, generator=generator)
    weights[weights < 0.1] = 0.0
    return points, weights


def best_of(repeats: int, run, synchronise) -> float:
    times = []
    for _ in range(repeats):
        synchronise()
        started = time.perf_counter()
        run()
        synchronise()
        times.append(time.perf_counter() - started)
    return min(times)


def pipeline_rate(points, weights, batch: int, steps: int, restarts: int, device, repeats: int, soft_beta=None
                  ) -> float:
    """Mixtures per second of the pipeline's k-means over `points` in batches of `batch`."""
    points, weights = points.to(device), weights.to(device)
    active = torch.ones(points.shape[0], 2, dtype=torch.bool, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    synchronise = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run():
        for start in range(0, points.shape[0], batch):
            part = slice(start, start + batch)
            labels, centroids = kmeans.kmeans(points[part], weights[part], active[part], steps, restarts, generator)
            if soft_beta is not None:
                kmeans.soft_kmeans(points[part], weights[part], centroids, active[part], soft_beta, 3)

    run()                                                        # warm-up: allocations, kernels
    return points.shape[0] / best_of(repeats, run, synchronise)


def sklearn_rate(points, weights, steps: int, restarts: int, repeats: int) -> float:
    from sklearn.cluster import KMeans
    data, sample_weight = points.numpy().astype(np.float64), weights.numpy().astype(np.float64)

    def run():
        for i in range(data.shape[0]):
            KMeans(2, n_init=restarts, max_iter=steps, tol=0.0, algorithm="lloyd", random_state=i).fit(
                data[i], sample_weight=sample_weight[i])

    return data.shape[0] / best_of(repeats, run, lambda: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--embedding", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--mixtures", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for dimension in args.embedding:
        points, weights = synthetic_embeddings(args.mixtures, dimension)
        row = {"embedding": dimension, "points": POINTS, "mixtures": args.mixtures, "steps": args.steps,
               "restarts": args.restarts}
        for batch in args.batches:
            row[f"hard_batch{batch}_per_s"] = round(pipeline_rate(points, weights, batch, args.steps, args.restarts,
                                                                  device, args.repeats), 1)
        largest = max(args.batches)
        row[f"hard_then_soft_batch{largest}_per_s"] = round(pipeline_rate(
            points, weights, largest, args.steps, args.restarts, device, args.repeats, soft_beta=10.0), 1)
        if device.type == "cpu":
            few = points[:16], weights[:16]
            row["sklearn_one_at_a_time_per_s"] = round(sklearn_rate(*few, args.steps, args.restarts, args.repeats), 1)
        rows.append(row)
        print(f"E = {dimension}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k.endswith("_per_s")),
              flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"kmeans_{device.type}.json").write_text(json.dumps(
        {"machine": platform.processor() or platform.machine(), "device": str(device),
         "torch_threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
