"""Device choice and the CPU runtime setting that keeps freed memory in the process."""
from __future__ import annotations

import ctypes
import os
import platform

import pytest
import torch

from pipeline.models import device as device_module
from pipeline.models.device import keep_freed_memory, pick_device


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are a glibc feature")
def test_glibc_accepts_the_thresholds():
    assert keep_freed_memory() is True


def test_other_allocators_are_left_alone(monkeypatch):
    def no_glibc(name):
        raise OSError(f"{name}: not found")

    monkeypatch.setattr(ctypes, "CDLL", no_glibc)
    assert keep_freed_memory() is False


def test_cpu_device_uses_every_allowed_core_and_keeps_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(device_module, "keep_freed_memory", lambda: calls.append(True) or True)
    threads = torch.get_num_threads()
    try:
        assert pick_device("cpu") == torch.device("cpu")
        assert calls == [True] and torch.get_num_threads() == len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(threads)


def test_cuda_requested_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda")
    assert pick_device("auto") == torch.device("cpu")
