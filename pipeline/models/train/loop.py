"""The training loop of one setup: Adam with default parameters; validation every `validate_every` steps; early
stopping after `patience` validations without a better validation reconstruction loss; the best weights win.

With several processes (see `ddp`), rank 0 validates, decides early stopping for all ranks and alone writes
checkpoints; batch-norm statistics are per rank.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm import tqdm

from pipeline.models.data import MixtureSplit
from pipeline.models.objective import Objective
from pipeline.models.train import ddp
from pipeline.models.train.callbacks import Callback
from pipeline.models.train.resume import load_checkpoint, save_checkpoint
from pipeline.models.train.setup import TrainingSetup, build_model
from pipeline.models.train.state import TrainingState
from pipeline.models.vae import NonNegativeVAE

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@torch.no_grad()
def evaluate_objective(model: NonNegativeVAE, split: MixtureSplit, objective: Objective, batch_size: int,
                       device: torch.device) -> dict[str, float]:
    """Mean objective terms over a whole split, in evaluation mode (z = μ, running batch-norm statistics)."""
    model.eval()
    sums: dict[str, float] = {}
    for batch in split.batches(batch_size, shuffle=False, with_sources=objective.needs_sources):
        terms = objective.terms(model, batch.to(device)).as_floats()
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value * batch.size
    return {key: value / split.size for key, value in sums.items()}


class TrainingLoop:
    """The training loop of one setup; after `run`, `state`, `model` and `best_state` are its results."""

    def __init__(self, setup: TrainingSetup, train: MixtureSplit, valid: MixtureSplit, device: torch.device,
                 checkpoint: Path, progress: bool, rank: int = 0, world_size: int = 1,
                 callbacks: Sequence[Callback] = ()):
        self.setup, self.train, self.valid, self.device = setup, train, valid, device
        self.rank, self.world_size = rank, world_size
        self.checkpoint, self.progress, self.callbacks = checkpoint, progress, tuple(callbacks)
        self.model = build_model(setup.shape, setup.seed).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=setup.learning_rate,
                                          fused=device.type in ("cpu", "cuda"))
        self.generator = torch.Generator(device=device).manual_seed(setup.seed + ddp.RANK_SEED_STRIDE * rank)
        self.state = TrainingState()
        self.best_state = _cpu_copy(self.model.state_dict())
        self.stopped = ""
        if checkpoint.is_file():
            self._resume()
        self.step = ddp.Step(self.model, setup.objective, self.optimizer, device, rank, world_size)

    def run(self) -> None:
        """Train until early stopping or `max_steps`; raises TrainingDivergedError on a NaN or infinite loss."""
        setup, state = self.setup, self.state
        drop_last = self.train.size >= setup.batch_size
        bar = tqdm(total=setup.max_steps, initial=state.step, desc=f"train {setup.name}", unit="step",
                   disable=not self.progress)
        while not self.stopped and state.step < setup.max_steps:
            started = time.perf_counter()
            batches = self.train.batches(setup.batch_size, shuffle=True, seed=setup.seed, epoch=state.epoch,
                                         drop_last=drop_last, shuffle_groups=setup.shuffle_groups,
                                         with_sources=setup.objective.needs_sources)
            for index, batch in enumerate(batches):
                if index < state.position:
                    continue  # resuming mid-epoch: these batches were used before the interruption
                loss = self.step(batch, self.generator, self._check_finite)
                state.step += 1
                state.running_sum += loss
                state.running_count += 1
                state.position = index + 1
                state.train_seconds += time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}",
                                mix_per_s=f"{state.step * setup.batch_size / max(state.train_seconds, 1e-9):.0f}")
                if state.step % setup.validate_every == 0 or state.step >= setup.max_steps:
                    self._validate()
                for callback in self.callbacks:
                    callback.on_step(state)
                if self.stopped or state.step >= setup.max_steps:
                    break
                started = time.perf_counter()
            else:
                state.epoch += 1
                state.position = 0
        bar.close()
        if not self.stopped:
            self.stopped = "max_steps"
        if state.best_step < 0:
            raise TrainingDivergedError(f"{setup.name}: no finite validation loss in {state.step} steps")

    def summary(self) -> dict[str, Any]:
        """The run's outcome; the same on every run of the same setup and data on the same device."""
        state = self.state
        return {
            "best_step": state.best_step,
            "best_valid_reconstruction": round(state.best_valid, 6),
            "steps": state.step,
            "epochs": round(state.step * self.setup.batch_size / self.train.size, 3),
            "stopped_by": self.stopped,
            "device": self.device.type,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }

    def timing(self) -> dict[str, Any]:
        """The run's wall-clock figures (they differ on every run)."""
        state = self.state
        return {
            "train_seconds": round(state.train_seconds, 2),
            "mixtures_per_second": round(state.step * self.setup.batch_size / max(state.train_seconds, 1e-9), 1),
            "device": self.device.type,
        }

    def _check_finite(self, loss: float) -> None:
        if loss != loss or abs(loss) == float("inf"):
            last = f"{self.checkpoint} (step {self.state.curve[-1]['step']})" if self.state.curve else "none yet"
            raise TrainingDivergedError(f"{self.setup.name}: loss is {loss} at step {self.state.step + 1}; "
                                        f"last good checkpoint: {last}")

    def _validate(self) -> None:
        state = self.state
        valid = None
        if self.rank == 0:
            valid = evaluate_objective(self.model, self.valid, self.setup.objective, self.setup.batch_size,
                                       self.device)
        valid = ddp.from_rank_zero(valid, self.world_size)  # rank 0's batch-norm statistics are DDP's
        state.curve.append({
            "step": state.step, "epoch": state.epoch,
            "train_loss": state.running_sum / max(state.running_count, 1),
            "valid_loss": valid["loss"], "valid_reconstruction": valid["reconstruction"],
            "valid_kl": valid["kl"], "valid_classification": valid["classification"],
            "seconds": round(state.train_seconds, 3),
        })
        state.running_sum, state.running_count = 0.0, 0
        score = valid["reconstruction"]
        if score == score and score < state.best_valid:  # NaN never becomes the best
            state.best_valid, state.best_step, state.bad_validations = score, state.step, 0
            self.best_state = _cpu_copy(self.model.state_dict())
        else:
            state.bad_validations += 1
            if state.bad_validations >= self.setup.patience:
                self.stopped = "early_stopping"
        if self.rank == 0:
            log.info("%s step %d: valid reconstruction %.5g (best %.5g at step %d)", self.setup.name, state.step,
                     score, state.best_valid, state.best_step)
        self._save()
        for callback in self.callbacks:
            callback.on_validation(state)

    def _save(self) -> None:
        generators = ddp.gather(self.generator.get_state().cpu(), self.world_size)
        if self.rank == 0:
            save_checkpoint(self.checkpoint, self.model, self.optimizer, self.generator, self.best_state,
                            self.state, self.stopped, generators)
        ddp.barrier(self.world_size)  # the checkpoint is complete before any rank goes on (a kill loses no step)

    def _resume(self) -> None:
        snapshot = load_checkpoint(self.checkpoint, self.model, self.optimizer, self.device, self.rank,
                                   self.world_size)
        self.generator.set_state(snapshot.generator)
        self.best_state, self.state, self.stopped = snapshot.best_state, snapshot.state, snapshot.stopped
        log.info("%s: resuming from %s at step %d", self.setup.name, self.checkpoint, self.state.step)


def _cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state_dict.items()}
