"""The Fréchet distance between two Gaussians fitted to feature sets (the FID's formula)."""
from __future__ import annotations

import numpy as np


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) of features a (N, D) and b (M, D), N, M >= 2."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"frechet_distance expects two (N >= 2, D) feature sets of the same D, got {a.shape}, {b.shape}")
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    distance = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * _trace_root(cov_a, cov_b)
    return float(max(distance, 0.0))


def _trace_root(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """tr (Σ_a Σ_b)^½ = Σ √λ of the symmetric Σ_a^½ Σ_b Σ_a^½ (same eigenvalues): stable when the covariances are
    singular, as they are with fewer clips than feature dimensions."""
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum())
