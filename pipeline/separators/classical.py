"""Seed 004's classical baselines as a separator kind (`classical`): blind NMF, FastICA, PCA and kernel PCA on the
mixture spectrogram alone (`pipeline.inference.classical`), components grouped into the mixture's number of
sources.

Rows per dataset of `priors.classical.datasets`: `<d>.<method>.blind.perm` (`nmf-blind`, `fastica`, `pca`,
`kpca`), on the first `priors.schedule.mixtures` test mixtures. No training and no class labels; like the seed's
methods they are told the number of sources (the number of classes present). Their outputs come in no class
order, so scoring searches the permutation (best mean SIR, mir_eval's rule). Magnitudes become waveforms
through the Wiener mask (eq. 9).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.config import Params, StftConfig
from pipeline.features.wiener import wiener_separate
from pipeline.inference.classical import separate_blind
from pipeline.models.dpcl import cluster_slots
from pipeline.separators.base import BuildContext, Kind, Metadata, Mixtures, Separation, System

KIND = "classical"
SIGNAL, CLASSES = "blind", "perm"
TRAINING = {"nmf": "nmf-blind", "fastica": "fastica", "pca": "pca", "kpca": "kpca"}
HOW = {
    "nmf": "NMF (generalised KL) of the mixture's magnitude spectrogram alone, {c} atoms",
    "fastica": "FastICA with the spectrogram's frames as observations and its bins as features, {c} components",
    "pca": "PCA with the spectrogram's frames as observations and its bins as features, {c} components",
    "kpca": "kernel PCA (RBF) with the spectrogram's frames as observations, {c} components, pre-images learned",
}


@dataclass(frozen=True)
class ClassicalSeparator:
    """Decompose, group into the mixture's number of sources (in the present classes' slots, no class meaning) ->
    Wiener mask."""

    method: str
    stft: StftConfig
    components: int
    seed: int
    iterations: int
    metadata: Metadata
    max_mixtures: int
    note: str = ""

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        counts = mixtures.labels.sum(dim=1).round().long()
        estimates = separate_blind(mixtures.magnitudes, counts, self.method, self.components, self.seed,
                                   self.iterations)
        # source c goes to the c-th present class's slot (as the clustering separators do); no class meaning
        order, active = cluster_slots(mixtures.labels)
        estimates = estimates[:, :order.shape[1]] * active[:, :, None, None]
        magnitudes = estimates.new_zeros(estimates.shape[0], mixtures.labels.shape[1], *estimates.shape[2:])
        magnitudes.scatter_(1, order[:, :, None, None].expand_as(estimates), estimates)
        return Separation(wiener_separate(magnitudes, mixtures.waveforms, self.stft), mixtures.labels)


def rows(dataset: str, params: Params, variant: str | None) -> list[System]:
    classical = params.priors.classical
    if variant is not None or dataset not in classical.datasets:
        return []
    return [System(TRAINING[method], SIGNAL, CLASSES, kind=KIND) for method in classical.methods]


def build(system: System, context: BuildContext) -> ClassicalSeparator:
    priors = context.params.priors
    method = {name: method for method, name in TRAINING.items()}[system.training]
    components = priors.classical.components
    iterations = priors.schedule.blind_iterations
    note = (HOW[method].format(c=components) + "; components grouped by k-means on their spectral profiles into "
            "the mixture's number of sources (given); outputs in no class order: permutation-invariant scoring")
    return ClassicalSeparator(method, context.params.stft, components, priors.seed, iterations,
                              Metadata(supervision="none", classes="estimated", permutation=True),
                              priors.schedule.mixtures, note)


CLASSICAL = Kind(KIND, rows, build)
