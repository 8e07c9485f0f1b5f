"""Typed, validated view of `params.yaml`.

Every section is a frozen pydantic dataclass (a real dataclass: `dataclasses.asdict` and `dataclasses.replace`
work, and `replace` validates again). Types are strict (`"8600"` is no integer), unknown and missing keys are
refused, and any failure becomes one `ConfigError` naming the dotted key, the value and what was expected, e.g.
`datasets.d1.sizes.demo.train = -3: expected a non-negative integer`.

The `corpora` section stays raw here: each built-in corpus module owns the schema of its entry and
`pipeline.corpora.registry` validates it (this module sits below `pipeline.corpora` and never imports it).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping

import yaml
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Strict, TypeAdapter, ValidationError, \
    ValidationInfo, model_validator
from pydantic.dataclasses import dataclass
from pydantic.types import AllowInfNan

PROFILES = ("demo", "paper")
SPLITS = ("train", "valid", "test")
MIN_SAMPLE_RATE = 1000  # Hz; below this no speech band survives (and a typo such as 86 is caught)
MIN_CLIP_SECONDS = 0.1  # s; a shorter clip holds no word (and a typo such as 0.001 is caught)


class ConfigError(ValueError):
    """A parameter is missing, unknown or has a bad value; the message names its dotted key."""


_UNSET = object()


class Invalid(ValueError):
    """Raised by a validator: the value (at `key` below the one being validated) is not `expected`.

    `validate_section` turns it into a `ConfigError` that names the full dotted key.
    """

    def __init__(self, expected: str, *, key: tuple[str | int, ...] = (), value: Any = _UNSET):
        super().__init__(expected)
        self.expected, self.key, self.value = expected, key, value

    def describe(self, loc: tuple, value: Any) -> str:
        return _describe(loc + self.key, value if self.value is _UNSET else self.value, self.expected)


class _UnknownKey(Invalid):
    def describe(self, loc: tuple, value: Any) -> str:
        return f"{dotted(loc + self.key)}: {self.expected}"


class _Nested(ValueError):
    """A ValidationError of a value validated inside a validator (a per-profile entry), keyed below it."""

    def __init__(self, key: tuple, error: ValidationError):
        super().__init__(str(error))
        self.key, self.error = key, error


# --------------------------------------------------------------------------------------------------------------
# Validation machinery: sections, rules, error messages


def section(cls: type) -> type:
    """Decorator of a params section: a frozen pydantic dataclass; subclass `Section` to get unknown keys named."""
    return dataclass(frozen=True, config=ConfigDict(extra="forbid"))(cls)


@section
class Section:
    """Base of every section: an unknown key fails naming the known ones (pydantic alone does not list them)."""

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = sorted(cls.__dataclass_fields__)
            unknown = sorted(str(key) for key in data if key not in cls.__dataclass_fields__)
            if unknown:
                raise _UnknownKey(f"unknown key (known: {', '.join(known)})", key=(unknown[0],))
        return data


def rule(ok: Callable[[Any], bool], expected: str) -> AfterValidator:
    """A field check: `Annotated[T, rule(lambda v: v > 0, "a positive integer")]`."""
    def check(value: Any) -> Any:
        if not ok(value):
            raise Invalid(expected)
        return value
    return AfterValidator(check)


def one_of(*choices: str) -> AfterValidator:
    """A field check: the value is one of `choices`."""
    return rule(lambda value: value in choices, " or ".join(choices) if len(choices) <= 2 else f"one of {choices}")


def require(ok: bool, expected: str, *, key: tuple[str | int, ...], value: Any) -> None:
    """A check across fields (in a model validator): fail at `key` (below the section) with `value`."""
    if not ok:
        raise Invalid(expected, key=key, value=value)


Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]   # an integer is accepted (and converted), a string not
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
PositiveInt = Annotated[Int, rule(lambda v: v > 0, "a positive integer")]
NonNegativeInt = Annotated[Int, rule(lambda v: v >= 0, "a non-negative integer")]
PositiveFloat = Annotated[Float, rule(lambda v: v > 0, "a number > 0")]
NonNegativeFloat = Annotated[Float, rule(lambda v: v >= 0, "a number >= 0")]
Fraction = Annotated[Float, rule(lambda v: 0 <= v <= 1, "a fraction in [0, 1]")]
SampleRate = Annotated[Int, rule(lambda v: v >= MIN_SAMPLE_RATE, f"an integer >= {MIN_SAMPLE_RATE} (Hz)")]
Sha256 = Annotated[Str, rule(lambda v: re.fullmatch(r"[0-9a-fA-F]{64}", v) is not None,
                             "a sha256 digest (64 hexadecimal digits)")]
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
# Dataset, variant, corpus and folder names become DVC stage names (`train@<name>`) and folder names.
Name = Annotated[Str, rule(lambda v: NAME_PATTERN.fullmatch(v) is not None,
                           "a name of letters, digits, '_' and '-' (it names DVC stages and folders)")]


def per_profile(tp: Any) -> Any:
    """A field given per profile (`{demo: ..., paper: ...}`): holds the active profile's value, validated as `tp`.

    The profile comes from the validation context (`parse_params`); an already built `tp` passes through.
    """
    def pick(value: Any, info: ValidationInfo) -> Any:
        profile = (info.context or {}).get("profile")
        if profile is None or not isinstance(value, Mapping):
            return value
        if profile not in value:
            raise Invalid(f"an entry for profile {profile!r} (have {sorted(map(str, value))})")
        try:
            return _adapter(tp).validate_python(value[profile], context=info.context)
        except ValidationError as err:
            raise _Nested((profile,), err) from None
    return Annotated[tp, BeforeValidator(pick)]


@functools.cache
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


def validate_section(tp: Any, raw: Any, key: str = "", *, context: Mapping[str, Any] | None = None) -> Any:
    """Validate `raw` (as read from YAML) as `tp`; failures raise one ConfigError naming the dotted key below `key`."""
    try:
        return _adapter(tp).validate_python(raw, context=dict(context or {}))
    except ValidationError as err:
        problems = _problems(err, tuple(key.split(".")) if key else ())
    more = len(problems) - 1
    raise ConfigError(problems[0] + (f" (and {more} more problem{'s' * (more > 1)})" if more else ""))


def _problems(err: ValidationError, prefix: tuple) -> list[str]:
    """One message per pydantic error, each naming its dotted key."""
    problems = []
    for error in err.errors(include_url=False):
        loc = prefix + tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _Nested):
            problems += _problems(cause.error, loc + cause.key)
        elif isinstance(cause, Invalid):
            problems.append(cause.describe(loc, error["input"]))
        elif error["type"] == "missing":
            problems.append(f"{dotted(loc)}: missing")
        elif error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            problems.append(f"{dotted(loc)}: unknown key")
        else:
            expected = _EXPECTED.get(error["type"], "").format(**error.get("ctx") or {})
            problems.append(_describe(loc, error["input"], expected or _pydantic_expected(error["msg"])))
    return problems


_EXPECTED = {
    "dict_type": "a mapping", "dataclass_type": "a mapping", "model_type": "a mapping",
    "tuple_type": "a list", "list_type": "a list", "int_type": "an integer", "float_type": "a number",
    "string_type": "a string", "bool_type": "true or false", "finite_number": "a finite number",
    "too_long": "a list of at most {max_length} values", "too_short": "a list of at least {min_length} values",
}


def _pydantic_expected(msg: str) -> str:
    return msg.removeprefix("Input should be ").removeprefix("Value error, ")


def _describe(loc: tuple, value: Any, expected: str) -> str:
    return f"{dotted(loc)} = {value!r}: expected {expected}"


def dotted(loc: tuple) -> str:
    """('datasets', 'd1', 'sizes') -> 'datasets.d1.sizes' (pydantic's '[key]' marker of a bad mapping key dropped)."""
    return ".".join(str(part) for part in loc if part != "[key]") or "params"


# --------------------------------------------------------------------------------------------------------------
# Sections


DbFS = Annotated[Float, rule(lambda v: v <= 0, "a level in dBFS (<= 0)")]


@section
class AudioConfig(Section):
    """Signal settings of every clip, and when `prepare` calls a clip silent.

    A clip is silent when its RMS is below `silence_floor_db` (digital silence, whatever the recording), or when
    it is both more than `silence_relative_db` below the loudest clip of its own recording and below
    `silence_threshold_db`: a quietly recorded speaker is judged against its own level, never dropped for being
    quiet.
    """

    sample_rate: SampleRate
    clip_seconds: Annotated[Float, rule(lambda v: v >= MIN_CLIP_SECONDS,
                                        f"a clip length in seconds >= {MIN_CLIP_SECONDS}")]
    target_rms: PositiveFloat
    silence_threshold_db: DbFS
    min_tail_fraction: Annotated[Float, rule(lambda v: 0 < v <= 1, "in (0, 1]")]
    silence_relative_db: PositiveFloat = 30.0
    silence_floor_db: DbFS = -90.0

    @model_validator(mode="after")
    def _floor_below_threshold(self) -> AudioConfig:
        require(self.silence_floor_db <= self.silence_threshold_db,
                f"at most silence_threshold_db ({self.silence_threshold_db})", key=("silence_floor_db",),
                value=self.silence_floor_db)
        return self

    @property
    def clip_samples(self) -> int:
        """Samples per clip (8,600 for 1 s at 8,600 Hz)."""
        return int(round(self.sample_rate * self.clip_seconds))


@section
class StftConfig(Section):
    """The STFT shared by every stage (see `pipeline.features.stft`)."""

    n_fft: Annotated[Int, rule(lambda v: v >= 2, "an integer >= 2")] = 400
    hop_length: PositiveInt = 200

    @model_validator(mode="after")
    def _hop_within_window(self) -> StftConfig:
        require(self.hop_length <= self.n_fft, f"at most n_fft ({self.n_fft})", key=("hop_length",),
                value=self.hop_length)
        return self

    @property
    def bins(self) -> int:
        """F: frequency bins of a one-sided spectrum."""
        return self.n_fft // 2 + 1

    def frames(self, num_samples: int) -> int:
        """T: frames of a centred STFT of `num_samples` samples."""
        return 1 + num_samples // self.hop_length


COMPRESSIONS = ("none", "snappy", "gzip", "zstd", "lz4", "brotli")


@section
class ShardConfig(Section):
    rows_per_group: PositiveInt
    groups_per_shard: PositiveInt
    compression: Annotated[Str, one_of(*COMPRESSIONS)]


@section
class SplitFractions(Section):
    train: Fraction
    valid: Fraction
    test: Fraction

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        require(math.isclose(self.train + self.valid + self.test, 1.0, abs_tol=1e-6), "fractions summing to 1",
                key=(), value={"train": self.train, "valid": self.valid, "test": self.test})
        return self


@section
class FolderConfig(Section):
    """A user's folder of audio: labels from sub-folder names (`subfolders`) or from a CSV file's path."""

    path: Annotated[Str, rule(bool, "a folder path")]
    labels: Annotated[Str, rule(lambda v: v == "subfolders" or v.lower().endswith(".csv"),
                                "subfolders or the path of a .csv file inside the folder")] = "subfolders"
    split_fractions: SplitFractions = SplitFractions(0.8, 0.1, 0.1)


SUBTITLED_CLASSES = ("speech", "background")  # the classes of a set labelled by subtitles (d2's)


@section
class SubtitledConfig(Section):
    """Your films or recordings with subtitle files beside them, cut into clips labelled by the subtitles
    (`pipeline.mixing.subtitled`): "speech + background" where a cue covers at least `min_overlap` of a clip,
    "background" where no cue comes within `margin_seconds`; the clips in between are in doubt and dropped."""

    path: Annotated[Str, rule(bool, "a folder path")]
    min_overlap: Annotated[Float, rule(lambda v: 0 < v <= 1, "in (0, 1]")] = 0.5
    margin_seconds: NonNegativeFloat = 1.0
    valid_fraction: Annotated[Float, rule(lambda v: 0 < v < 1, "in (0, 1)")] = 0.1
    chunk_seconds: PositiveFloat = 30.0    # train / valid are assigned per chunk of a recording, not per clip
    seed: Int = 0


@section
class ClassSource(Section):
    """Where one class of a dataset draws clips: a corpus, optionally only some labels, speakers or genders."""

    corpus: Str
    labels: tuple[Str, ...] | None = None
    speakers: tuple[Str, ...] | None = None
    genders: tuple[Str, ...] | None = None


@section
class SplitSizes(Section):
    train: NonNegativeInt
    valid: NonNegativeInt
    test: NonNegativeInt

    def of(self, split: str) -> int:
        return int(getattr(self, split))


def _size_key(value: Any) -> Any:
    # Mapping keys such as mixture sizes may arrive as strings ("2") from JSON or `dvc exp run -S`.
    return int(value) if isinstance(value, str) and value.isdigit() else value


MixtureSize = Annotated[Int, BeforeValidator(_size_key)]


@section
class DatasetConfig(Section):
    classes: dict[Str, tuple[ClassSource, ...]]
    mixture_sizes: dict[MixtureSize, PositiveFloat]
    source_gain_db: tuple[Float, Float]
    max_peak: Annotated[Float, rule(lambda v: 0 < v <= 1, "in (0, 1]")]
    allow_reuse: Bool
    seed: Int
    sizes: per_profile(SplitSizes)  # resolved for the active profile
    # splits whose sources are rolled by a random offset, so models see sound at every position of the window
    random_shift_splits: tuple[Annotated[Str, one_of(*SPLITS)], ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> DatasetConfig:
        require(len(self.classes) >= 2, "at least two classes", key=("classes",), value=list(self.classes))
        for name, sources in self.classes.items():
            require(len(sources) > 0, "at least one corpus", key=("classes", name), value=list(sources))
        for size in self.mixture_sizes:
            require(1 <= size <= len(self.classes),
                    f"a mixture size between 1 (solo segments) and the number of classes ({len(self.classes)})",
                    key=("mixture_sizes", size), value=size)
        require(bool(self.separation_sizes), "at least one size of 2 or more (test mixtures need something to "
                "separate)", key=("mixture_sizes",), value=dict(self.mixture_sizes))
        low, high = self.source_gain_db
        require(low <= high, "[low, high] with low <= high", key=("source_gain_db",), value=list(self.source_gain_db))
        return self

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.classes)

    @property
    def separation_sizes(self) -> tuple[int, ...]:
        """The mixture sizes of 2 or more: the test split's, and the class combinations separators consider.
        Solo segments (size 1) belong to the training and validation splits only."""
        return tuple(sorted(size for size in self.mixture_sizes if size >= 2))


@section
class ModelConfig(Section):
    filters: tuple[PositiveInt, PositiveInt, PositiveInt]
    kernel: PositiveInt
    stride: PositiveInt
    hidden: PositiveInt
    latent: PositiveInt


@section
class Schedule(Section):
    max_steps: PositiveInt
    validate_every: PositiveInt


PRECISIONS = ("fp32", "bf16")  # training matmuls: float32, or bfloat16 autocast (mixed precision)
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


@section
class TrainConfig(Section):
    beta: NonNegativeFloat
    learning_rate: PositiveFloat
    batch_size: PositiveInt
    class_loss_weight: NonNegativeFloat
    patience: PositiveInt
    seed: Int
    device: Annotated[Str, rule(lambda v: DEVICE_PATTERN.fullmatch(v) is not None, "auto, cpu, cuda or cuda:N")]
    cache_mb: NonNegativeInt
    shuffle_groups: PositiveInt
    schedule: per_profile(Schedule)  # resolved for the active profile
    precision: Annotated[Str, one_of(*PRECISIONS)] = "fp32"


@section
class NmfSchedule(Section):
    train_iterations: PositiveInt  # multiplicative updates of the dictionaries (and training activations)
    test_iterations: PositiveInt   # updates of a test mixture's activations (the dictionaries fixed)


@section
class NmfConfig(Section):
    """The NMF baseline (the paper's eq. 1, generalised KL): atoms per class, L1 weight on the activations."""

    rank: PositiveInt
    sparsity: NonNegativeFloat
    seed: Int
    validations: PositiveInt       # how many times training measures the validation divergence (its curve)
    schedule: per_profile(NmfSchedule)  # resolved for the active profile


DRNN_RECURRENT = (0, 1, 2, 3, "stacked")
DRNN_LOSSES = ("mse", "kl")
DrnnRecurrent = Annotated[Int | Str, rule(lambda v: v in DRNN_RECURRENT,
                                          "0 (no recurrent layer), 1, 2, 3 (DRNN-k) or stacked")]
DrnnLoss = Annotated[Str, one_of(*DRNN_LOSSES)]
Discriminative = Annotated[Float, rule(lambda v: 0 <= v < 0.5, "a weight in [0, 0.5)")]
OddPositiveInt = Annotated[Int, rule(lambda v: v >= 1 and v % 2 == 1, "an odd number of frames >= 1")]


@section
class DrnnSettings(Section):
    """What one DRNN configuration trains: objective, mask layer, recurrent layer, input context."""

    loss: DrnnLoss
    discriminative: Discriminative
    mask: Bool
    recurrent: DrnnRecurrent
    context: OddPositiveInt


@section
class DrnnOverrides(Section):
    """An ablation: the settings it changes (the others are the main configuration's)."""

    loss: DrnnLoss | None = None
    discriminative: Discriminative | None = None
    mask: Bool | None = None
    recurrent: DrnnRecurrent | None = None
    context: OddPositiveInt | None = None


DRNN_MAIN = "drnn"  # the main configuration's name (its rows: <dataset>.drnn.forward.oracle, ...)


@section
class DrnnConfig(Section):
    """The deep recurrent soft-mask separator (seed 002; pipeline/models/drnn.py): trained on each of `datasets`
    (one `train_drnn@<dataset>` stage each), its ablations on those of `ablation_datasets` only."""

    width: per_profile(PositiveInt)        # ReLU units per hidden layer; resolved for the active profile
    context: OddPositiveInt                # input frames, centred on the frame
    recurrent: DrnnRecurrent               # DRNN-k: the hidden layer with the recurrent connection
    mask: Bool                             # the joint mask layer
    loss: DrnnLoss
    discriminative: Discriminative         # λ
    seed: Int
    schedule: per_profile(Schedule)        # resolved for the active profile
    datasets: tuple[Name, ...]             # the datasets it trains on (dvc.yaml: one stage each)
    ablations: dict[Name, DrnnOverrides]
    ablation_datasets: per_profile(tuple[Name, ...])

    @model_validator(mode="after")
    def _names(self) -> DrnnConfig:
        for name in self.ablations:
            require(name.startswith(f"{DRNN_MAIN}-"), f"a name starting with '{DRNN_MAIN}-'",
                    key=("ablations", name), value=name)
        return self

    @property
    def main(self) -> DrnnSettings:
        return DrnnSettings(loss=self.loss, discriminative=self.discriminative, mask=self.mask,
                            recurrent=self.recurrent, context=self.context)

    def configurations(self, dataset: str) -> dict[str, DrnnSettings]:
        """Every configuration trained on `dataset`, by name: the main one, then (on the ablation datasets)
        each ablation, its overrides applied to the main settings."""
        if dataset not in self.datasets:
            return {}
        main = self.main
        found = {DRNN_MAIN: main}
        if dataset in self.ablation_datasets:
            for name, overrides in self.ablations.items():
                changes = {k: v for k, v in dataclasses.asdict(overrides).items() if v is not None}
                found[name] = dataclasses.replace(main, **changes)
        return found


DPCL_SYSTEMS = ("dpcl", "sce", "danet", "dpcl++")


@section
class KmeansConfig(Section):
    """Hard k-means at inference (seed 003: 10 steps, 2 tries): Lloyd steps and seeded restarts."""

    steps: PositiveInt
    restarts: PositiveInt


@section
class SceConfig(Section):
    """Source contrastive estimation's negative sampling: K identities drawn per bin, weight μ of their term."""

    negatives: NonNegativeInt
    weight: Fraction


@section
class DpclPlusConfig(Section):
    """DPCL++: the enhancement BLSTM (units per direction, layers), soft k-means (stiffness β, unrolled steps)."""

    hidden: per_profile(PositiveInt)
    layers: PositiveInt
    beta: PositiveFloat
    soft_steps: PositiveInt


@section
class DpclConfig(Section):
    """Deep clustering, SCE and DPCL++ (seed 003; pipeline/models/dpcl.py): `systems` trained on each of
    `datasets` by one `train_dpcl@<dataset>` stage; DPCL++ is fine-tuned from DPCL, so it needs `dpcl` first."""

    hidden: per_profile(PositiveInt)       # BLSTM units per direction
    layers: per_profile(PositiveInt)       # stacked BLSTM layers
    embedding: per_profile(PositiveInt)    # E
    silence_db: Annotated[Float, rule(lambda v: v < 0, "a negative level in dB")]
    kmeans: KmeansConfig
    sce: SceConfig
    plus: DpclPlusConfig
    seed: Int
    batch_size: per_profile(PositiveInt)   # mixtures per step (the BLSTM over every bin is costly on a CPU)
    schedule: per_profile(Schedule)        # DPCL, SCE and DANet
    finetune: per_profile(Schedule)        # DPCL++ (from DPCL's weights)
    systems: tuple[Annotated[Str, one_of(*DPCL_SYSTEMS)], ...]
    datasets: tuple[Name, ...]

    @model_validator(mode="after")
    def _order(self) -> DpclConfig:
        systems = list(self.systems)
        require(len(set(systems)) == len(systems), "each system once", key=("systems",), value=systems)
        require("dpcl++" not in systems or ("dpcl" in systems and systems.index("dpcl") < systems.index("dpcl++")),
                "dpcl before dpcl++ (DPCL++ is fine-tuned from DPCL)", key=("systems",), value=systems)
        return self


SUPERVISIONS = ("source", "class")
VAE_MODELS = ("vae", "ae")        # the paper's network, with and without its variational layer
MODEL_KINDS = (*VAE_MODELS, "nmf")  # nmf: the NMF baseline (pipeline/models/nmf.py)
LOSSES = ("mag-kl", "mag-mse", "wave-mse", "wave-snr", "wave-sisnr")


@section
class VariantConfig(Section):
    """One trained model: which dataset, supervision, model kind and loss (plus optional overrides)."""

    dataset: Str
    supervision: Annotated[Str, one_of(*SUPERVISIONS)]
    model: Annotated[Str, one_of(*MODEL_KINDS)]
    loss: Annotated[Str, one_of(*LOSSES)] = "mag-kl"
    beta: NonNegativeFloat | None = None
    patience: PositiveInt | None = None
    # the share of solo segments (one class alone, with its one-hot label) among the training rows; the dataset's
    # mixture_sizes must hold enough of them (size 1). 0: mixtures of two or more classes only, as in the paper.
    solo_share: Annotated[Float, rule(lambda v: 0 <= v < 1, "in [0, 1)")] = 0.0

    @model_validator(mode="after")
    def _loss_fits_supervision(self) -> VariantConfig:
        require(self.supervision == "source" or self.loss == "mag-kl",
                "mag-kl with class supervision (the other losses need the isolated sources)",
                key=("loss",), value=self.loss)
        require(self.model != "nmf" or self.loss == "mag-kl", "mag-kl for model nmf (its generalised-KL updates)",
                key=("loss",), value=self.loss)
        return self


PRIOR_PROJECTIONS = ("box", "ball")
CLASSICAL_METHODS = ("nmf", "fastica", "pca", "kpca")


@section
class PriorWeights(Section):
    """β of the four terms of seed 004's objective (multi-resolution spectral, source dissimilarity, mixture
    correlation, frequency continuity)."""

    ms: NonNegativeFloat
    sd: NonNegativeFloat
    mc: NonNegativeFloat
    fc: NonNegativeFloat


@section
class PriorSchedule(Section):
    mixtures: PositiveInt      # test mixtures the generative-prior and classical rows score
    steps: PositiveInt         # projected gradient steps per mixture (all mixtures and classes at once)
    blind_iterations: PositiveInt  # updates of the blind NMF; the most FastICA iterations


@section
class ClassicalConfig(Section):
    """Seed 004's classical baselines on the mixture spectrogram alone: which, on which datasets, how many
    components (grouped into as many sources as the mixture holds)."""

    methods: tuple[Annotated[Str, one_of(*CLASSICAL_METHODS)], ...]
    datasets: tuple[Name, ...]
    components: Annotated[Int, rule(lambda v: v >= 3, "at least 3 components")]


@section
class PriorsConfig(Section):
    """Unsupervised separation with generative priors (seed 004): per dataset, the VAE variant whose class
    decoders are the generators; the objective's weights; projected gradient descent on the latents."""

    variants: dict[Name, Name]
    weights: PriorWeights
    poolings: Annotated[Int, rule(lambda v: 1 <= v <= 3, "1, 2 or 3 successive 2x2 average poolings")]
    learning_rate: PositiveFloat
    projection: Annotated[Str, one_of(*PRIOR_PROJECTIONS)]
    radius: PositiveFloat      # the box's half-width, or the ball's radius
    seed: Int
    schedule: per_profile(PriorSchedule)  # resolved for the active profile
    classical: ClassicalConfig


@section
class InverseSettings(Section):
    learning_rate: PositiveFloat
    restarts: PositiveInt
    tolerance: NonNegativeFloat
    window: PositiveInt


@section
class EvaluationSchedule(Section):
    forward_mixtures: PositiveInt
    inverse_mixtures: PositiveInt
    inverse_iterations: PositiveInt


@section
class DatasetEvaluation(Section):
    speech: tuple[Str, ...] = ()
    inverse: Bool = True


@section
class EvaluateConfig(Section):
    batch_size: PositiveInt
    seed: Int
    examples: NonNegativeInt
    inverse: InverseSettings
    schedule: per_profile(EvaluationSchedule)  # resolved for the active profile
    datasets: dict[Str, DatasetEvaluation]

    def of(self, dataset: str) -> DatasetEvaluation:
        """Settings of `dataset` (defaults when it is not listed: no speech classes, inverse on)."""
        return self.datasets.get(dataset, DatasetEvaluation())


Layout = tuple[SampleRate, Annotated[Int, rule(lambda v: v in (1, 2), "1 (mono) or 2 (stereo) channels")]]


@section
class SceneEnhance(Section):
    """How `enhance` runs on the scenes: the remix gains and its streaming parameters (its command's defaults)."""

    dialogue_gain_db: Float = 6.0
    background_gain_db: Float = 0.0
    update_frames: PositiveInt = 8
    lookahead_frames: NonNegativeInt = 35
    block_seconds: PositiveFloat = 10.0
    stream_samples: PositiveInt = 1024


@section
class ScenesConfig(Section):
    """Long test scenes (`pipeline.mixing.scenes`): which datasets, how long, which ratios, rates and layouts."""

    datasets: tuple[Name, ...]
    seconds: per_profile(PositiveFloat)                 # resolved for the active profile
    per_combination: per_profile(PositiveInt)           # scenes per ratio x layout
    ratios_db: tuple[Float, ...]
    layouts: per_profile(tuple[Layout, ...])            # (sample rate, channels) pairs; resolved for the profile
    pause_seconds: tuple[NonNegativeFloat, NonNegativeFloat]
    loudness_lufs: Annotated[Float, rule(lambda v: v < 0, "a programme loudness in LUFS (< 0)")]
    max_peak: Annotated[Float, rule(lambda v: 0 < v <= 1, "in (0, 1]")]
    seed: Int
    enhance: SceneEnhance = SceneEnhance()

    @model_validator(mode="after")
    def _consistent(self) -> ScenesConfig:
        low, high = self.pause_seconds
        require(low <= high, "[low, high] with low <= high", key=("pause_seconds",), value=list(self.pause_seconds))
        for key in ("ratios_db", "layouts"):
            require(len(getattr(self, key)) > 0, "at least one value", key=(key,), value=list(getattr(self, key)))
        return self


@section
class GenerateVariant(Section):
    """One variant `generate` samples from; its dataset (must be the variant's: it names the stage's paths)."""

    dataset: Str


@section
class GenerateConfig(Section):
    """Generating new sounds from trained VAEs (`pipeline.generation`, seed 001): one `generate@<variant>` each."""

    variants: dict[Name, GenerateVariant]
    reference: Name                       # whose encoder's latent means are the Fréchet distance's features
    samples: PositiveInt = 32             # clips drawn per class and measured
    gallery: NonNegativeInt = 3           # of which written as audio per class
    temperature: PositiveFloat = 1.0      # z ~ N(0, T² I)
    griffin_lim_iterations: NonNegativeInt = 32
    interpolation_steps: Annotated[Int, rule(lambda v: v >= 2, "an integer >= 2 (both ends)")] = 6
    seed: Int = 0


@section
class Params(Section):
    profile: Annotated[Str, one_of(*PROFILES)]
    audio: AudioConfig
    stft: StftConfig
    shards: ShardConfig
    # Raw (a copy, so that editing the YAML mapping later changes nothing); pipeline.corpora.registry validates it.
    corpora: Annotated[dict[Name, dict[Str, Any]], AfterValidator(copy.deepcopy)]
    folders: dict[Name, FolderConfig]
    datasets: dict[Name, DatasetConfig]
    model: ModelConfig
    train: TrainConfig
    nmf: NmfConfig
    drnn: DrnnConfig
    dpcl: DpclConfig
    variants: dict[Name, VariantConfig]
    evaluate: EvaluateConfig
    priors: PriorsConfig
    scenes: ScenesConfig
    subtitled: dict[Name, SubtitledConfig] = dataclasses.field(default_factory=dict)
    generate: GenerateConfig | None = None

    @model_validator(mode="after")
    def _cross_references(self) -> Params:
        require(self.stft.n_fft <= self.audio.clip_samples,
                f"at most a clip's length, audio.sample_rate x audio.clip_seconds = {self.audio.clip_samples} "
                "samples", key=("stft", "n_fft"), value=self.stft.n_fft)
        clash = sorted(set(self.folders) & set(self.corpora))
        require(not clash, "names different from the built-in corpora", key=("folders",), value=clash)
        known = self.corpus_names
        for dataset, config in self.datasets.items():
            for class_name, sources in config.classes.items():
                for source in sources:
                    require(source.corpus in known, f"one of the corpora {sorted(known)}",
                            key=("datasets", dataset, "classes", class_name, "corpus"), value=source.corpus)
        clash = sorted(set(self.subtitled) & set(self.datasets))
        require(not clash, "names different from the datasets", key=("subtitled",), value=clash)
        trainable = sorted(self.datasets) + sorted(self.subtitled)
        for name, variant in self.variants.items():
            require(variant.dataset in trainable, f"one of the datasets or subtitled sets {trainable}",
                    key=("variants", name, "dataset"), value=variant.dataset)
            require(variant.dataset not in self.subtitled or variant.supervision == "class",
                    f"supervision class (subtitled set {variant.dataset} has no isolated sources)",
                    key=("variants", name, "supervision"), value=variant.supervision)
        for key in ("datasets", "ablation_datasets"):
            for position, name in enumerate(getattr(self.drnn, key)):
                require(name in self.datasets, f"one of the datasets {sorted(self.datasets)}",
                        key=("drnn", key, position), value=name)
        for position, name in enumerate(self.dpcl.datasets):
            require(name in self.datasets, f"one of the datasets {sorted(self.datasets)}",
                    key=("dpcl", "datasets", position), value=name)
        for name, settings in self.evaluate.datasets.items():
            require(name in self.datasets, f"one of the datasets {sorted(self.datasets)}",
                    key=("evaluate", "datasets", name), value=name)
            unknown = sorted(set(settings.speech) - set(self.datasets[name].class_names))
            require(not unknown, f"classes of {name}: {list(self.datasets[name].class_names)}",
                    key=("evaluate", "datasets", name, "speech"), value=unknown)
        # (that each names a VAE variant trained on its dataset is checked when its row is built:
        # pipeline.separators.priors, so that code which narrows `variants` keeps valid params)
        for dataset in self.priors.variants:
            require(dataset in self.datasets, f"one of the datasets {sorted(self.datasets)}",
                    key=("priors", "variants", dataset), value=dataset)
        for position, name in enumerate(self.priors.classical.datasets):
            require(name in self.datasets, f"one of the datasets {sorted(self.datasets)}",
                    key=("priors", "classical", "datasets", position), value=name)
        for position, name in enumerate(self.scenes.datasets):
            require(name in self.datasets, f"one of the datasets {sorted(self.datasets)}",
                    key=("scenes", "datasets", position), value=name)
            speech = set(self.evaluate.of(name).speech)
            require(bool(speech) and speech != set(self.datasets[name].class_names),
                    "a dataset with dialogue classes and other classes (evaluate.datasets.<name>.speech)",
                    key=("scenes", "datasets", position), value=name)
        if self.generate is not None:
            for name, entry in self.generate.variants.items():
                variant = self.variants.get(name)
                require(variant is not None and variant.model in ("vae", "ae"),
                        f"a vae or ae variant of `variants` ({sorted(n for n, v in self.variants.items() if v.model != 'nmf')})",
                        key=("generate", "variants", name), value=name)
                require(entry.dataset == variant.dataset, f"the variant's dataset {variant.dataset}",
                        key=("generate", "variants", name, "dataset"), value=entry.dataset)
            reference = self.generate.variants.get(self.generate.reference)
            require(reference is not None and all(e.dataset == reference.dataset
                                                  for e in self.generate.variants.values()),
                    f"one of generate.variants {sorted(self.generate.variants)}, on the same dataset as all of them",
                    key=("generate", "reference"), value=self.generate.reference)
            require(self.generate.gallery <= self.generate.samples, f"at most generate.samples ({self.generate.samples})",
                    key=("generate", "gallery"), value=self.generate.gallery)
        return self

    def classes_of(self, dataset: str) -> tuple[str, ...]:
        """The classes of a dataset or of a subtitled set."""
        return SUBTITLED_CLASSES if dataset in self.subtitled else self.datasets[dataset].class_names

    @property
    def corpus_names(self) -> tuple[str, ...]:
        """Every corpus a dataset may draw from: the built-in ones (`corpora`), then the user's `folders`."""
        return tuple(self.corpora) + tuple(self.folders)


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
    if not isinstance(raw, Mapping):
        raise ConfigError(_describe((), raw, "a mapping of sections"))
    # `orchestration` says how stages run (task runner, Dask, schedule), never what they produce: it is read by
    # pipeline.orchestration.settings and is no stage's parameter.
    raw = {key: value for key, value in raw.items() if key != "orchestration"}
    profile = raw.get("profile")
    if profile not in PROFILES:
        raise ConfigError(_describe(("profile",), profile, f"one of {PROFILES}"))
    return validate_section(Params, raw, context={"profile": profile})
