"""Separation with generative priors (seed 004) as a separator kind (`gp-vae`): the class decoders of a trained VAE
are the generators; projected gradient descent on their latents from zero (`pipeline.inference.priors`).

One row per dataset of `priors.variants`: `<d>.gp-vae.pgd.all`, on the first `priors.schedule.mixtures` test
mixtures. Unsupervised at test time: no class labels, every class generator of the dataset takes part (`all`),
output k is class k (no permutation search). Magnitudes become waveforms through the Wiener mask (eq. 9), as
for every other magnitude model. It uses the same decoders as the VAD rows of the variant, so the table sets the
seed's objective and PGD beside the generalised-KL objective of the VAD (README "Separation with generative
priors").
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from pipeline.config import VAE_MODELS, Params, StftConfig
from pipeline.features.wiener import wiener_separate
from pipeline.inference.prior_losses import Weights
from pipeline.inference.priors import PriorConfig, separate_with_priors
from pipeline.models.vae import NonNegativeVAE
from pipeline.separators.base import BuildContext, Kind, Metadata, Mixtures, Separation, System
from pipeline.separators.vae import load_vae

log = logging.getLogger(__name__)

KIND = "gp-vae"
TRAINING, SIGNAL, CLASSES = "gp-vae", "pgd", "all"


@dataclass(frozen=True)
class PriorSeparator:
    """Every class generator fitted to the mixture by PGD -> Wiener mask; labels: every class (all take part)."""

    model: NonNegativeVAE
    stft: StftConfig
    config: PriorConfig
    metadata: Metadata
    max_mixtures: int
    note: str = ""

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        result = separate_with_priors(self.model, mixtures.magnitudes, self.config)
        labels = torch.ones_like(mixtures.labels)
        return Separation(wiener_separate(result.sources, mixtures.waveforms, self.stft), labels)


def prior_config(params: Params) -> PriorConfig:
    """The PGD settings of params `priors` for the active profile."""
    priors = params.priors
    weights = Weights(priors.weights.ms, priors.weights.sd, priors.weights.mc, priors.weights.fc)
    return PriorConfig(weights=weights, poolings=priors.poolings, steps=priors.schedule.steps,
                       learning_rate=priors.learning_rate, projection=priors.projection, radius=priors.radius)


def rows(dataset: str, params: Params, variant: str | None) -> list[System]:
    """The dataset's generative-prior row: none (logged) when `priors.variants.<dataset>` names no variant of
    `variants` (a narrowed set of variants); ValueError naming the key when it names one that is not a VAE trained
    on the dataset."""
    if variant is not None or dataset not in params.priors.variants:
        return []
    generators = params.priors.variants[dataset]
    config = params.variants.get(generators)
    if config is None:
        log.warning("priors.variants.%s = %r is not among the variants: no generative-prior row for %s", dataset,
                    generators, dataset)
        return []
    if config.model not in VAE_MODELS or config.dataset != dataset:
        known = sorted(n for n, v in params.variants.items() if v.dataset == dataset and v.model in VAE_MODELS)
        raise ValueError(f"priors.variants.{dataset} = {generators!r}: expected a VAE variant trained on {dataset} "
                         f"(its class decoders are the generators); VAE variants of {dataset}: {known}")
    return [System(TRAINING, SIGNAL, CLASSES, variant=generators, kind=KIND)]


def build(system: System, context: BuildContext) -> PriorSeparator:
    params = context.params
    config = prior_config(params)
    note = (f"generators: the class decoders of {system.variant}; latents from 0, {config.steps} Adam steps "
            f"(lr {config.learning_rate}) each projected onto the {config.projection} of radius {config.radius}; "
            f"no class labels: every class generator takes part")
    metadata = Metadata(supervision=params.variants[system.variant].supervision, classes="estimated")
    return PriorSeparator(load_vae(context, system.variant), params.stft, config, metadata,
                          params.priors.schedule.mixtures, note)


PRIORS = Kind(KIND, rows, build)
