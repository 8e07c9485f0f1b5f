"""The NMF baseline as a separator (kind `nmf`): dictionaries fixed, a test mixture's activations fitted.

Rows per variant of model `nmf`: `forward` with the oracle classes (only their atoms may be active) and with
estimated ones (`classify`: every class set of the dataset's mixture sizes is fitted in one batched call and the
lowest divergence wins, as exhaustive VAD chooses). Magnitudes become waveforms through the Wiener mask (eq. 9),
as for every other magnitude model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.config import Params, StftConfig
from pipeline.features.wiener import wiener_separate
from pipeline.inference.inverse import all_combinations
from pipeline.models.nmf import NmfModel, load_nmf
from pipeline.separators.base import BuildContext, Kind, Metadata, Mixtures, Separation, System, short_name

KIND = "nmf"


@dataclass(frozen=True)
class NmfSeparator:
    """Activations of the oracle (or each candidate) class set fitted by multiplicative updates -> Wiener mask."""

    model: NmfModel
    stft: StftConfig
    candidates: torch.Tensor | None   # (C, K) class sets for estimated classes; None: the oracle labels
    iterations: int
    sparsity: float
    metadata: Metadata
    max_mixtures: int

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        batch = mixtures.magnitudes.shape[0]
        if self.candidates is None:
            candidates = mixtures.labels.unsqueeze(1)
        else:
            candidates = self.candidates.to(mixtures.magnitudes.device).expand(batch, -1, -1)
        magnitudes, labels = self.model.separate(mixtures.magnitudes, candidates, self.iterations, generator,
                                                 self.sparsity)
        return Separation(wiener_separate(magnitudes, mixtures.waveforms, self.stft), labels)


def rows(dataset: str, params: Params, variant: str | None) -> list[System]:
    if variant is None or params.variants[variant].model != "nmf":
        return []
    name = short_name(variant, dataset)
    return [System(name, "forward", classes, variant=variant, kind=KIND) for classes in ("oracle", "classify")]


def build(system: System, context: BuildContext) -> NmfSeparator:
    params = context.params
    model = context.cached(system.variant, lambda: load_nmf(context.model_file(system.variant), context.device))
    if model.classes != list(context.classes):
        raise ValueError(f"{context.model_file(system.variant)} was trained on classes {model.classes}; the test "
                         f"split has {context.classes}: retrain {system.variant}")
    candidates = None
    if system.classes != "oracle":
        sizes = params.datasets[context.dataset].separation_sizes
        candidates = all_combinations(len(context.classes), sizes)
    metadata = Metadata(supervision=params.variants[system.variant].supervision,
                        classes="oracle" if system.classes == "oracle" else "estimated")
    return NmfSeparator(model, params.stft, candidates, params.nmf.schedule.test_iterations, params.nmf.sparsity,
                        metadata, params.evaluate.schedule.forward_mixtures)


NMF = Kind(KIND, rows, build)
