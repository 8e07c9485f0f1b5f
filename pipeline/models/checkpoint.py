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
MODEL_KEYS = ("format", "shape", "state_dict")


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
    """A model file -> (model in evaluation mode on `device`, its info).

    ValueError naming the file for anything that is not one of our model files (a list, a dict with other keys,
    a network that does not fit its stored shape) and for a non-finite weight (naming the first such tensor).
    """
    payload = load_safely(path, "cpu")
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: a torch file holding a {type(payload).__name__}; expected a model file (a dict "
                         f"with {', '.join(MODEL_KEYS)})")
    missing = [key for key in MODEL_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{path}: a torch file without {', '.join(missing)} (keys: {sorted(map(str, payload))[:8]}); "
                         f"expected a model file written by train (keys {', '.join(MODEL_KEYS)})")
    if payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: model format {payload.get('format')!r}, expected {MODEL_FORMAT}; the network's "
                         f"parameter layout changed since it was saved: retrain it (dvc repro train@<variant>)")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise ValueError(f"{path}: state_dict is not a mapping of tensor names to tensors")
    check_finite(path, state)
    try:
        shape = dict(payload["shape"])
        shape["filters"] = tuple(shape["filters"])
        model = NonNegativeVAE(ModelShape(**shape))
        model.load_state_dict(state)
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise ValueError(f"{path}: the network does not fit the stored shape {payload['shape']!r} "
                         f"({type(err).__name__}: {str(err).splitlines()[0]})") from err
    model.eval().to(device)
    return model, {k: v for k, v in payload.items() if k not in ("state_dict",)}


def check_finite(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    """ValueError naming the file and the first tensor holding NaN or infinite values (and how many)."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(f"{path}: weight {name} holds {bad} NaN or infinite values of {tensor.numel()}; "
                             f"expected finite weights: the file is damaged or its training diverged, retrain it")
