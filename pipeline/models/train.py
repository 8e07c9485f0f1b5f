"""Training one variant, resumably and deterministically.

Adam with default parameters; validation every `validate_every` steps; early stopping after `patience`
validations without a better validation reconstruction loss; the best weights are the model that is written.

Resume: the full training state (weights, optimiser, noise generator, data position, early-stopping state,
curve) is checkpointed atomically at every validation into a scratch folder outside the DVC outputs (DVC deletes
outputs before a stage runs). A killed run that is started again continues from its last checkpoint and, on the
same device, ends with the same weights as an uninterrupted run. The scratch folder is keyed by a fingerprint of
everything that determines the result, so a changed parameter or dataset never resumes a stale run.

Several processes (`torchrun --nproc_per_node=N -m stages.train ...`, process group joined by the caller, see
`pipeline.orchestration.distributed`): DistributedDataParallel. Every rank walks the same deterministic batch
order and trains on its own contiguous part of each batch; gradients are averaged so that the update is the one
of the whole batch (each part's loss is weighted by its share). Batch-norm statistics are per rank. Rank 0
validates, decides early stopping for all ranks, and alone writes checkpoints (with every rank's noise
generator, so a killed run resumes), the model and the reports. The scratch folder is keyed by the number of
processes too, so a run never resumes another process count's checkpoint.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from pipeline.config import Params
from pipeline.models.checkpoint import MODEL_FORMAT, load_safely, save_atomic, save_model
from pipeline.models.device import pick_device
from pipeline.models.data import Batch, MixtureSplit
from pipeline.models.objective import Objective, compute
from pipeline.models.vae import ModelShape, NonNegativeVAE
from pipeline.shards import write_json

log = logging.getLogger(__name__)

FAULT_ENV = "PIPELINE_FAULT_KILL_AT_STEP"  # test hook: SIGKILL this process right after the given step
CURVE_COLUMNS = ("step", "epoch", "train_loss", "valid_loss", "valid_reconstruction", "valid_kl",
                 "valid_classification", "seconds")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


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
    train_seconds: float = 0.0
    curve: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingSetup:
    """What a run of one variant is made of, resolved from the parameters."""

    name: str
    dataset: str
    shape: ModelShape
    objective: Objective
    batch_size: int
    learning_rate: float
    patience: int
    max_steps: int
    validate_every: int
    seed: int
    shuffle_groups: int

    def fingerprint(self, data_checksums: list[str], world_size: int = 1) -> str:
        """sha256 of everything that determines the trained weights (the process count when more than one)."""
        content: dict[str, Any] = {"setup": asdict(self), "data": data_checksums, "model_format": MODEL_FORMAT}
        if world_size > 1:
            content["world_size"] = world_size
        payload = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


def resolve_setup(name: str, params: Params, classes: list[str], clip_samples: int) -> TrainingSetup:
    """Combine the variant, model, train and stft parameters for variant `name`."""
    if name not in params.variants:
        raise ValueError(f"unknown variant {name!r}; params.yaml defines {sorted(params.variants)}")
    variant, train, model = params.variants[name], params.train, params.model
    expected = list(params.datasets[variant.dataset].class_names)
    if classes != expected:
        raise ValueError(f"dataset {variant.dataset} on disk has classes {classes}, but params.yaml defines "
                         f"{expected}; re-run its mix stage (dvc repro mix@{variant.dataset})")
    shape = ModelShape(num_classes=len(classes), bins=params.stft.bins, frames=params.stft.frames(clip_samples),
                       filters=model.filters, kernel=model.kernel, stride=model.stride, hidden=model.hidden,
                       latent=model.latent, variational=variant.model == "vae")
    objective = Objective(supervision=variant.supervision, loss=variant.loss,
                          beta=variant.beta if variant.beta is not None else train.beta,
                          class_weight=train.class_loss_weight, stft=params.stft, precision=train.precision)
    return TrainingSetup(name=name, dataset=variant.dataset, shape=shape, objective=objective,
                         batch_size=train.batch_size, learning_rate=train.learning_rate,
                         patience=variant.patience or train.patience, max_steps=train.schedule.max_steps,
                         validate_every=train.schedule.validate_every, seed=train.seed,
                         shuffle_groups=train.shuffle_groups)


def build_model(shape: ModelShape, seed: int) -> NonNegativeVAE:
    """A freshly initialised model; the initialisation depends only on `seed` (global RNG state is restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NonNegativeVAE(shape)


@torch.no_grad()
def evaluate_objective(model: NonNegativeVAE, split: MixtureSplit, objective: Objective, batch_size: int,
                       device: torch.device) -> dict[str, float]:
    """Mean objective terms over a whole split, in evaluation mode (z = μ, running batch-norm statistics)."""
    model.eval()
    sums: dict[str, float] = {}
    for batch in split.batches(batch_size, shuffle=False, with_sources=objective.needs_sources):
        terms = compute(model, batch.to(device), objective).as_floats()
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value * batch.size
    return {key: value / split.size for key, value in sums.items()}


def train_variant(name: str, params: Params, data_dir: Path, out_dir: Path, reports_dir: Path,
                  scratch_root: Path, progress: bool = True) -> dict[str, Any]:
    """Train variant `name` on `data_dir` (a mixture dataset); write `out_dir/model.pt` and the reports."""
    cache = params.train.cache_mb << 20
    train_split = MixtureSplit(Path(data_dir) / "train", cache_bytes=cache)
    valid_split = MixtureSplit(Path(data_dir) / "valid", cache_bytes=cache)
    for split_name, split in (("train", train_split), ("valid", valid_split)):
        if split.size == 0:
            raise ValueError(f"the {split_name} split of {data_dir} is empty; training needs mixtures in it")
    setup = resolve_setup(name, params, train_split.classes, train_split.clip_samples)
    rank, world = _world()
    if world > 1 and min(setup.batch_size, train_split.size) < world:
        raise ValueError(f"{name}: batches of {min(setup.batch_size, train_split.size)} mixtures cannot be split "
                         f"between {world} processes; use fewer processes or a larger batch_size")
    device = _rank_device(pick_device(params.train.device), world)
    checksums = [s["sha256"] for split in ("train", "valid")
                 for s in json.loads((Path(data_dir) / split / "manifest.json").read_text())["shards"]]
    scratch = Path(scratch_root) / f"{name}-{setup.fingerprint(checksums, world)[:16]}"
    runner = _Run(setup, train_split, valid_split, device, scratch, progress and rank == 0, rank, world)
    runner.run()
    if rank != 0:
        return runner.summary(device)  # rank 0 writes the outputs
    info = {"variant": name, "dataset": setup.dataset, "classes": train_split.classes,
            "sample_rate": train_split.sample_rate, "clip_samples": train_split.clip_samples,
            "target_rms": params.audio.target_rms,
            "stft": asdict(params.stft), "objective": {k: v for k, v in asdict(setup.objective).items() if k != "stft"},
            "train": {k: v for k, v in asdict(setup).items() if k not in ("shape", "objective")},
            "step": runner.state.best_step, "valid_reconstruction": runner.state.best_valid,
            "data_shards": checksums}
    save_model(Path(out_dir) / "model.pt", runner.model, runner.best_state, info)
    summary = runner.summary(device)
    _write_reports(name, runner.state.curve, summary, Path(reports_dir))
    shutil.rmtree(scratch, ignore_errors=True)
    return summary


class _Run:
    """The training loop of one setup; `state`, `model` and `best_state` are its results."""

    def __init__(self, setup: TrainingSetup, train: MixtureSplit, valid: MixtureSplit, device: torch.device,
                 scratch: Path, progress: bool, rank: int = 0, world: int = 1):
        self.setup, self.train, self.valid, self.device = setup, train, valid, device
        self.rank, self.world = rank, world
        self.checkpoint = scratch / "last.pt"
        self.progress = progress
        self.model = build_model(setup.shape, setup.seed).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=setup.learning_rate,
                                          fused=device.type in ("cpu", "cuda"))
        # rank 0 draws exactly the noise of a single-process run; other ranks their own stream
        self.generator = torch.Generator(device=device).manual_seed(setup.seed + _RANK_SEED_STRIDE * rank)
        self.state = TrainingState()
        self.best_state = _cpu_copy(self.model.state_dict())
        self.stopped = ""
        if self.checkpoint.is_file():
            self._resume()
        self.parallel = None
        if world > 1:
            self.parallel = torch.nn.parallel.DistributedDataParallel(
                _ObjectiveModule(self.model, setup.objective), device_ids=[device.index] if device.type == "cuda"
                else None, find_unused_parameters=True)  # decoders of classes absent from a part get no gradient

    def run(self) -> None:
        setup = self.setup
        drop_last = self.train.size >= setup.batch_size
        bar = tqdm(total=setup.max_steps, initial=self.state.step, desc=f"train {setup.name}", unit="step",
                   disable=not self.progress)
        while not self.stopped and self.state.step < setup.max_steps:
            started = time.perf_counter()
            batches = self.train.batches(setup.batch_size, shuffle=True, seed=setup.seed, epoch=self.state.epoch,
                                         drop_last=drop_last, shuffle_groups=setup.shuffle_groups,
                                         with_sources=setup.objective.needs_sources)
            for index, batch in enumerate(batches):
                if index < self.state.position:
                    continue  # resuming mid-epoch: these batches were used before the interruption
                loss = self._step(batch)
                self.state.position = index + 1
                self.state.train_seconds += time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}",
                                mix_per_s=f"{self.state.step * setup.batch_size / max(self.state.train_seconds, 1e-9):.0f}")
                if self.state.step % setup.validate_every == 0 or self.state.step >= setup.max_steps:
                    self._validate()
                _fault_hook(self.state.step)
                if self.stopped or self.state.step >= setup.max_steps:
                    break
                started = time.perf_counter()
            else:
                self.state.epoch += 1
                self.state.position = 0
        bar.close()
        if not self.stopped:
            self.stopped = "max_steps"
        if self.state.best_step < 0:
            raise TrainingDivergedError(f"{setup.name}: no finite validation loss in {self.state.step} steps")

    def summary(self, device: torch.device) -> dict[str, Any]:
        state = self.state
        return {
            "best_step": state.best_step,
            "best_valid_reconstruction": round(state.best_valid, 6),
            "steps": state.step,
            "epochs": round(state.step * self.setup.batch_size / self.train.size, 3),
            "stopped_by": self.stopped,
            "train_seconds": round(state.train_seconds, 2),
            "mixtures_per_second": round(state.step * self.setup.batch_size / max(state.train_seconds, 1e-9), 1),
            "device": device.type,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }

    def _step(self, batch) -> float:
        self.model.train()
        if self.parallel is not None:
            return self._parallel_step(batch)
        terms = compute(self.model, batch.to(self.device), self.setup.objective, self.generator)
        loss = terms.total.item()
        self._check_finite(loss)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        return self._count(loss)

    def _parallel_step(self, batch: Batch) -> float:
        """This rank's contiguous part of the batch; its mean loss weighted by its share, so that DDP's average
        of the ranks' gradients is the gradient of the whole batch's mean loss."""
        part = _part(batch, self.rank, self.world).to(self.device)
        total = self.parallel(part.mixture, part.labels, part.sources, self.generator)[0]
        whole = total.detach() * part.size
        dist.all_reduce(whole)  # every rank sees the whole batch's mean loss, so all stop together on NaN
        loss = whole.item() / batch.size
        self._check_finite(loss)
        self.optimizer.zero_grad(set_to_none=True)
        (total * (part.size * self.world / batch.size)).backward()
        self.optimizer.step()
        return self._count(loss)

    def _count(self, loss: float) -> float:
        self.state.step += 1
        self.state.running_sum += loss
        self.state.running_count += 1
        return loss

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
        if self.world > 1:  # rank 0's figures (its batch-norm statistics are the ones DDP broadcasts) for all
            shared = [valid]
            dist.broadcast_object_list(shared, src=0)
            valid = shared[0]
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

    def _save(self) -> None:
        extra = {}
        if self.world > 1:
            generators = [None] * self.world
            dist.all_gather_object(generators, self.generator.get_state().cpu())
            extra["generators"] = generators
        if self.rank == 0:
            save_atomic(self.checkpoint, {
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "best_state": self.best_state,
                "state": asdict(self.state), "stopped": self.stopped, **extra,
            })
        if self.world > 1:
            dist.barrier()  # the checkpoint is complete before any rank goes on (a kill then loses no step)

    def _resume(self) -> None:
        payload = load_safely(self.checkpoint, self.device)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        generator = payload["generators"][self.rank] if self.world > 1 else payload["generator"]
        self.generator.set_state(generator.cpu())
        self.best_state = payload["best_state"]
        self.state = TrainingState(**payload["state"])
        self.stopped = payload["stopped"]
        log.info("%s: resuming from %s at step %d", self.setup.name, self.checkpoint, self.state.step)


class _ObjectiveModule(torch.nn.Module):
    """The objective as a module's forward, so DistributedDataParallel sees the model run and syncs gradients."""

    def __init__(self, model: NonNegativeVAE, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, mixture: torch.Tensor, labels: torch.Tensor, sources: torch.Tensor | None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        terms = compute(self.model, Batch(mixture, labels, sources), self.objective, generator)
        return terms.total, terms.reconstruction, terms.kl, terms.classification


_RANK_SEED_STRIDE = 1_000_003


def _world() -> tuple[int, int]:
    """(rank, world size) of the process group this process joined; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _rank_device(device: torch.device, world: int) -> torch.device:
    """One GPU per rank (LOCAL_RANK); on CPU, the cores shared between the ranks of this machine."""
    if world == 1:
        return device
    if device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // local))
    return device


def _part(batch: Batch, rank: int, world: int) -> Batch:
    """Rows of `batch` for `rank`: contiguous, sizes differ by at most one."""
    bounds = [batch.size * r // world for r in range(world + 1)]
    rows = slice(bounds[rank], bounds[rank + 1])
    return Batch(batch.mixture[rows], batch.labels[rows], None if batch.sources is None else batch.sources[rows])


def _cpu_copy(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state_dict.items()}


def _fault_hook(step: int) -> None:
    if os.environ.get(FAULT_ENV) == str(step):
        os.kill(os.getpid(), signal.SIGKILL)


def _write_reports(name: str, curve: list[dict[str, float]], summary: dict[str, Any], reports_dir: Path) -> None:
    from pipeline.reports.plots import plot_training_curve

    reports_dir.mkdir(parents=True, exist_ok=True)
    with open(reports_dir / f"{name}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CURVE_COLUMNS)
        writer.writeheader()
        for row in curve:
            writer.writerow({key: (round(row[key], 6) if isinstance(row[key], float) else row[key])
                             for key in CURVE_COLUMNS})
    write_json(reports_dir / f"{name}.json", summary)
    plot_training_curve(curve, reports_dir / f"{name}.png", title=name)
