"""Multi-process training with torchrun: the launch command and the process group of one run.

`torchrun --nproc_per_node=N -m stages.train <variant> ...` starts N processes with RANK, LOCAL_RANK and
WORLD_SIZE set; each joins one process group (NCCL on CUDA, gloo on CPU) and `pipeline.models.train` splits
every batch between them (DistributedDataParallel). Rank 0 alone writes checkpoints, the model and reports.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Sequence


def in_distributed_env() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def torchrun_command(processes: int, module_args: Sequence[str]) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc_per_node=N <module_args>` with this interpreter."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            *module_args]


@contextmanager
def distributed_training():
    """Join the process group when started by torchrun (no-op in a single process); leave it afterwards."""
    if not in_distributed_env():
        yield
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        yield
        return
    backend = "nccl" if torch.cuda.is_available() and os.environ.get("PIPELINE_DIST_BACKEND") != "gloo" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    try:
        yield
    finally:
        dist.destroy_process_group()
