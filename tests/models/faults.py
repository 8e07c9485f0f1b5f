"""Fault injection for the resume tests, through the training loop's callbacks (nothing in the loop itself):

    python -m tests.models.faults --kill-at-step N <stages.train arguments>

runs the train stage with a callback that SIGKILLs the process right after step N (every rank, under torchrun).
"""
from __future__ import annotations

import os
import signal
import sys

from pipeline.models.train import Callback, TrainingState, install


class KillAtStep(Callback):
    """SIGKILL this process right after optimisation step `step` (after its validation, if it has one)."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, state: TrainingState) -> None:
        if state.step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] != "--kill-at-step" or not argv[1].isdigit():
        raise SystemExit(f"usage: python -m tests.models.faults --kill-at-step N <stages.train arguments>; got {argv}")
    install(KillAtStep(int(argv[1])))
    from stages.train import main as train

    train(argv[2:])


if __name__ == "__main__":
    main()
