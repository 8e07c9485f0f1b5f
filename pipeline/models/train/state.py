"""The plain (non-tensor) state of a training run: what a resumed run continues from and callbacks read."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainingState:
    """Everything besides tensors that a resumed run needs."""

    step: int = 0
    epoch: int = 0
    position: int = 0             # batches of the current epoch already used
    best_step: int = -1
    best_valid: float = float("inf")
    bad_validations: int = 0
    running_sum: float = 0.0      # training loss since the last validation
    running_count: int = 0
    train_seconds: float = 0.0    # wall-clock: a timing, never in a DVC output
    # one row per validation: step, epoch, train_loss, valid_loss, valid_reconstruction, valid_kl,
    # valid_classification, seconds (train_seconds then)
    curve: list[dict[str, float]] = field(default_factory=list)
