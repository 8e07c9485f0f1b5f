"""DPCL, SCE, DANet and DPCL++ (seed 003) as separators (kind `dpcl`).

Rows per dataset of params.yaml `dpcl.datasets`: `<system>.forward.oracle` for each trained system. These
systems know no classes: they are given how many sources the mixture holds (the oracle labels' count, as the seed
is told the number of speakers) and return one estimate per cluster in no particular order, so their metadata
says `permutation`: scoring searches the assignment of estimates to references (mir_eval's rule: the highest
mean SIR). DPCL and SCE: hard k-means on the embeddings of the non-silent bins (`dpcl.kmeans`: steps, seeded
restarts; the silent bins join their nearest cluster), binary masks, ISTFT with the mixture phase. DANet: the same
k-means, its centroids as the attractors, soft masks (softmax of embedding · attractor). DPCL++: its enhancement
network's soft masks, ISTFT with the mixture phase.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.config import KmeansConfig, Params, StftConfig
from pipeline.features.stft import istft, stft
from pipeline.models import kmeans
from pipeline.models.dpcl import (EmbeddingSeparator, cluster_slots, load_dpcl, model_file, silence_weights,
                                  variant_name)
from pipeline.separators.base import BuildContext, Kind, Metadata, Mixtures, Separation, System

KIND = "dpcl"


@dataclass(frozen=True)
class ClusteringSeparator:
    """Embeddings -> k-means (or DPCL++'s soft masks) -> masked mixture spectra -> waveforms."""

    model: EmbeddingSeparator
    stft: StftConfig
    kmeans: KmeansConfig
    silence_db: float
    beta: float
    soft_steps: int
    metadata: Metadata
    max_mixtures: int

    @torch.no_grad()
    def masks(self, magnitudes: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks (B, C, T, F) of the C clusters and the slots (B, C) of the present classes they go to."""
        order, active = cluster_slots(labels)
        embeddings = self.model.embed(magnitudes)
        weights = silence_weights(magnitudes, self.silence_db)
        if self.model.shape.system == "dpcl++":
            masks = self.model.enhanced_masks(magnitudes, embeddings, weights, active, self.beta, self.soft_steps,
                                              self.kmeans.steps, generator)
        else:
            batch, frames, bins = magnitudes.shape
            assignment, centroids = kmeans.kmeans(embeddings.reshape(batch, frames * bins, -1),
                                                  weights.reshape(batch, -1), active, self.kmeans.steps,
                                                  self.kmeans.restarts, generator)
            if self.model.shape.system == "danet":           # the centroids are the attractors: soft masks
                return self.model.attractor_masks(embeddings, centroids, active), order
            masks = torch.nn.functional.one_hot(assignment, active.shape[1]).to(magnitudes.dtype)
            masks = masks.transpose(1, 2).reshape(batch, -1, frames, bins)
        return masks, order

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        masks, order = self.masks(mixtures.magnitudes, mixtures.labels, generator)
        spectrum = stft(mixtures.waveforms, self.stft).unsqueeze(1)                    # (B, 1, T, F)
        waves = istft(masks * spectrum, mixtures.waveforms.shape[-1], self.stft)      # (B, C, L)
        out = waves.new_zeros(mixtures.labels.shape + waves.shape[-1:])
        out.scatter_(1, order.unsqueeze(-1).expand_as(waves), waves)   # cluster c -> the c-th present class slot
        return Separation(out * mixtures.labels.unsqueeze(-1), mixtures.labels)


def rows(dataset: str, params: Params, variant: str | None) -> list[System]:
    """The rows of `dataset` (in its own group: these models come from `dpcl`, not `variants`)."""
    if variant is not None or dataset not in params.dpcl.datasets:
        return []
    return [System(system, "forward", "oracle", variant=variant_name(dataset, system), kind=KIND)
            for system in params.dpcl.systems]


def build(system: System, context: BuildContext) -> ClusteringSeparator:
    path = model_file(context.models_dir, system.training)

    def read() -> EmbeddingSeparator:
        model, info = load_dpcl(path, context.device)
        context.check_trained_like_the_test(path, info, f"train_dpcl@{context.dataset}")
        return model
    config = context.params.dpcl
    return ClusteringSeparator(context.cached(f"dpcl:{system.training}", read), context.params.stft, config.kmeans,
                               config.silence_db, config.plus.beta, config.plus.soft_steps,
                               Metadata(supervision="source", classes="oracle", permutation=True),
                               context.params.evaluate.schedule.forward_mixtures)


DPCL = Kind(KIND, rows, build)
