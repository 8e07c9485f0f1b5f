"""Fan-out: run one function over many items in parallel and get the results back in order.

The library's parallel steps (decoding a corpus batch by batch, mixing a dataset split by split) go through a
`Fanout`, so the same code runs inline, on a local pool, on a Dask cluster or as Prefect tasks (`flows/`), and
writes the same bytes: results always come back in submission order and the caller writes them sequentially.
Items and results must be picklable and small (paths, counts), never arrays: tasks write their bulk to files.

Library functions take an explicit `fanout=`; when a caller in between does not pass one on, the one installed
with `use_fanout` (a context variable, so per thread) applies. None installed: the library's own default.
"""
from __future__ import annotations

import contextvars
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol, Sequence

_CURRENT: contextvars.ContextVar["Fanout | None"] = contextvars.ContextVar("pipeline_fanout", default=None)


class Fanout(Protocol):
    """Runs `fn(item)` for every item; yields the results in the order of `items`."""

    #: False when items run in other processes or machines (results then travel as files or small values)
    in_process: bool

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, task: str,
            names: Sequence[str] | None = None) -> Iterator[Any]:
        """`task` names the kind of work (a task name in Prefect), `names` each item (a task run name)."""
        ...


class InlineFanout:
    """Everything in this process, one item after the other."""

    in_process = True

    def map(self, fn, items, *, task, names=None):
        for item in items:
            yield fn(item)


class ExecutorFanout:
    """A local thread or process pool; at most `window` items are in flight (bounds memory and scratch files)."""

    def __init__(self, kind: str = "processes", workers: int = 1, window: int | None = None):
        if kind not in ("threads", "processes"):
            raise ValueError(f"executor kind {kind!r}; expected threads or processes")
        self.kind, self.workers = kind, max(1, workers)
        self.window = window or 2 * self.workers
        self.in_process = kind == "threads"

    def map(self, fn, items, *, task, names=None):
        pool: Executor = (ThreadPoolExecutor if self.kind == "threads" else ProcessPoolExecutor)(self.workers)
        with pool:
            yield from ordered(lambda item: pool.submit(fn, item), items, self.window, lambda f: f.result())


class DaskFanout:
    """A Dask cluster (`distributed`), without Prefect: the scheduler at `address`."""

    in_process = False

    def __init__(self, address: str, window: int | None = None):
        self.address, self.window = address, window

    def map(self, fn, items, *, task, names=None):
        from distributed import Client

        with Client(self.address, set_as_default=False) as client:
            window = self.window or 2 * max(1, sum(client.nthreads().values()))
            keys = iter(names or [f"{task}-{i}" for i in range(len(items))])
            yield from ordered(lambda item: client.submit(fn, item, key=f"{task}:{next(keys)}", pure=False),
                               items, window, lambda f: f.result())


def ordered(submit: Callable[[Any], Any], items: Sequence[Any], window: int,
            result: Callable[[Any], Any]) -> Iterator[Any]:
    """Submit items keeping at most `window` in flight; yield results in item order."""
    pending: deque = deque()
    for item in items:
        pending.append(submit(item))
        if len(pending) >= max(1, window):
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())


def current_fanout() -> Fanout | None:
    """The fan-out installed by `use_fanout` in this context, if any."""
    return _CURRENT.get()


@contextmanager
def use_fanout(fanout: Fanout | None):
    """Install `fanout` for library calls made inside the block (this thread/context only)."""
    token = _CURRENT.set(fanout)
    try:
        yield fanout
    finally:
        _CURRENT.reset(token)
