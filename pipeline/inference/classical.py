"""Seed 004's classical baselines on a single-channel mixture: decompose its magnitude spectrogram, then group
the components into as many sources as the mixture holds.

These methods need several observations of a mixture; a single channel has one. As in independent subspace
analysis (Casey & Westner 2000), the spectrogram V (T, F) supplies them: its T frames are the observations and
its F bins the features, so each method finds C spectral components with an activation over time:

- `nmf`: V ≈ H W fitted to this mixture alone (generalised-KL multiplicative updates, `pipeline.models.nmf`),
  batched over mixtures in torch; component c contributes H[:, c] W[c].
- `pca`, `fastica`, `kpca` (scikit-learn `PCA`, `FastICA`, `KernelPCA` with an RBF kernel and its learned
  pre-image map): component c contributes |V̂_c − V̂_0|, the reconstruction from that component's scores alone
  minus the reconstruction from none (for PCA and ICA exactly |activation ⊗ basis|).

`group` then clusters the components by their spectral profile (mean contribution over time, unit norm) with
k-means weighted by each component's energy (near-silent components must not pull the centres) into K groups,
K the mixture's number of sources, and sums each group: K magnitude estimates in no class order (scoring needs
a permutation search). Deterministic: every random start comes from `seed`.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from pipeline.models.nmf import EPS, update_activations

METHODS = ("nmf", "fastica", "pca", "kpca")


def blind_nmf(magnitudes: torch.Tensor, components: int, iterations: int, generator: torch.Generator
              ) -> torch.Tensor:
    """Per-mixture NMF of (B, T, F) magnitudes with C = `components` atoms -> contributions (B, C, T, F)."""
    batch, frames, bins = magnitudes.shape
    device, dtype = magnitudes.device, magnitudes.dtype
    dictionary = (torch.rand(batch, components, bins, generator=generator, device=generator.device) + 0.5)
    activations = (torch.rand(batch, frames, components, generator=generator, device=generator.device) + 0.5)
    dictionary, activations = dictionary.to(device, dtype), activations.to(device, dtype)
    scale = magnitudes.mean(dim=(1, 2), keepdim=True).clamp_min(EPS)  # a start at the mixture's level
    activations = activations * scale / (components * 1.0)
    for _ in range(iterations):
        activations = update_activations(magnitudes, dictionary, activations)
        ratio = magnitudes / (activations @ dictionary).clamp_min(EPS)
        numerator = torch.einsum("btc,btf->bcf", activations, ratio)
        dictionary = dictionary * numerator / activations.sum(dim=1).unsqueeze(-1).clamp_min(EPS)
        norm = dictionary.sum(dim=-1, keepdim=True).clamp_min(EPS)     # unit-sum atoms, scale into H
        dictionary, activations = dictionary / norm, activations * norm.transpose(1, 2)
    return torch.einsum("btc,bcf->bctf", activations, dictionary)


def _model(method: str, components: int, seed: int, iterations: int):
    from sklearn.decomposition import PCA, FastICA, KernelPCA  # imported on use: 1 s that enhance need not pay

    if method == "pca":
        return PCA(n_components=components, random_state=seed)
    if method == "fastica":
        return FastICA(n_components=components, random_state=seed, whiten="unit-variance", max_iter=iterations)
    if method == "kpca":
        return KernelPCA(n_components=components, kernel="rbf", fit_inverse_transform=True, random_state=seed)
    raise ValueError(f"method {method!r}; expected one of {METHODS[1:]} (nmf runs batched: blind_nmf)")


def sklearn_contributions(magnitudes: np.ndarray, method: str, components: int, seed: int,
                          iterations: int = 200) -> np.ndarray:
    """One mixture's (T, F) magnitudes -> (C, T, F) non-negative contributions of its C components."""
    if magnitudes.ndim != 2 or min(magnitudes.shape) < components:
        raise ValueError(f"{method}: magnitudes must be (T, F) with T, F >= {components} components; got "
                         f"{magnitudes.shape}")
    from sklearn.exceptions import ConvergenceWarning

    model = _model(method, components, seed, iterations)
    values = np.asarray(magnitudes, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = model.fit_transform(values)                          # (T, C)
    frames = scores.shape[0]
    alone = np.zeros((components + 1, frames, components))            # row 0: no component; row c+1: c only
    for c in range(components):
        alone[c + 1, :, c] = scores[:, c]
    rebuilt = model.inverse_transform(alone.reshape(-1, components)).reshape(components + 1, frames, -1)
    return np.abs(rebuilt[1:] - rebuilt[:1])


def group(contributions: np.ndarray, sources: int, seed: int) -> np.ndarray:
    """(C, T, F) contributions -> (sources, T, F): k-means on unit-norm spectral profiles, each group summed.

    A group k-means leaves empty (components that are all alike) stays zero."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    count = contributions.shape[0]
    if not 1 <= sources <= count:
        raise ValueError(f"cannot group {count} components into {sources} sources; expected 1..{count}")
    profiles = contributions.mean(axis=1)
    energy = np.square(contributions).sum(axis=(1, 2))
    energy = energy / energy.sum() if energy.sum() > 0 else np.full(count, 1.0 / count)
    profiles = profiles / np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    if sources == 1:
        labels = np.zeros(count, dtype=int)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = KMeans(n_clusters=sources, n_init=4, random_state=seed).fit_predict(profiles,
                                                                                          sample_weight=energy)
    out = np.zeros((sources, *contributions.shape[1:]))
    np.add.at(out, labels, contributions)
    return out


def separate_blind(magnitudes: torch.Tensor, counts: torch.Tensor, method: str, components: int, seed: int,
                   iterations: int) -> torch.Tensor:
    """Mixtures (B, T, F) and their numbers of sources (B,) -> magnitude estimates (B, max count, T, F), mixture b
    using the first counts[b] slots (the rest zero), in no class order."""
    if method not in METHODS:
        raise ValueError(f"classical method {method!r}; expected one of {METHODS}")
    if counts.shape != magnitudes.shape[:1] or bool((counts < 1).any()):
        raise ValueError(f"counts must be (B,) = {tuple(magnitudes.shape[:1])} numbers of sources >= 1; got "
                         f"{counts.tolist()}")
    if method == "nmf":
        generator = torch.Generator().manual_seed(seed)
        parts = blind_nmf(magnitudes.detach().cpu().double(), components, iterations, generator).numpy()
    else:
        values = magnitudes.detach().cpu().double().numpy()
        parts = np.stack([sklearn_contributions(v, method, components, seed, iterations) for v in values])
    slots = int(counts.max())
    out = np.zeros((magnitudes.shape[0], slots, *magnitudes.shape[1:]))
    for b, count in enumerate(counts.tolist()):
        out[b, :count] = group(parts[b], int(count), seed)
    return torch.from_numpy(out).to(magnitudes.device, magnitudes.dtype)
