"""Resume: the full training state, checkpointed atomically at every validation into a scratch folder.

The scratch folder lies outside the DVC outputs (DVC deletes outputs before a stage runs) and is keyed by a
fingerprint of everything that determines the result (the process count included), so a changed parameter,
dataset or process count never resumes a stale run. A killed run that is started again continues from its last
checkpoint and, on the same device, ends with the same weights as an uninterrupted run. With several processes,
rank 0 alone writes the checkpoint, holding every rank's noise generator.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.models.checkpoint import load_safely, save_atomic
from pipeline.models.train.state import TrainingState


def scratch_folder(scratch_root: Path, name: str, fingerprint: str) -> Path:
    """The scratch folder of variant `name`'s run with this fingerprint."""
    return Path(scratch_root) / f"{name}-{fingerprint[:16]}"


@dataclass
class Snapshot:
    """What a checkpoint holds besides the model and optimiser, as the loop continues from it."""

    generator: torch.Tensor              # this rank's noise generator state
    best_state: dict[str, torch.Tensor]  # the best weights so far (on CPU)
    state: TrainingState
    stopped: str                         # "" while running, else why it stopped


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator, best_state: dict[str, torch.Tensor], state: TrainingState,
                    stopped: str, generators: list[torch.Tensor] | None = None) -> None:
    """Write the checkpoint atomically; `generators`: every rank's generator state, in rank order (several
    processes only)."""
    extra: dict[str, Any] = {} if generators is None else {"generators": generators}
    save_atomic(path, {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
        "best_state": best_state, "state": asdict(state), "stopped": stopped, **extra,
    })


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                    rank: int = 0, world_size: int = 1) -> Snapshot:
    """Load the checkpoint at `path` into `model` and `optimizer`; returns the rest for rank `rank`."""
    payload = load_safely(path, device)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if world_size > 1:
        if len(payload.get("generators", [])) != world_size:
            raise ValueError(f"{path}: holds {len(payload.get('generators', []))} ranks' generators, expected "
                             f"{world_size}; delete it to train from the start")
        generator = payload["generators"][rank]
    else:
        generator = payload["generator"]
    return Snapshot(generator=generator.cpu(), best_state=payload["best_state"],
                    state=TrainingState(**payload["state"]), stopped=payload["stopped"])
