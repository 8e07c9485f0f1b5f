"""Losses of the method (eq. 6/15, 17, 18) and the β-VAE prior term.

Every loss returns one value per item (shape (N,)): callers choose how to reduce, so masking absent sources and
averaging over a batch stay explicit. Shapes are checked and mismatches raise with the shapes received.
"""
from __future__ import annotations

import torch

EPS = 1e-8


def _check_same_shape(name: str, target: torch.Tensor, estimate: torch.Tensor, min_dims: int) -> None:
    if target.shape != estimate.shape or target.dim() < min_dims:
        raise ValueError(f"{name}: target {tuple(target.shape)} and estimate {tuple(estimate.shape)} must have the "
                         f"same shape with at least {min_dims} dimensions (N, ...)")


def generalized_kl(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Generalised KL divergence D(a‖b) = Σ a log(a/b) − a + b over all but the first dimension.

    target, estimate: (N, ...) non-negative, e.g. (N, T, F) magnitudes. Returns (N,). The Poisson decoder's
    negative log-likelihood up to a constant (eq. 8); 0 log 0 = 0.
    """
    _check_same_shape("generalized_kl", target, estimate, 2)
    # a·(log a − log b) rather than xlogy: the same values (a = 0 gives 0 either way), about twice as fast.
    terms = target * (torch.log(target + EPS) - torch.log(estimate + EPS)) - target + estimate
    return terms.flatten(1).sum(dim=1)


def squared_error(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Σ (a − b)² over all but the first dimension: (N, ...) -> (N,)."""
    _check_same_shape("squared_error", target, estimate, 2)
    return (target - estimate).square().flatten(1).sum(dim=1)


def snr(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio in dB (eq. 17): 10 log10(‖y‖² / ‖y − ŷ‖²). (N, L) -> (N,)."""
    _check_same_shape("snr", target, estimate, 2)
    signal = target.square().sum(dim=-1)
    noise = (target - estimate).square().sum(dim=-1)
    return 10 * torch.log10((signal + EPS) / (noise + EPS))


def si_snr(target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SNR in dB (eq. 18): α = yᵀŷ / ‖y‖², 10 log10(‖αy‖² / ‖αy − ŷ‖²). (N, L) -> (N,).

    Signals are made zero-mean first, as usual for SI-SNR.
    """
    _check_same_shape("si_snr", target, estimate, 2)
    target = target - target.mean(dim=-1, keepdim=True)
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    alpha = (target * estimate).sum(dim=-1, keepdim=True) / (target.square().sum(dim=-1, keepdim=True) + EPS)
    projection = alpha * target
    return 10 * torch.log10((projection.square().sum(dim=-1) + EPS) /
                            ((projection - estimate).square().sum(dim=-1) + EPS))


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over the latent dimension: (N, D), (N, D) -> (N,)."""
    _check_same_shape("gaussian_kl", mu, logvar, 2)
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1).sum(dim=-1)
