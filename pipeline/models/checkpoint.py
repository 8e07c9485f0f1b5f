"""Saving and loading models and training state without executing code (`torch.load(weights_only=True)`).

A model file carries what made it: the network shape, the dataset's classes, the variant and training
parameters, the step and validation loss it was chosen at, library versions, and the training data's shards.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from pipeline.models.vae import ModelShape, NonNegativeVAE

MODEL_FORMAT = 2  # 2: weights stored input-major (Dense, polyphase TimeConvTranspose, ClassLatents)


def save_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename: a killed process never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_safely(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True` (tensors and plain containers only; no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; train it first (dvc repro train@<variant>)")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # unpickling errors come in many types; all mean "not a safe checkpoint"
        raise ValueError(f"{path} is not a loadable checkpoint ({type(err).__name__}: {err})") from err


def versions() -> dict[str, str]:
    return {"torch": str(torch.__version__), "python": platform.python_version()}


def save_model(path: str | Path, model: NonNegativeVAE, state_dict: dict[str, torch.Tensor],
               info: dict[str, Any]) -> None:
    """Write a model file: `state_dict` (e.g. the best one) on CPU, the network shape and `info`."""
    save_atomic(path, {
        "format": MODEL_FORMAT,
        "shape": model.shape.as_dict(),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in state_dict.items()},
        "versions": versions(),
        **info,
    })


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[NonNegativeVAE, dict[str, Any]]:
    """A model file -> (model in evaluation mode on `device`, its info)."""
    payload = load_safely(path, "cpu")
    if payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: model format {payload.get('format')!r}, expected {MODEL_FORMAT}; the network's "
                         f"parameter layout changed since it was saved: retrain it (dvc repro train@<variant>)")
    shape = dict(payload["shape"])
    shape["filters"] = tuple(shape["filters"])
    model = NonNegativeVAE(ModelShape(**shape))
    model.load_state_dict(payload["state_dict"])
    model.eval().to(device)
    return model, {k: v for k, v in payload.items() if k not in ("state_dict",)}
