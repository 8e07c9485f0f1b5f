"""Non-negative matrix factorisation under the generalised KL divergence: the paper's baseline (eq. 1, X ~ WH).

Layout follows the STFT's: magnitudes V (B, T, F) ~ H (B, T, K*R) @ W (K*R, F), with W = [W_1; ...; W_K] the
dictionaries of the K classes (R atoms each, as rows) and H the activations. Multiplicative updates (Lee & Seung
2001) never increase D_GKL(V | HW) (+ sparsity * sum H for the activations):

    H <- H * ((V / HW) @ W^T) / (1 @ W^T + sparsity)          W <- W * (sum_b H_b^T (V_b / H_b W)) / (sum_b H_b^T 1)

Labels constrain them: an activation of a class the mixture does not hold starts at zero and stays zero (the
updates are multiplicative), so class supervision (dictionaries from mixtures and their labels only), source
supervision (from isolated sources, each labelled with its class) and oracle-class separation are one code path.
Everything is batched over mixtures and runs on CPU or CUDA.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.models.checkpoint import load_safely, save_atomic, versions

EPS = 1e-12         # keeps V / HW finite where the model is exactly zero
NMF_FORMAT = 1      # the model file's layout: {"format", "kind": "nmf", "dictionary" (K*R, F), "rank", ...}


def divergence(magnitudes: torch.Tensor, model: torch.Tensor) -> torch.Tensor:
    """Generalised KL divergence D(V | Λ) summed over (T, F) per mixture: (B, T, F) x 2 -> (B,)."""
    model = model.clamp_min(EPS)
    terms = torch.special.xlogy(magnitudes, magnitudes / model) - magnitudes + model
    return terms.sum(dim=(-2, -1))


def activation_mask(labels: torch.Tensor, rank: int) -> torch.Tensor:
    """(B, K) 0/1 labels -> (B, 1, K*R) mask of the activations each mixture may use."""
    return labels.repeat_interleave(rank, dim=1).unsqueeze(1)


def initial_activations(batch: int, frames: int, mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Uniform (0.5, 1.5) activations (B, T, K*R), zero where the mask is."""
    values = torch.rand(batch, frames, mask.shape[-1], generator=generator, device=generator.device)
    return (values + 0.5).to(mask.dtype) * mask


def _ratio(magnitudes: torch.Tensor, dictionary: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """V / HW (B, T, F), computed in place in the model's buffer (these tensors are the big ones)."""
    model = activations @ dictionary
    return torch.div(magnitudes, model.clamp_(min=EPS), out=model)


def update_activations(magnitudes: torch.Tensor, dictionary: torch.Tensor, activations: torch.Tensor,
                       sparsity: float = 0.0) -> torch.Tensor:
    """One multiplicative update of H (B, T, A) for V (B, T, F) with W fixed: one dictionary (A, F) shared by the
    batch, or one per mixture (B, A, F) (the atoms of its own classes only)."""
    gradient = _ratio(magnitudes, dictionary, activations) @ dictionary.transpose(-1, -2)
    return activations * gradient.div_(dictionary.sum(dim=-1).unsqueeze(-2) + sparsity)


def update_dictionary(magnitudes: torch.Tensor, dictionary: torch.Tensor, activations: torch.Tensor
                      ) -> torch.Tensor:
    """One multiplicative update of W (K*R, F) over a batch V (B, T, F), H (B, T, K*R); rows then L1-normalised
    (the scale moves into H, see `normalise`)."""
    ratio = _ratio(magnitudes, dictionary, activations)
    numerator = torch.einsum("btr,btf->rf", activations, ratio)
    denominator = activations.sum(dim=(0, 1)).unsqueeze(1)
    return dictionary * numerator / denominator.clamp_min(EPS)


def normalise(dictionary: torch.Tensor, activations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-sum atoms, the scale moved into the activations: HW unchanged."""
    scale = dictionary.sum(dim=1).clamp_min(EPS)
    return dictionary / scale.unsqueeze(1), activations * scale


def fit_activations(magnitudes: torch.Tensor, dictionary: torch.Tensor, mask: torch.Tensor, iterations: int,
                    generator: torch.Generator, sparsity: float = 0.0) -> torch.Tensor:
    """Activations (B, T, K*R) of V (B, T, F) on a fixed dictionary, restricted to `mask` (B, 1, K*R)."""
    activations = initial_activations(magnitudes.shape[0], magnitudes.shape[1], mask, generator)
    for _ in range(iterations):
        activations = update_activations(magnitudes, dictionary, activations, sparsity)
    return activations


def class_magnitudes(dictionary: torch.Tensor, activations: torch.Tensor, classes: int) -> torch.Tensor:
    """Each class's part of the model: (B, T, K*R) activations on a (K*R, F) or per-mixture (B, K*R, F)
    dictionary -> (B, K, T, F) magnitudes."""
    batch, frames, atoms = activations.shape
    rank = atoms // classes
    per_class = activations.reshape(batch, frames, classes, rank).permute(0, 2, 1, 3)  # (B, K, T, R)
    atoms_of_class = dictionary.reshape(-1, classes, rank, dictionary.shape[-1])  # (1 or B, K, R, F)
    return per_class @ atoms_of_class


@dataclass(frozen=True)
class NmfModel:
    """Trained dictionaries: W (K*R, F), R atoms for each of `classes`, and what made them."""

    dictionary: torch.Tensor
    classes: list[str]
    rank: int
    info: dict[str, Any]

    def to(self, device: torch.device | str) -> "NmfModel":
        return NmfModel(self.dictionary.to(device), self.classes, self.rank, self.info)

    def separate(self, magnitudes: torch.Tensor, candidates: torch.Tensor, iterations: int,
                 generator: torch.Generator, sparsity: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Class magnitudes (B, K, T, F) and labels (B, K) of mixtures V (B, T, F).

        candidates: (B, C, K) class sets each mixture may hold (the oracle labels: C = 1); every candidate is
        fitted in the same batched call and the one with the lowest divergence wins (as exhaustive VAD chooses;
        like it, it favours larger sets when candidates of several sizes compete).
        """
        batch, count, classes = candidates.shape
        sets = candidates.reshape(batch * count, classes) > 0.5
        tiled = magnitudes.repeat_interleave(count, dim=0)  # (B*C, T, F)
        sizes = sets.sum(dim=1)
        if bool((sizes == sizes[0]).all()) and int(sizes[0]) < classes:
            # every candidate holds m < K classes: fit on each one's own m*R atoms, K/m times less work than
            # masking the others out (the same convex problem in H; only the random start differs)
            present = sets.nonzero()[:, 1].reshape(batch * count, -1)  # (B*C, m) class indices, ascending
            atoms = (present.unsqueeze(-1) * self.rank + torch.arange(self.rank, device=present.device)).flatten(1)
            dictionary = self.dictionary[atoms]  # (B*C, m*R, F)
            mask = torch.ones(batch * count, 1, atoms.shape[1], dtype=magnitudes.dtype, device=magnitudes.device)
        else:
            present, dictionary = None, self.dictionary
            mask = activation_mask(sets.to(magnitudes.dtype), self.rank)
        activations = fit_activations(tiled, dictionary, mask, iterations, generator, sparsity)
        scores = divergence(tiled, activations @ dictionary).reshape(batch, count)
        best = torch.arange(batch, device=scores.device) * count + scores.argmin(dim=1)  # rows of the winners
        labels = sets[best].to(candidates.dtype)
        if present is None:
            return class_magnitudes(self.dictionary, activations[best], classes), labels
        own = class_magnitudes(dictionary[best], activations[best], present.shape[1])  # (B, m, T, F)
        out = own.new_zeros(batch, classes, *own.shape[2:])
        out.scatter_(1, present[best][:, :, None, None].expand_as(own), own)
        return out, labels


def save_nmf(path: str | Path, dictionary: torch.Tensor, classes: list[str], rank: int, info: dict[str, Any]) -> None:
    """Write an NMF model file (atomically): the dictionary on CPU, its classes and rank, and `info`."""
    save_atomic(path, {"format": NMF_FORMAT, "kind": "nmf", "dictionary": dictionary.detach().cpu(),
                       "classes": list(classes), "rank": int(rank), "versions": versions(), **info})


def load_nmf(path: str | Path, device: torch.device | str = "cpu") -> NmfModel:
    """An NMF model file -> NmfModel on `device`; ValueError naming the file for anything else."""
    payload = load_safely(path, "cpu")
    if payload.get("kind") != "nmf" or payload.get("format") != NMF_FORMAT:
        raise ValueError(f"{path} is not an NMF model file (kind {payload.get('kind')!r}, format "
                         f"{payload.get('format')!r}; expected kind 'nmf', format {NMF_FORMAT})")
    dictionary, classes, rank = payload["dictionary"], list(payload["classes"]), int(payload["rank"])
    if dictionary.ndim != 2 or dictionary.shape[0] != rank * len(classes):
        raise ValueError(f"{path}: dictionary of shape {tuple(dictionary.shape)} does not hold {rank} atoms for each "
                         f"of {len(classes)} classes")
    if not bool(torch.isfinite(dictionary).all()) or bool((dictionary < 0).any()):
        raise ValueError(f"{path}: the dictionary holds negative or non-finite values; retrain the variant")
    info = {k: v for k, v in payload.items() if k not in ("dictionary", "classes", "rank")}
    return NmfModel(dictionary.to(device), classes, rank, info)
