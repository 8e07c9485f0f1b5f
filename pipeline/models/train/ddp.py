"""One optimisation step on one process or on each rank of a process group (DistributedDataParallel).

Every rank walks the same deterministic batch order and trains on its own contiguous part of each batch; its
part's mean loss is weighted by its share, so that DDP's average of the ranks' gradients is the gradient of the
whole batch's mean loss. In a single process the part is the whole batch and the weight is exactly 1. The
process group is joined by the caller (`pipeline.orchestration.distributed`); without one, every collective
below is skipped.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import torch
import torch.distributed as dist

from pipeline.models.data import Batch
from pipeline.models.objective import Objective
from pipeline.models.vae import NonNegativeVAE

RANK_SEED_STRIDE = 1_000_003  # rank r draws its noise from seed + r * stride; rank 0 that of a single process


def world() -> tuple[int, int]:
    """(rank, world size) of the process group this process joined; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank_device(device: torch.device, world_size: int) -> torch.device:
    """One GPU per rank (LOCAL_RANK); on CPU, the cores shared between the ranks of this machine."""
    if world_size == 1:
        return device
    if device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // local))
    return device


def part(batch: Batch, rank: int, world_size: int) -> Batch:
    """Rows of `batch` for `rank`: contiguous, sizes differ by at most one."""
    if world_size == 1:
        return batch
    bounds = [batch.size * r // world_size for r in range(world_size + 1)]
    rows = slice(bounds[rank], bounds[rank + 1])
    return Batch(batch.mixture[rows], batch.labels[rows], None if batch.sources is None else batch.sources[rows])


class ObjectiveModule(torch.nn.Module):
    """The objective as a module's forward, so DistributedDataParallel sees the model run and syncs gradients."""

    def __init__(self, model: NonNegativeVAE, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, mixture: torch.Tensor, labels: torch.Tensor, sources: torch.Tensor | None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        terms = self.objective.terms(self.model, Batch(mixture, labels, sources), generator)
        return terms.total, terms.reconstruction, terms.kl, terms.classification


class Step:
    """The optimisation step of `model` under `objective`, on this process's part of every batch."""

    def __init__(self, model: NonNegativeVAE, objective: Objective, optimizer: torch.optim.Optimizer,
                 device: torch.device, rank: int = 0, world_size: int = 1):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.rank, self.world_size = rank, world_size
        self.module: torch.nn.Module = ObjectiveModule(model, objective)
        if world_size > 1:
            self.module = torch.nn.parallel.DistributedDataParallel(
                self.module, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True)  # decoders of classes absent from a part get no gradient

    def __call__(self, batch: Batch, generator: torch.Generator, check: Callable[[float], None]) -> float:
        """One step on `batch`; returns the whole batch's mean loss. `check(loss)` runs before any update (it
        raises to stop); every rank sees the same loss, so all stop together."""
        self.model.train()
        own = part(batch, self.rank, self.world_size).to(self.device)
        total = self.module(own.mixture, own.labels, own.sources, generator)[0]
        if self.world_size == 1:
            loss = total.item()
        else:
            whole = total.detach() * own.size
            dist.all_reduce(whole)
            loss = whole.item() / batch.size
        check(loss)
        self.optimizer.zero_grad(set_to_none=True)
        (total * (own.size * self.world_size / batch.size)).backward()
        self.optimizer.step()
        return loss


def from_rank_zero(value: Any, world_size: int) -> Any:
    """Rank 0's `value` on every rank (a picklable object)."""
    if world_size == 1:
        return value
    shared = [value]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def gather(value: Any, world_size: int) -> list[Any] | None:
    """Every rank's `value`, in rank order, on every rank; None in a single process."""
    if world_size == 1:
        return None
    values: list[Any] = [None] * world_size
    dist.all_gather_object(values, value)
    return values


def barrier(world_size: int) -> None:
    """Wait for every rank (no-op in a single process)."""
    if world_size > 1:
        dist.barrier()
