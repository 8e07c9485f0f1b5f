"""K-means on per-bin embeddings, batched over mixtures (seed 003, section 4.2): hard (Lloyd, seeded restarts,
the lowest weighted inertia wins) and soft (differentiable: assignments softmax(−β‖v − μ‖²), the stiffness β).

Shapes: points (B, N, E) (N time-frequency bins of E dimensions), weights (B, N) >= 0 (0 for silent bins: they
never move a centroid, but are still assigned), active (B, C) bool (the clusters each mixture uses: mixtures with
fewer sources than C leave the rest unused). Everything is one tensor operation over the batch and the restarts.
"""
from __future__ import annotations

import torch

TINY = 1e-12


def _check(points: torch.Tensor, weights: torch.Tensor, active: torch.Tensor) -> None:
    if points.dim() != 3 or weights.shape != points.shape[:2] or active.dim() != 2 \
            or active.shape[0] != points.shape[0]:
        raise ValueError(f"k-means: points {tuple(points.shape)} must be (B, N, E), weights {tuple(weights.shape)} "
                         f"(B, N) and active {tuple(active.shape)} (B, C)")
    if not bool(active.any(dim=1).all()):
        raise ValueError("k-means: every mixture needs at least one active cluster")


def distances(points: torch.Tensor, centroids: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Squared distances (B, N, C) of points (B, N, E) to centroids (B, C, E); +inf for inactive clusters."""
    squared = (points.square().sum(-1, keepdim=True) - 2 * points @ centroids.transpose(1, 2)
               + centroids.square().sum(-1).unsqueeze(1)).clamp_min(0)
    return squared.masked_fill(~active.unsqueeze(1), float("inf"))


def _update(points: torch.Tensor, weights: torch.Tensor, assign: torch.Tensor, previous: torch.Tensor
            ) -> torch.Tensor:
    """Weighted means of the points per cluster, assign (B, N, C) >= 0; an empty cluster keeps its centroid."""
    mass = assign * weights.unsqueeze(-1)                                            # (B, N, C)
    total = mass.sum(dim=1).unsqueeze(-1)                                            # (B, C, 1)
    means = mass.transpose(1, 2) @ points / total.clamp_min(TINY)
    return torch.where(total > TINY, means, previous)


def lloyd(points: torch.Tensor, weights: torch.Tensor, centroids: torch.Tensor, active: torch.Tensor, steps: int
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`steps` Lloyd iterations from `centroids` (B, C, E) -> (labels (B, N) long, centroids, inertia (B,))."""
    _check(points, weights, active)
    for _ in range(steps):
        labels = distances(points, centroids, active).argmin(dim=-1)
        one_hot = torch.nn.functional.one_hot(labels, centroids.shape[1]).to(points.dtype)
        centroids = _update(points, weights, one_hot, centroids)
    nearest, labels = distances(points, centroids, active).min(dim=-1)
    return labels, centroids, (nearest * weights).sum(dim=1)


def initial_centroids(points: torch.Tensor, weights: torch.Tensor, clusters: int, generator: torch.Generator
                      ) -> torch.Tensor:
    """C distinct points per mixture drawn in proportion to their weights (any point where all weights are 0):
    (B, N, E) -> (B, C, E)."""
    probabilities = weights + TINY * (weights.sum(dim=1, keepdim=True) <= 0)
    index = torch.multinomial(probabilities, clusters, replacement=False, generator=generator)   # (B, C)
    return torch.gather(points, 1, index.unsqueeze(-1).expand(-1, -1, points.shape[-1]))


@torch.no_grad()
def kmeans(points: torch.Tensor, weights: torch.Tensor, active: torch.Tensor, steps: int, restarts: int,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard k-means with `restarts` seeded initialisations per mixture, run together as one batch of R·B;
    per mixture the restart of lowest weighted inertia wins. Returns labels (B, N) long and centroids (B, C, E)."""
    if steps < 1 or restarts < 1:
        raise ValueError(f"k-means needs steps >= 1 and restarts >= 1; got {steps} and {restarts}")
    _check(points, weights, active)
    batch, clusters = active.shape
    tiled = points.repeat(restarts, 1, 1)
    tiled_weights, tiled_active = weights.repeat(restarts, 1), active.repeat(restarts, 1)
    start = initial_centroids(tiled, tiled_weights, clusters, generator)
    labels, centroids, inertia = lloyd(tiled, tiled_weights, start, tiled_active, steps)
    best = inertia.view(restarts, batch).argmin(dim=0)                               # (B,)
    pick = best * batch + torch.arange(batch, device=points.device)
    return labels[pick], centroids[pick]


def soft_kmeans(points: torch.Tensor, weights: torch.Tensor, centroids: torch.Tensor, active: torch.Tensor,
                beta: float, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft k-means (differentiable): `steps` updates μ_c = Σ γ_ic w_i v_i / Σ γ_ic w_i from `centroids` (B, C, E),
    γ = softmax_c(−β‖v_i − μ_c‖²) over the active clusters. Returns γ (B, N, C) of the final centroids, and
    the centroids. As β grows, γ tends to the one-hot assignments of hard k-means from the same start."""
    if beta <= 0 or steps < 0:
        raise ValueError(f"soft k-means needs beta > 0 and steps >= 0; got {beta} and {steps}")
    _check(points, weights, active)
    for _ in range(steps):
        gamma = torch.softmax(-beta * distances(points, centroids, active), dim=-1)
        centroids = _update(points, weights, gamma, centroids)
    return torch.softmax(-beta * distances(points, centroids, active), dim=-1), centroids
