"""Where training and evaluation run: the device, and the CPU runtime settings that make small-batch training fast.

On a CPU a training step allocates and frees hundreds of MB of activations and gradients. glibc returns freed
blocks above 128 KiB to the kernel (its default mmap and trim thresholds), so every step touches those pages
afresh and pays one page fault per 4 KiB, about 1 µs each on a VM: ~4,000 faults, several ms per step, and
caches cold after each. Keeping freed memory in the process (as jemalloc/tcmalloc would) removes them; the
price is a resident size that stays at the step's peak, which a training process reaches anyway.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

import torch

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_MMAP_THRESHOLD_MAX = 32 << 20                  # glibc's ceiling on 64-bit: larger values are ignored


def pick_device(spec: str = "auto") -> torch.device:
    """`auto`: CUDA when present, else CPU (using every core this process may run on, freed memory kept)."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but CUDA is not available; use device: auto or cpu")
    if device.type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
        keep_freed_memory()
    return device


def keep_freed_memory() -> bool:
    """Ask glibc to serve blocks up to 32 MiB from its heap and not to trim it; False where that is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # musl, macOS, Windows: their allocators behave differently
        return False
    kept = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    if not kept:
        log.debug("mallopt refused the thresholds; freed memory goes back to the kernel as usual")
    return kept
