"""The non-negative VAE as separators: forward inference, inverse (VAD) inference, and the streaming masker.

Rows per variant trained on the dataset (model `vae` or `ae`): `forward` with oracle or estimated (`classify`)
classes; with `evaluate.datasets.<d>.inverse`, `inverse` with oracle classes, `inverse_exhaustive` and
`inverse_joint` with estimated classes. Magnitude estimates become waveforms through the Wiener mask (eq. 9).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.config import VAE_MODELS, Params, StftConfig
from pipeline.features.wiener import wiener_separate
from pipeline.inference.forward import forward_separate
from pipeline.inference.inverse import InverseConfig, all_combinations, inverse_exhaustive, inverse_joint
from pipeline.models.checkpoint import load_model
from pipeline.models.folded import FoldedVAE
from pipeline.models.vae import NonNegativeVAE
from pipeline.separators.base import BuildContext, Kind, Metadata, Mixtures, Separation, System, short_name
from pipeline.separators.signal import SignalSettings, signal_settings

FORWARD_KIND, INVERSE_KIND = "vae-forward", "vae-inverse"
MAX_LEVEL_GAIN = 1000.0  # never amplify near-silence by more than 60 dB to reach the training level


@dataclass(frozen=True)
class ForwardSeparator:
    """Encoder -> class estimates (or the oracle labels) -> decoders at z = μ -> Wiener mask."""

    model: NonNegativeVAE
    stft: StftConfig
    metadata: Metadata
    max_mixtures: int

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        labels = mixtures.labels if self.metadata.classes == "oracle" else None
        result = forward_separate(self.model, mixtures.magnitudes, labels)
        return Separation(wiener_separate(result.sources, mixtures.waveforms, self.stft), result.labels)


@dataclass(frozen=True)
class InverseSeparator:
    """VAD: frozen decoders, latents (and class weights) optimised per mixture -> Wiener mask.

    combinations: (C, K) candidate class sets of `exhaustive` with estimated classes; None for `joint` and for
    oracle classes (the true labels are the one candidate).
    """

    model: NonNegativeVAE
    stft: StftConfig
    config: InverseConfig
    combinations: torch.Tensor | None
    metadata: Metadata
    max_mixtures: int

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        magnitudes = mixtures.magnitudes
        if self.metadata.classes == "oracle":
            result = inverse_exhaustive(self.model, magnitudes, mixtures.labels.unsqueeze(1), self.config, generator)
        elif self.combinations is not None:
            result = inverse_exhaustive(self.model, magnitudes, self.combinations, self.config, generator)
        else:
            result = inverse_joint(self.model, magnitudes, self.config, generator)
        return Separation(wiener_separate(result.sources, mixtures.waveforms, self.stft), result.labels)


@dataclass
class WindowMasker:
    """Streaming magnitudes: every class decoded at z = μ and weighted by the class head's h_k.

    h_k is a soft version of the `classify` labels, so estimates do not jump when a class fades in or out.
    Each window is scaled to the RMS level the model was trained at, since real recordings come at any level;
    the estimates are those of the scaled window. The network runs in its folded streaming form
    (`pipeline.models.folded`), which decodes only the frames asked for. `settings`: the sample rate, STFT and
    window length of the model file.
    """

    model: FoldedVAE
    classes: list[str]
    target_rms: float
    settings: SignalSettings
    window_power: float      # mean of the squared analysis window

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "WindowMasker":
        """A VAE model file -> its streaming masker; ValueError naming the file when its settings or level
        cannot be honoured."""
        model, info = load_model(path, device)
        settings = signal_settings(info, path, model.shape.frames)
        if model.shape.bins != settings.bins:
            raise ValueError(f"model {path}: the network takes {model.shape.bins} frequency bins, but stft.n_fft = "
                             f"{settings.n_fft} makes {settings.bins}; the file is inconsistent: retrain it")
        classes = info.get("classes")
        if not isinstance(classes, list) or len(classes) != model.shape.num_classes:
            raise ValueError(f"model {path}: classes = {classes!r}; expected a list of the network's "
                             f"{model.shape.num_classes} class names")
        target = info.get("target_rms")
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < float("inf"):
            raise ValueError(f"model {path}: target_rms = {target!r}; expected a positive finite level")
        window = torch.hann_window(settings.n_fft, periodic=True)
        return cls(FoldedVAE(model), [str(c) for c in classes], float(target), settings, float(window.square().mean()))

    @torch.no_grad()
    def magnitudes(self, windows: torch.Tensor, frames: slice | None = None) -> torch.Tensor:
        """windows (W, T, F) -> h-weighted class magnitudes (W, K, T, F) of the level-scaled windows; with
        `frames`, only those frames, decoded without the others (W, K, len(frames), F)."""
        level = self._rms(windows)
        scale = (self.target_rms / level.clamp_min(self.target_rms / MAX_LEVEL_GAIN)).view(-1, 1, 1)
        mu, logits = self.model.encode(windows * scale)
        first, stop, _ = (frames or slice(None)).indices(windows.shape[1])
        weights = torch.sigmoid(logits)                                          # (W, K)
        return weights[:, :, None, None] * self.model.decode_frames(mu, first, stop)

    def _rms(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """Signal RMS of each window from its one-sided magnitudes (Parseval): (W, T, F) -> (W,).

        Computed relative to each window's peak magnitude, so the squares of loud (finite) input cannot overflow
        float32 (they did from about 1e19: inf - inf made every mask NaN)."""
        peak = magnitudes.abs().amax(dim=(1, 2)).clamp_min(torch.finfo(magnitudes.dtype).tiny)
        power = (magnitudes / peak.view(-1, 1, 1)).square()
        full = 2 * power.sum(dim=-1) - power[..., 0] - power[..., -1]  # both halves of the spectrum, DC/Nyquist once
        return peak * torch.sqrt(full.mean(dim=-1) / (self.settings.n_fft ** 2 * self.window_power))


def load_vae(context: BuildContext, variant: str) -> NonNegativeVAE:
    """The variant's model on the context's device (loaded once for its consecutive rows); classes checked."""
    def load() -> NonNegativeVAE:
        model, info = load_model(context.model_file(variant), context.device)
        if info["classes"] != context.classes:
            raise ValueError(f"model {variant} was trained on classes {info['classes']}, but the {context.dataset} "
                             f"test split has {context.classes}; retrain it (dvc repro train@{variant})")
        return model
    return context.cached(f"vae:{variant}", load)


def inverse_config(params: Params, variant: str) -> InverseConfig:
    """The latent optimisation of `evaluate.inverse` and the schedule, with the variant's β."""
    settings, schedule = params.evaluate.inverse, params.evaluate.schedule
    config = params.variants[variant]
    beta = config.beta if config.beta is not None else params.train.beta
    return InverseConfig(iterations=schedule.inverse_iterations, learning_rate=settings.learning_rate,
                         restarts=settings.restarts, tolerance=settings.tolerance, window=settings.window, beta=beta)


def _is_vae(params: Params, variant: str | None) -> bool:
    return variant is not None and params.variants[variant].model in VAE_MODELS


def _metadata(system: System, params: Params) -> Metadata:
    return Metadata(supervision=params.variants[system.variant].supervision,
                    classes="oracle" if system.classes == "oracle" else "estimated")


def forward_rows(dataset: str, params: Params, variant: str | None) -> list[System]:
    if not _is_vae(params, variant):
        return []
    name = short_name(variant, dataset)
    return [System(name, "forward", classes, variant=variant, kind=FORWARD_KIND) for classes in ("oracle", "classify")]


def inverse_rows(dataset: str, params: Params, variant: str | None) -> list[System]:
    if not _is_vae(params, variant) or not params.evaluate.of(dataset).inverse:
        return []
    name = short_name(variant, dataset)
    return [System(name, "inverse", "oracle", variant=variant, kind=INVERSE_KIND),
            System(name, "inverse", "classify", "exhaustive", variant=variant, kind=INVERSE_KIND),
            System(name, "inverse", "classify", "joint", variant=variant, kind=INVERSE_KIND)]


def build_forward(system: System, context: BuildContext) -> ForwardSeparator:
    params = context.params
    return ForwardSeparator(load_vae(context, system.variant), params.stft, _metadata(system, params),
                            params.evaluate.schedule.forward_mixtures)


def build_inverse(system: System, context: BuildContext) -> InverseSeparator:
    params = context.params
    combinations = None
    if system.inverse == "exhaustive":
        sizes = params.datasets[context.dataset].separation_sizes
        combinations = all_combinations(len(context.classes), sizes).to(context.device)
    return InverseSeparator(load_vae(context, system.variant), params.stft, inverse_config(params, system.variant),
                            combinations, _metadata(system, params), params.evaluate.schedule.inverse_mixtures)


FORWARD = Kind(FORWARD_KIND, forward_rows, build_forward, window=WindowMasker.load)
INVERSE = Kind(INVERSE_KIND, inverse_rows, build_inverse)
