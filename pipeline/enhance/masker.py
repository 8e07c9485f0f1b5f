"""From a model file to a dialogue mask: context windows of magnitude frames -> soft mask of the dialogue.

The model file's separator kind gives per-class magnitude estimates ŝ_k of each window
(`pipeline.separators.base.WindowSeparator`; for the VAE, `pipeline.separators.vae.WindowMasker`); the dialogue
mask is Σ_{k ∈ dialogue} ŝ_k² / Σ_k ŝ_k², the Wiener mask of eq. 9 summed over the dialogue classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from pipeline.separators.base import WindowSeparator
from pipeline.separators.registry import DEFAULT_STREAM_KIND, window_separator
from pipeline.separators.signal import SignalSettings

EPS = 1e-10


@dataclass
class DialogueMasker:
    separator: WindowSeparator
    dialogue: torch.Tensor   # (K,) bool: which classes are dialogue

    @classmethod
    def load(cls, path: str | Path, dialogue_classes: Sequence[str], device: str = "cpu",
             kind: str = DEFAULT_STREAM_KIND) -> "DialogueMasker":
        """Load a model file with separator `kind`; `dialogue_classes` must be some, but not all, of its classes."""
        separator = window_separator(kind, path, device)
        classes = list(separator.classes)
        unknown = sorted(set(dialogue_classes) - set(classes))
        if unknown or not dialogue_classes:
            raise ValueError(f"model {path} has classes {classes}; dialogue classes {list(dialogue_classes)} "
                             f"must be some of them")
        if set(dialogue_classes) == set(classes):
            raise ValueError(f"model {path}: every class ({classes}) is dialogue, so there is no background to "
                             f"separate; use a model trained on dialogue and other sounds (e.g. d2 or d3)")
        return cls(separator, torch.tensor([c in dialogue_classes for c in classes], device=device))

    @property
    def settings(self) -> SignalSettings:
        """The model's sample rate, STFT and window length (from its model file)."""
        return self.separator.settings

    @torch.no_grad()
    def __call__(self, magnitudes: torch.Tensor, frames: slice | None = None) -> torch.Tensor:
        """magnitudes (W, T, F) of W context windows -> dialogue masks (W, T, F) in [0, 1]; with `frames`, the
        masks of those frames only (W, len(frames), F)."""
        power = self.separator.magnitudes(magnitudes, frames).square()          # (W, K, T', F)
        return power[:, self.dialogue].sum(dim=1) / (power.sum(dim=1) + EPS)
