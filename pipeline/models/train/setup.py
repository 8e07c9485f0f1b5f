"""What a run of one variant is made of: its setup, resolved from the parameters, and its initial model."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch

from pipeline.config import Params
from pipeline.models.checkpoint import MODEL_FORMAT
from pipeline.models.objective import LossTerms, Objective
from pipeline.models.vae import ModelShape


class NetworkShape(Protocol):
    """A network's sizes as the training loop needs them: a frozen dataclass that builds the network."""

    def build(self) -> torch.nn.Module: ...


class TrainingObjective(Protocol):
    """What the training loop asks of an objective (`Objective` is the VAE's; `DrnnObjective` the DRNN's)."""

    @property
    def needs_sources(self) -> bool: ...

    def terms(self, model: Any, batch: Any, generator: torch.Generator | None = None) -> LossTerms: ...


@dataclass(frozen=True)
class TrainingSetup:
    """What a run of one variant is made of, resolved from the parameters."""

    name: str
    dataset: str
    shape: ModelShape | NetworkShape      # the VAE's, or another network's (the DRNN baseline's)
    objective: Objective | TrainingObjective
    batch_size: int
    learning_rate: float
    patience: int
    max_steps: int
    validate_every: int
    seed: int
    shuffle_groups: int
    solo_share: float = 0.0               # share of solo segments among the rows trained on

    def fingerprint(self, data_checksums: list[str], world_size: int = 1) -> str:
        """sha256 of everything that determines the trained weights (the process count when more than one)."""
        content: dict[str, Any] = {"setup": asdict(self), "data": data_checksums, "model_format": MODEL_FORMAT}
        if world_size > 1:
            content["world_size"] = world_size
        payload = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


def resolve_setup(name: str, params: Params, classes: list[str], clip_samples: int) -> TrainingSetup:
    """Combine the variant, model, train and stft parameters for variant `name`."""
    if name not in params.variants:
        raise ValueError(f"unknown variant {name!r}; params.yaml defines {sorted(params.variants)}")
    variant, train, model = params.variants[name], params.train, params.model
    expected = list(params.classes_of(variant.dataset))
    if classes != expected:
        raise ValueError(f"dataset {variant.dataset} on disk has classes {classes}, but params.yaml defines "
                         f"{expected}; re-run its mix stage (dvc repro mix@{variant.dataset})")
    shape = ModelShape(num_classes=len(classes), bins=params.stft.bins, frames=params.stft.frames(clip_samples),
                       filters=model.filters, kernel=model.kernel, stride=model.stride, hidden=model.hidden,
                       latent=model.latent, variational=variant.model == "vae")
    objective = Objective(supervision=variant.supervision, loss=variant.loss,
                          beta=variant.beta if variant.beta is not None else train.beta,
                          class_weight=train.class_loss_weight, stft=params.stft, precision=train.precision)
    return TrainingSetup(name=name, dataset=variant.dataset, shape=shape, objective=objective,
                         batch_size=train.batch_size, learning_rate=train.learning_rate,
                         patience=variant.patience or train.patience, max_steps=train.schedule.max_steps,
                         validate_every=train.schedule.validate_every, seed=train.seed,
                         shuffle_groups=train.shuffle_groups, solo_share=variant.solo_share)


def build_model(shape: NetworkShape, seed: int) -> torch.nn.Module:
    """A freshly initialised model of `shape` (the VAE's, or another network's such as the DRNN baseline's); the
    initialisation depends only on `seed` (global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return shape.build()
