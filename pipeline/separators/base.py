"""The separator protocol: what every system of the evaluation grid and of `enhance` implements.

A *system* is one row of an evaluation table (`System`: training × method × class estimate, built by one
registered separator kind). Its *separator* takes a batch of test mixtures (`Mixtures`: waveforms (B, L) and
their STFT magnitudes (B, T, F), computed once per batch by the caller and shared by every system) and returns
one waveform estimate per class and the class labels it used (`Separation`: (B, K, L) and (B, K)). Systems that
estimate magnitudes turn them into waveforms with the Wiener mask (`pipeline.features.wiener`) themselves.

`WindowSeparator` is the streaming entry point `enhance` uses: context windows of magnitudes (W, T, F) in,
per-class magnitude estimates (W, K, T, F) out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from pipeline.config import Params
from pipeline.separators.signal import SignalSettings

SUPERVISIONS = ("source", "class", "none")
CLASS_ESTIMATES = ("oracle", "estimated")


@dataclass(frozen=True)
class System:
    """One row of the evaluation grid; `kind` names the registered separator kind that builds it."""

    training: str        # "reference", or the variant without its dataset prefix (e.g. "class-vae")
    signal: str          # the signal estimate, e.g. oracle | mixture | forward | inverse
    classes: str         # oracle | classify
    inverse: str = ""    # a sub-method, e.g. joint | exhaustive for inverse with estimated classes; "" otherwise
    variant: str = ""    # the trained variant (model file) behind the row; "" for rows without a model
    kind: str = ""       # the separator kind (pipeline.separators.registry)

    @property
    def method(self) -> str:
        """Signal estimate and sub-method in one word: forward, inverse, inverse_joint, oracle, mixture."""
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

    @classmethod
    def from_key(cls, key: str) -> "System":
        """The row named by a metrics key `<training>.<method>.<classes>` (without its kind and variant)."""
        parts = key.rsplit(".", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"system key {key!r}; expected '<training>.<method>.<classes>'")
        training, method, classes = parts
        signal, _, inverse = method.partition("_")
        return cls(training, signal, classes, inverse)


@dataclass(frozen=True)
class Metadata:
    """What a separator declares about itself.

    supervision: what its training saw (source | class | none); classes: whether it is given the true classes
    (oracle) or estimates them (estimated); permutation: True when its outputs come in no known class order, so
    scoring needs a permutation search (False: output k is class k).
    """

    supervision: str
    classes: str
    permutation: bool = False

    def __post_init__(self) -> None:
        if self.supervision not in SUPERVISIONS:
            raise ValueError(f"separator supervision {self.supervision!r}; expected one of {SUPERVISIONS}")
        if self.classes not in CLASS_ESTIMATES:
            raise ValueError(f"separator class estimate {self.classes!r}; expected one of {CLASS_ESTIMATES}")


@dataclass(frozen=True)
class Mixtures:
    """A batch of test mixtures as the evaluation loop hands it to every separator (all on one device).

    waveforms: (B, L) mixtures; magnitudes: (B, T, F) |STFT| of the waveforms (params.stft), shared;
    labels: (B, K) {0, 1} true classes, read only by separators whose class estimate is `oracle`, and for their
    count alone (the number of sources, which seed 004's blind baselines are given) by those that say so;
    sources: (B, K, L) true sources (zeros for absent classes), read only by reference separators.
    """

    waveforms: torch.Tensor
    magnitudes: torch.Tensor
    labels: torch.Tensor
    sources: torch.Tensor


@dataclass(frozen=True)
class Separation:
    """waveforms: (B, K, L) one estimate per class (class order of the dataset unless the separator's metadata
    says `permutation`); labels: (B, K) {0, 1} the classes it used."""

    waveforms: torch.Tensor
    labels: torch.Tensor


class Separator(Protocol):
    """One system, built and ready to separate batches of test mixtures."""

    metadata: Metadata
    max_mixtures: int    # how many test mixtures the evaluation runs it on (from params.evaluate.schedule)

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        """Separate a batch; every random draw comes from `generator` (seeded per system by the caller)."""
        ...


class WindowSeparator(Protocol):
    """Streaming entry point (`enhance`): context windows of mixture magnitudes -> per-class magnitudes.

    `settings`: the sample rate, STFT and window length (`context_frames`) its windows must have, from the model
    file."""

    classes: list[str]
    settings: SignalSettings

    def magnitudes(self, windows: torch.Tensor, frames: slice | None = None) -> torch.Tensor:
        """windows (W, T, F) -> non-negative estimates (W, K, T, F), each window's up to a common scale (the
        caller uses only their ratios: Wiener masks). With `frames` (a contiguous range of the T frames), only
        those frames are returned, (W, K, len(frames), F): streaming needs a few frames of each window, and a
        separator may save the work of the others."""
        ...


@dataclass(frozen=True)
class BuildContext:
    """What a separator kind gets to build the separator of one row on one dataset."""

    dataset: str
    params: Params
    models_dir: Path                 # data/models/<dataset>: one folder per variant, holding model.pt
    classes: list[str]               # the test split's classes, in order
    device: torch.device
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def model_file(self, variant: str) -> Path:
        return Path(self.models_dir) / variant / "model.pt"

    def check_trained_like_the_test(self, path: Path, info: dict[str, Any], stage: str) -> None:
        """A model file's recorded classes and STFT must be the test split's and params.yaml's; ValueError naming
        the file and the stage that retrains it otherwise."""
        if info["classes"] != list(self.classes):
            raise ValueError(f"{path} was trained on classes {info['classes']}; the {self.dataset} test split "
                             f"has {self.classes}: retrain it (dvc repro {stage})")
        stft = self.params.stft
        if info["stft"] != {"n_fft": stft.n_fft, "hop_length": stft.hop_length}:
            raise ValueError(f"{path} was trained on STFT {info['stft']}, params.yaml has n_fft {stft.n_fft}, "
                             f"hop {stft.hop_length}: retrain it (dvc repro {stage})")

    def cached(self, key: str, load: Callable[[], Any]) -> Any:
        """`load()`, kept while the rows asking for `key` follow each other (one model in memory at a time)."""
        if key not in self._cache:
            self._cache.clear()
            self._cache[key] = load()
        return self._cache[key]


RowsFn = Callable[[str, Params, "str | None"], "list[System]"]


@dataclass(frozen=True)
class Kind:
    """A registered separator kind.

    rows(dataset, params, variant): its rows of the evaluation grid, for the dataset itself (variant None:
    systems without a trained model, and systems trained per dataset from their own params section rather than
    from `variants`, as the DRNN baseline) or for one variant trained on it (empty when the variant is not its
    kind of model); build(system, context): the separator of one of its rows; window(model file, device): the
    streaming entry point of `enhance`, for kinds that have one.
    """

    name: str
    rows: RowsFn
    build: Callable[[System, BuildContext], Separator]
    window: Callable[[Path, "str | torch.device"], WindowSeparator] | None = None


def short_name(variant: str, dataset: str) -> str:
    """`d1-class-vae` -> `class-vae` (the dataset is already in the key)."""
    prefix = f"{dataset}-"
    return variant[len(prefix):] if variant.startswith(prefix) else variant
