"""Typed, validated view of `params.yaml`.

Every section parses into a frozen dataclass. Unknown keys, missing keys and bad values fail at load time with
the dotted key that is wrong, so a typo in `params.yaml` never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

PROFILES = ("demo", "paper")
SPLITS = ("train", "valid", "test")


class ConfigError(ValueError):
    """A parameter is missing, unknown or has a bad value; the message names its dotted key."""


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: got {value!r}, expected {expected}")


# --------------------------------------------------------------------------------------------------------------
# Sections


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int
    clip_seconds: float
    target_rms: float
    silence_threshold_db: float
    min_tail_fraction: float

    def __post_init__(self) -> None:
        _check(self.sample_rate > 0, "sample_rate", self.sample_rate, "a positive integer")
        _check(self.clip_seconds > 0, "clip_seconds", self.clip_seconds, "> 0")
        _check(self.target_rms > 0, "target_rms", self.target_rms, "> 0")
        _check(0 < self.min_tail_fraction <= 1, "min_tail_fraction", self.min_tail_fraction, "in (0, 1]")

    @property
    def clip_samples(self) -> int:
        """Samples per clip (8,600 for 1 s at 8,600 Hz)."""
        return int(round(self.sample_rate * self.clip_seconds))


@dataclass(frozen=True)
class StftConfig:
    """The STFT shared by every stage (see `pipeline.features.stft`)."""

    n_fft: int = 400
    hop_length: int = 200

    def __post_init__(self) -> None:
        _check(self.n_fft >= 2, "n_fft", self.n_fft, "an integer >= 2")
        _check(0 < self.hop_length <= self.n_fft, "hop_length", self.hop_length, "in (0, n_fft]")

    @property
    def bins(self) -> int:
        """F: frequency bins of a one-sided spectrum."""
        return self.n_fft // 2 + 1

    def frames(self, num_samples: int) -> int:
        """T: frames of a centred STFT of `num_samples` samples."""
        return 1 + num_samples // self.hop_length


@dataclass(frozen=True)
class ShardConfig:
    rows_per_group: int
    groups_per_shard: int
    compression: str

    def __post_init__(self) -> None:
        _check(self.rows_per_group > 0, "rows_per_group", self.rows_per_group, "a positive integer")
        _check(self.groups_per_shard > 0, "groups_per_shard", self.groups_per_shard, "a positive integer")
        allowed = ("none", "snappy", "gzip", "zstd", "lz4", "brotli")
        _check(self.compression in allowed, "compression", self.compression, f"one of {allowed}")


@dataclass(frozen=True)
class SplitFractions:
    train: float
    valid: float
    test: float

    def __post_init__(self) -> None:
        total = self.train + self.valid + self.test
        _check(min(self.train, self.valid, self.test) >= 0 and math.isclose(total, 1.0, abs_tol=1e-6),
               "split_fractions", dataclasses.asdict(self), "non-negative fractions summing to 1")


@dataclass(frozen=True)
class DownloadSpec:
    url: str
    sha256: str | None = None


@dataclass(frozen=True)
class Sc09Demo:
    speakers: int
    takes: int
    valid_fraction: float
    test_fraction: float
    seed: int


@dataclass(frozen=True)
class Sc09Config:
    digits: tuple[str, ...]
    demo: Sc09Demo
    paper: DownloadSpec


@dataclass(frozen=True)
class GridDemo:
    utterances: int
    seed: int


@dataclass(frozen=True)
class GridPaper:
    url_template: str
    sha256: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GridConfig:
    speakers: dict[str, str]
    split_fractions: SplitFractions
    demo: GridDemo
    paper: GridPaper

    def __post_init__(self) -> None:
        for speaker, gender in self.speakers.items():
            _check(gender in ("male", "female"), f"speakers.{speaker}", gender, "'male' or 'female'")


@dataclass(frozen=True)
class MovieSfxDemo:
    kinds: tuple[str, ...]
    per_kind: int
    seconds: float
    sample_rate: int
    seed: int


@dataclass(frozen=True)
class MovieSfxPaper:
    manifest: str


@dataclass(frozen=True)
class MovieSfxConfig:
    split_fractions: SplitFractions
    demo: MovieSfxDemo
    paper: MovieSfxPaper


@dataclass(frozen=True)
class CorporaConfig:
    sc09: Sc09Config
    grid: GridConfig
    movie_sfx: MovieSfxConfig


@dataclass(frozen=True)
class FolderConfig:
    """A user's folder of audio: labels from sub-folder names (`subfolders`) or from a CSV file's path."""

    path: str
    labels: str = "subfolders"
    split_fractions: SplitFractions = SplitFractions(0.8, 0.1, 0.1)


@dataclass(frozen=True)
class ClassSource:
    """Where one class of a dataset draws clips: a corpus, optionally only some labels, speakers or genders."""

    corpus: str
    labels: tuple[str, ...] | None = None
    speakers: tuple[str, ...] | None = None
    genders: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SplitSizes:
    train: int
    valid: int
    test: int

    def __post_init__(self) -> None:
        for split in SPLITS:
            _check(getattr(self, split) >= 0, split, getattr(self, split), "a non-negative integer")

    def of(self, split: str) -> int:
        return int(getattr(self, split))


@dataclass(frozen=True)
class DatasetConfig:
    classes: dict[str, tuple[ClassSource, ...]]
    mixture_sizes: dict[int, float]
    source_gain_db: tuple[float, float]
    max_peak: float
    allow_reuse: bool
    seed: int
    sizes: SplitSizes  # already resolved for the active profile

    def __post_init__(self) -> None:
        _check(len(self.classes) >= 2, "classes", list(self.classes), "at least two classes")
        for name, sources in self.classes.items():
            _check(len(sources) > 0, f"classes.{name}", sources, "at least one corpus")
        for size, share in self.mixture_sizes.items():
            _check(2 <= size <= len(self.classes), f"mixture_sizes.{size}", size,
                   f"a mixture size between 2 and the number of classes ({len(self.classes)})")
            _check(share > 0, f"mixture_sizes.{size}", share, "a positive share")
        low, high = self.source_gain_db
        _check(low <= high, "source_gain_db", self.source_gain_db, "[low, high] with low <= high")
        _check(0 < self.max_peak <= 1, "max_peak", self.max_peak, "in (0, 1]")

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.classes)


@dataclass(frozen=True)
class ModelConfig:
    filters: tuple[int, int, int]
    kernel: int
    stride: int
    hidden: int
    latent: int

    def __post_init__(self) -> None:
        _check(min(self.filters) > 0, "filters", self.filters, "three positive channel counts")
        for key in ("kernel", "stride", "hidden", "latent"):
            _check(getattr(self, key) > 0, key, getattr(self, key), "a positive integer")


@dataclass(frozen=True)
class Schedule:
    max_steps: int
    validate_every: int

    def __post_init__(self) -> None:
        _check(self.max_steps > 0, "max_steps", self.max_steps, "a positive integer")
        _check(self.validate_every > 0, "validate_every", self.validate_every, "a positive integer")


PRECISIONS = ("fp32", "bf16")  # training matmuls: float32, or bfloat16 autocast (mixed precision)


@dataclass(frozen=True)
class TrainConfig:
    beta: float
    learning_rate: float
    batch_size: int
    class_loss_weight: float
    patience: int
    seed: int
    device: str
    cache_mb: int
    shuffle_groups: int
    schedule: Schedule  # already resolved for the active profile
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _check(self.beta >= 0, "beta", self.beta, ">= 0")
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "> 0")
        _check(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        _check(self.patience > 0, "patience", self.patience, "a positive integer")
        _check(self.shuffle_groups > 0, "shuffle_groups", self.shuffle_groups, "a positive integer")
        _check(self.precision in PRECISIONS, "precision", self.precision, " or ".join(PRECISIONS))
        _check(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"), "device",
               self.device, "auto, cpu, cuda or cuda:N")


SUPERVISIONS = ("source", "class")
MODEL_KINDS = ("vae", "ae")
LOSSES = ("mag-kl", "mag-mse", "wave-mse", "wave-snr", "wave-sisnr")


@dataclass(frozen=True)
class VariantConfig:
    """One trained model: which dataset, supervision, model kind and loss (plus optional overrides)."""

    dataset: str
    supervision: str
    model: str
    loss: str = "mag-kl"
    beta: float | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        _check(self.supervision in SUPERVISIONS, "supervision", self.supervision, f"one of {SUPERVISIONS}")
        _check(self.model in MODEL_KINDS, "model", self.model, f"one of {MODEL_KINDS}")
        _check(self.loss in LOSSES, "loss", self.loss, f"one of {LOSSES}")
        _check(self.supervision == "source" or self.loss == "mag-kl", "loss", self.loss,
               "mag-kl with class supervision (the other losses need the isolated sources)")


@dataclass(frozen=True)
class InverseSettings:
    learning_rate: float
    restarts: int
    tolerance: float
    window: int

    def __post_init__(self) -> None:
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "> 0")
        _check(self.restarts > 0, "restarts", self.restarts, "a positive integer")
        _check(self.window > 0, "window", self.window, "a positive integer")


@dataclass(frozen=True)
class EvaluationSchedule:
    forward_mixtures: int
    inverse_mixtures: int
    inverse_iterations: int

    def __post_init__(self) -> None:
        for key in ("forward_mixtures", "inverse_mixtures", "inverse_iterations"):
            _check(getattr(self, key) > 0, key, getattr(self, key), "a positive integer")


@dataclass(frozen=True)
class DatasetEvaluation:
    speech: tuple[str, ...] = ()
    inverse: bool = True


@dataclass(frozen=True)
class EvaluateConfig:
    batch_size: int
    seed: int
    examples: int
    inverse: InverseSettings
    schedule: EvaluationSchedule  # already resolved for the active profile
    datasets: dict[str, DatasetEvaluation]

    def __post_init__(self) -> None:
        _check(self.batch_size > 0, "batch_size", self.batch_size, "a positive integer")
        _check(self.examples >= 0, "examples", self.examples, "a non-negative integer")

    def of(self, dataset: str) -> DatasetEvaluation:
        """Settings of `dataset` (defaults when it is not listed: no speech classes, inverse on)."""
        return self.datasets.get(dataset, DatasetEvaluation())


@dataclass(frozen=True)
class Params:
    profile: str
    audio: AudioConfig
    stft: StftConfig
    shards: ShardConfig
    corpora: CorporaConfig
    folders: dict[str, FolderConfig]
    datasets: dict[str, DatasetConfig]
    model: ModelConfig
    train: TrainConfig
    variants: dict[str, VariantConfig]
    evaluate: EvaluateConfig

    def __post_init__(self) -> None:
        _check(self.profile in PROFILES, "profile", self.profile, f"one of {PROFILES}")
        clash = set(self.folders) & {f.name for f in dataclasses.fields(CorporaConfig)}
        _check(not clash, "folders", sorted(clash), "names different from the built-in corpora")
        known = self.corpus_names
        for dataset, config in self.datasets.items():
            for class_name, sources in config.classes.items():
                for source in sources:
                    _check(source.corpus in known, f"datasets.{dataset}.classes.{class_name}.corpus",
                           source.corpus, f"one of the corpora {sorted(known)}")
        for name, variant in self.variants.items():
            _check(variant.dataset in self.datasets, f"variants.{name}.dataset", variant.dataset,
                   f"one of the datasets {sorted(self.datasets)}")
        for name, settings in self.evaluate.datasets.items():
            _check(name in self.datasets, f"evaluate.datasets.{name}", name,
                   f"one of the datasets {sorted(self.datasets)}")
            unknown = sorted(set(settings.speech) - set(self.datasets[name].class_names))
            _check(not unknown, f"evaluate.datasets.{name}.speech", unknown,
                   f"classes of {name}: {list(self.datasets[name].class_names)}")

    @property
    def corpus_names(self) -> tuple[str, ...]:
        builtin = tuple(f.name for f in dataclasses.fields(CorporaConfig))
        return builtin + tuple(self.folders)


# --------------------------------------------------------------------------------------------------------------
# Loading


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate `params.yaml`; profile-dependent dataset sizes are resolved for the active profile."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameter file {path} not found (run from the repository root or pass its path)")
    raw = yaml.safe_load(path.read_text()) or {}
    return parse_params(raw)


def parse_params(raw: Mapping[str, Any]) -> Params:
    """Validate a params mapping (as read from YAML) into `Params`."""
    raw = dict(raw)
    # `orchestration` says how stages run (task runner, Dask, schedule), never what they produce: it is read by
    # pipeline.orchestration.settings and is no stage's parameter.
    raw.pop("orchestration", None)
    profile = raw.get("profile")
    if profile not in PROFILES:
        raise ConfigError(f"profile: got {profile!r}, expected one of {PROFILES}")
    datasets = raw.get("datasets")
    if isinstance(datasets, Mapping):
        raw["datasets"] = {name: _resolve_profile(spec, "sizes", profile, f"datasets.{name}")
                           for name, spec in datasets.items()}
    raw["train"] = _resolve_profile(raw.get("train"), "schedule", profile, "train")
    raw["evaluate"] = _resolve_profile(raw.get("evaluate"), "schedule", profile, "evaluate")
    return _build(Params, raw, "")


def _resolve_profile(spec: Any, key: str, profile: str, where: str) -> Any:
    """Replace `spec[key]`, a mapping profile -> value, by the active profile's value."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get(key), Mapping):
        return spec  # _build reports the missing/odd key
    if profile not in spec[key]:
        raise ConfigError(f"{where}.{key}: no entry for profile {profile!r} (have {sorted(spec[key])})")
    return {**spec, key: spec[key][profile]}


def _build(tp: Any, value: Any, where: str) -> Any:
    """Convert YAML data to the annotated type `tp`, raising ConfigError with the dotted key on mismatch."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where or 'params'}: got {value!r}, expected a mapping")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ConfigError(f"{_join(where, unknown[0])}: unknown key (known: {sorted(fields)})")
        kwargs = {}
        for name, f in fields.items():
            key = _join(where, name)
            if name in value:
                kwargs[name] = _build(hints[name], value[name], key)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: missing")
        try:
            return tp(**kwargs)
        except ConfigError as err:
            raise ConfigError(f"{where}.{err}" if where else str(err)) from None
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _build(inner[0], value, where)
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: got {value!r}, expected a mapping")
        return {_build(key_type, k, where): _build(value_type, v, _join(where, str(k))) for k, v in value.items()}
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: got {value!r}, expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: got {list(value)!r}, expected a list of {len(args)} values")
        return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    return _scalar(tp, value, where)


def _scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: got {value!r}, expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.lstrip("-").isdigit():
                return int(value)  # YAML mapping keys such as mixture sizes may arrive as strings
            raise ConfigError(f"{where}: got {value!r}, expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: got {value!r}, expected a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: got {value!r}, expected a string")
        return value
    raise TypeError(f"unsupported parameter type {tp!r} at {where}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
