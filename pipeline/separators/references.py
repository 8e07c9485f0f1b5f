"""The two reference rows that bracket every table: the oracle sources through the Wiener mask (an upper bound)
and the unprocessed mixture as every estimate (a lower bound). Neither needs a model."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.config import Params, StftConfig
from pipeline.features.stft import stft
from pipeline.features.wiener import wiener_separate
from pipeline.separators.base import BuildContext, Kind, Metadata, Mixtures, Separation, System

REFERENCE = "reference"
ORACLE_MASK_KIND, MIXTURE_KIND = "oracle-mask", "mixture"


@dataclass(frozen=True)
class OracleMask:
    """The true sources' magnitudes as the estimates, through the same Wiener mask as the models."""

    stft: StftConfig
    max_mixtures: int
    metadata: Metadata = Metadata(supervision="source", classes="oracle")

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        magnitudes = stft(mixtures.sources, self.stft).abs()
        return Separation(wiener_separate(magnitudes, mixtures.waveforms, self.stft), mixtures.labels)


@dataclass(frozen=True)
class UnprocessedMixture:
    """The mixture itself as the estimate of every source."""

    max_mixtures: int
    metadata: Metadata = Metadata(supervision="none", classes="oracle")

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        return Separation(mixtures.waveforms.unsqueeze(1).expand_as(mixtures.sources), mixtures.labels)


def _reference_row(signal: str, kind: str):
    def rows(dataset: str, params: Params, variant: str | None) -> list[System]:
        return [System(REFERENCE, signal, "oracle", kind=kind)] if variant is None else []
    return rows


def build_oracle_mask(system: System, context: BuildContext) -> OracleMask:
    return OracleMask(context.params.stft, context.params.evaluate.schedule.forward_mixtures)


def build_mixture(system: System, context: BuildContext) -> UnprocessedMixture:
    return UnprocessedMixture(context.params.evaluate.schedule.forward_mixtures)


ORACLE_MASK = Kind(ORACLE_MASK_KIND, _reference_row("oracle", ORACLE_MASK_KIND), build_oracle_mask)
MIXTURE = Kind(MIXTURE_KIND, _reference_row("mixture", MIXTURE_KIND), build_mixture)
