"""Loading the self-describing model files of the baselines' networks (DRNN, deep clustering): one checked path."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from pipeline.models.checkpoint import load_safely


def load_network(path: str | Path, kind: str, file_format: int, what: str, build: Callable[[dict], nn.Module],
                 device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """A model file of `kind` / `file_format` -> (the network `build(shape)` with its weights, in evaluation mode on
    `device`; the file's info without the weights); ValueError naming the file (as `what`) for anything else: another
    kind of file, or weights that do not fit the recorded shape."""
    payload = load_safely(path, "cpu")
    if payload.get("kind") != kind or payload.get("format") != file_format:
        raise ValueError(f"{path} is not a {what} model file (kind {payload.get('kind')!r}, format "
                         f"{payload.get('format')!r}; expected kind {kind!r}, format {file_format})")
    try:
        model = build(payload["shape"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: its weights do not fit its recorded shape ({err}); retrain it") from err
    return model.eval().to(device), {k: v for k, v in payload.items() if k != "state_dict"}
