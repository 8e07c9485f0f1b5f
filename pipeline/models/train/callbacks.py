"""Callbacks of the training loop: code that runs after each step and each validation, outside the loop itself.

A callback is passed to `train_variant` or installed for the whole process with `install` (how a test reaches a
run that a stage entry point starts, e.g. to kill the process at a given step and prove that it resumes).
"""
from __future__ import annotations

from pipeline.models.train.state import TrainingState

_INSTALLED: list[Callback] = []


class Callback:
    """Override either hook; `state` is the run's live state (read it, do not change it)."""

    def on_step(self, state: TrainingState) -> None:
        """After the optimisation step `state.step` (and after its validation, when it had one)."""

    def on_validation(self, state: TrainingState) -> None:
        """After the validation at `state.step` and its checkpoint; `state.curve[-1]` is its row."""


def install(callback: Callback) -> None:
    """Make every training run of this process call `callback` (until `remove`)."""
    _INSTALLED.append(callback)


def remove(callback: Callback) -> None:
    """Undo `install(callback)`."""
    if callback not in _INSTALLED:
        raise ValueError(f"callback {callback!r} is not installed; installed: {_INSTALLED}")
    _INSTALLED.remove(callback)


def installed() -> tuple[Callback, ...]:
    """The callbacks installed for this process, in installation order."""
    return tuple(_INSTALLED)
