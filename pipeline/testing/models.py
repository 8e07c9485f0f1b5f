"""Tiny untrained model files for tests: the provenance `enhance` reads, saved the way training saves it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.models.checkpoint import save_model
from pipeline.models.train import build_model
from pipeline.models.vae import ModelShape

TINY_INFO = {"stft": {"n_fft": 400, "hop_length": 200}, "target_rms": 0.05, "sample_rate": 8600,
             "clip_samples": 8600}


def save_tiny_vae(path: Path, classes: list[str], seed: int = 3, frames: int = 44, bins: int = 201,
                  drop: tuple[str, ...] = (), **info: Any) -> Path:
    """A tiny VAE model file at `path` with `classes`; `info` overrides `TINY_INFO` and `drop` removes keys of it
    (an older file). The network takes `frames` x `bins` windows."""
    model = build_model(ModelShape(num_classes=len(classes), bins=bins, frames=frames, filters=(8, 8, 16), hidden=32,
                                   latent=4), seed=seed)
    stored = {key: value for key, value in {**TINY_INFO, **info}.items() if key not in drop}
    save_model(path, model, model.state_dict(), {"classes": list(classes), **stored})
    return Path(path)
