"""From a trained model to a dialogue mask: context windows of magnitude frames -> soft mask of the dialogue.

Every class is decoded at z = μ and weighted by the encoder's class probability h_k (a soft version of the
`classify` labels, so masks do not jump when a class fades in or out); the dialogue mask is
Σ_{k ∈ dialogue} (h_k ŝ_k)² / Σ_k (h_k ŝ_k)², the Wiener mask of eq. 9 summed over the dialogue classes.
Each window is scaled to the RMS level the model was trained at, since real recordings come at any level.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from pipeline.models.checkpoint import load_model
from pipeline.models.vae import NonNegativeVAE

EPS = 1e-10
MAX_LEVEL_GAIN = 1000.0  # never amplify near-silence by more than 60 dB to reach the training level


@dataclass
class DialogueMasker:
    model: NonNegativeVAE
    dialogue: torch.Tensor   # (K,) bool: which classes are dialogue
    target_rms: float
    n_fft: int
    window_power: float      # mean of the squared analysis window

    @classmethod
    def load(cls, path: str | Path, dialogue_classes: Sequence[str], device: str = "cpu") -> "DialogueMasker":
        """Load a model file; `dialogue_classes` must be some, but not all, of its classes."""
        model, info = load_model(path, device)
        classes = list(info["classes"])
        unknown = sorted(set(dialogue_classes) - set(classes))
        if unknown or not dialogue_classes:
            raise ValueError(f"model {path} has classes {classes}; dialogue classes {list(dialogue_classes)} "
                             f"must be some of them")
        if set(dialogue_classes) == set(classes):
            raise ValueError(f"model {path}: every class ({classes}) is dialogue, so there is no background to "
                             f"separate; use a model trained on dialogue and other sounds (e.g. d2 or d3)")
        n_fft = int(info["stft"]["n_fft"])
        window = torch.hann_window(n_fft, periodic=True)
        dialogue = torch.tensor([c in dialogue_classes for c in classes], device=device)
        return cls(model, dialogue, float(info["target_rms"]), n_fft, float(window.square().mean()))

    @torch.no_grad()
    def __call__(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """magnitudes (W, T, F) of W context windows -> dialogue masks (W, T, F) in [0, 1]."""
        level = self._rms(magnitudes)
        scale = (self.target_rms / level.clamp_min(self.target_rms / MAX_LEVEL_GAIN)).view(-1, 1, 1)
        x = magnitudes * scale
        mu, _, logits = self.model.encode(x)
        weights = torch.sigmoid(logits)                                          # (W, K)
        power = (weights[:, :, None, None] * self.model.decode_all(mu)).square()  # (W, K, T, F)
        return power[:, self.dialogue].sum(dim=1) / (power.sum(dim=1) + EPS)

    def _rms(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """Signal RMS of each window from its one-sided magnitudes (Parseval): (W, T, F) -> (W,)."""
        power = magnitudes.square()
        full = 2 * power.sum(dim=-1) - power[..., 0] - power[..., -1]  # both halves of the spectrum, DC/Nyquist once
        return torch.sqrt(full.mean(dim=-1) / (self.n_fft ** 2 * self.window_power))
