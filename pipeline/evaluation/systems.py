"""The rows of an evaluation table: training × signal estimate × class estimate × inverse method.

They follow the legends of the paper's figures. Two reference rows come first: the oracle sources through the
same Wiener mask (an upper bound) and the unprocessed mixture as every estimate (a lower bound).
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Params

REFERENCE = "reference"


@dataclass(frozen=True)
class System:
    training: str        # "reference", or the variant without its dataset prefix (e.g. "class-vae")
    signal: str          # oracle | mixture | forward | inverse
    classes: str         # oracle | classify
    inverse: str = ""    # joint | exhaustive for inverse with estimated classes; "" otherwise
    variant: str = ""    # the trained variant (model file) behind the row

    @property
    def method(self) -> str:
        """Signal estimate and inverse method in one word: forward, inverse, inverse_joint, oracle, mixture."""
        return f"{self.signal}_{self.inverse}" if self.inverse else self.signal

    @property
    def key(self) -> str:
        """Stable metrics key: `<training>.<method>.<classes>` (prefixed by the dataset in metrics.json)."""
        return f"{self.training}.{self.method}.{self.classes}"

    @property
    def label(self) -> str:
        """Legend text, e.g. 'class-vae · inverse (joint) · classify'."""
        signal = f"{self.signal} ({self.inverse})" if self.inverse else self.signal
        return f"{self.training} · {signal} · {self.classes}"


def short_name(variant: str, dataset: str) -> str:
    """`d1-class-vae` -> `class-vae` (the dataset is already in the key)."""
    prefix = f"{dataset}-"
    return variant[len(prefix):] if variant.startswith(prefix) else variant


def systems_for(dataset: str, params: Params) -> list[System]:
    """Every row evaluated on `dataset`, references first, then each variant trained on it."""
    rows = [System(REFERENCE, "oracle", "oracle"), System(REFERENCE, "mixture", "oracle")]
    with_inverse = params.evaluate.of(dataset).inverse
    for variant, config in sorted(params.variants.items()):
        if config.dataset != dataset:
            continue
        name = short_name(variant, dataset)
        rows += [System(name, "forward", "oracle", variant=variant), System(name, "forward", "classify", variant=variant)]
        if with_inverse:
            rows += [System(name, "inverse", "oracle", variant=variant),
                     System(name, "inverse", "classify", "exhaustive", variant=variant),
                     System(name, "inverse", "classify", "joint", variant=variant)]
    return rows
