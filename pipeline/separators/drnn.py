"""The DRNN baseline (seed 002) as a separator (kind `drnn`): the network's masked outputs -> Wiener mask.

Rows per dataset, from params.yaml `drnn` (its configurations are trained by `train_drnn@<dataset>`, not by
`variants`): `<name>.forward.oracle` for every configuration trained on the dataset (the main `drnn` and, on the
ablation datasets, each ablation), and `drnn.forward.classify` for the main one. Source supervision; output k is
class k (no permutation search). With oracle classes only the true classes' outputs enter the mask; with
estimated ones, every class set of the dataset's mixture sizes is scored by D_GKL(x ‖ Σ_{k∈S} ŷ_k) and the lowest
wins (as NMF and exhaustive VAD choose; like them it favours larger sets when sizes compete). The outputs become
waveforms through the same Wiener mask (eq. 9) as every other magnitude model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.config import DRNN_MAIN, Params, StftConfig
from pipeline.features.wiener import wiener_separate
from pipeline.inference.inverse import all_combinations
from pipeline.models.drnn import DeepRecurrentSeparator, load_drnn, model_file, variant_name
from pipeline.models.losses import generalized_kl
from pipeline.separators.base import BuildContext, Kind, Metadata, Mixtures, Separation, System

KIND = "drnn"


@dataclass(frozen=True)
class DrnnSeparator:
    """Masked network outputs of the oracle (or the best candidate) class set -> Wiener mask."""

    model: DeepRecurrentSeparator
    stft: StftConfig
    candidates: torch.Tensor | None   # (C, K) class sets for estimated classes; None: the oracle labels
    metadata: Metadata
    max_mixtures: int

    @torch.no_grad()
    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        estimates = self.model(mixtures.magnitudes)                                   # (B, K, T, F)
        labels = mixtures.labels if self.candidates is None else \
            best_candidates(estimates, mixtures.magnitudes, self.candidates.to(estimates.device))
        present = estimates * labels[:, :, None, None].to(estimates.dtype)
        return Separation(wiener_separate(present, mixtures.waveforms, self.stft), labels)


def best_candidates(estimates: torch.Tensor, magnitudes: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """The class set of `candidates` (C, K) whose outputs' sum is closest to the mixture, per mixture:
    estimates (B, K, T, F), magnitudes (B, T, F) -> labels (B, K) (D_GKL(x ‖ Σ_{k∈S} ŷ_k), lowest wins)."""
    sums = torch.einsum("ck,bktf->bctf", candidates.to(estimates.dtype), estimates)      # (B, C, T, F)
    batch, count = sums.shape[:2]
    tiled = magnitudes.unsqueeze(1).expand_as(sums).reshape(batch * count, *magnitudes.shape[1:])
    scores = generalized_kl(tiled, sums.reshape_as(tiled)).view(batch, count)
    return candidates[scores.argmin(dim=1)].to(magnitudes.dtype)


def rows(dataset: str, params: Params, variant: str | None) -> list[System]:
    """The DRNN's rows of `dataset` (in the dataset's own group: its models come from `drnn`, not `variants`)."""
    if variant is not None:
        return []
    found = []
    for name in params.drnn.configurations(dataset):
        classes = ("oracle", "classify") if name == DRNN_MAIN else ("oracle",)
        found += [System(name, "forward", c, variant=variant_name(dataset, name), kind=KIND) for c in classes]
    return found


def load(context: BuildContext, name: str) -> DeepRecurrentSeparator:
    """Configuration `name`'s network on the context's device (loaded once for its consecutive rows), checked
    against the test split's classes and the STFT it will be given."""
    path = model_file(context.models_dir, name)

    def read() -> DeepRecurrentSeparator:
        model, info = load_drnn(path, context.device)
        context.check_trained_like_the_test(path, info, f"train_drnn@{context.dataset}")
        return model
    return context.cached(f"drnn:{name}", read)


def build(system: System, context: BuildContext) -> DrnnSeparator:
    params = context.params
    candidates = None
    if system.classes != "oracle":
        candidates = all_combinations(len(context.classes), params.datasets[context.dataset].separation_sizes)
    metadata = Metadata(supervision="source", classes="oracle" if candidates is None else "estimated")
    return DrnnSeparator(load(context, system.training), params.stft, candidates, metadata,
                         params.evaluate.schedule.forward_mixtures)


DRNN = Kind(KIND, rows, build)
