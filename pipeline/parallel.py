"""The library's one parallel map: run `fn(item)` over many items and get the results back in item order.

Every library step that fans out (decoding a corpus, mixing the splits of a dataset, scoring test mixtures)
takes one `parallel=` argument, an object with the `ParallelMap.map` method:

- `Inline()`: this process, one item after the other (the default of every library function);
- `LocalPool("processes" | "threads", workers)`: a local pool, kept for the pool's lifetime (use it as a
  context manager, so several maps share one set of workers);
- `DaskMap(address)`: a Dask cluster (`distributed`) at a scheduler address;
- `flows.runners.PrefectMap`: Prefect tasks on the running flow's task runner (the Prefect side lives in
  `flows/`, so the library never imports Prefect).

Results always come back in submission order, so a caller that writes them sequentially writes the same bytes
whichever map ran the work (tested). Results travel in memory: a local pool or Dask pickles them back to the
caller, so `fn` and its items and results must be picklable (module-level functions, arrays, tables). At most
`window` items are in flight, which bounds memory.

This module is a leaf: it imports nothing from the library. (`enhance` also overlaps the decoding and encoding of
one stream with its separation, in order: `pipeline/enhance/background.py`; that is a pipeline, not a map.)
"""
from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from collections import deque
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

KINDS = ("threads", "processes")


class ParallelMap(Protocol):
    """Runs `fn(item)` for every item; yields the results in the order of `items`. A context manager: leaving
    it releases what the map started (a local pool's workers)."""

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *, task: str,
            names: Sequence[str] | None = None) -> Iterator[Any]:
        """`task` names the kind of work (a task name in Prefect and Dask), `names` each item."""
        ...

    def __enter__(self) -> "ParallelMap": ...

    def __exit__(self, *exc: Any) -> None: ...


class Inline:
    """Everything in this process, one item after the other."""

    def map(self, fn, items, *, task="task", names=None):
        for item in items:
            yield fn(item)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class LocalPool:
    """A local pool of `workers` threads or processes, started on first use and kept until `close()`.

    Processes start with "forkserver" where the platform has it (safe in threaded callers such as Prefect's
    thread task runner; `preload` modules are imported once in the server, so each worker starts in a fraction
    of a second), else "spawn". One worker runs inline: no start-up cost for no parallelism. Worker processes
    die with the process that made the pool, however it ends (kill -9 included): see `die_with_parent`.
    """

    def __init__(self, kind: str = "processes", workers: int = 1, *, window: int | None = None,
                 preload: Sequence[str] = ()):
        if kind not in KINDS:
            raise ValueError(f"parallel map kind {kind!r}; expected one of {KINDS}")
        if workers < 1:
            raise ValueError(f"workers={workers}; expected a positive number")
        self.kind, self.workers, self.preload = kind, workers, tuple(preload)
        self.window = window or 4 * workers
        self._executor: Executor | None = None

    def map(self, fn, items, *, task="task", names=None):
        if self.workers == 1:
            yield from Inline().map(fn, items, task=task)
            return
        executor = self._start()
        yield from ordered(lambda item: executor.submit(fn, item), items, self.window, lambda f: f.result())

    def _start(self) -> Executor:
        if self._executor is None:
            if self.kind == "threads":
                self._executor = ThreadPoolExecutor(self.workers)
            else:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=_process_context(self.preload),
                                                     initializer=die_with_parent, initargs=(os.getpid(),))
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DaskMap:
    """A Dask cluster (`distributed`) at the scheduler `address`; tasks are keyed `<task>:<name>`."""

    def __init__(self, address: str, window: int | None = None):
        self.address, self.window = address, window

    def map(self, fn, items, *, task="task", names=None):
        from distributed import Client

        with Client(self.address, set_as_default=False) as client:
            window = self.window or 2 * max(1, sum(client.nthreads().values()))
            keys = iter(names or [f"{task}-{i}" for i in range(len(items))])
            yield from ordered(lambda item: client.submit(fn, item, key=f"{task}:{next(keys)}", pure=False),
                               items, window, lambda f: f.result())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def parallel_map(kind: str = "processes", workers: int = 1, scheduler_address: str | None = None,
                 preload: Sequence[str] = ()) -> ParallelMap:
    """The map for these settings: Dask when `scheduler_address` is set, else a local pool (inline for 1)."""
    if scheduler_address:
        return DaskMap(scheduler_address)
    return LocalPool(kind, workers, preload=preload)


def ordered(submit: Callable[[Any], Any], items: Iterable[Any], window: int,
            result: Callable[[Any], Any]) -> Iterator[Any]:
    """Submit items keeping at most `window` in flight; yield their results in item order."""
    pending: deque = deque()
    for item in items:
        pending.append(submit(item))
        if len(pending) >= max(1, window):
            yield result(pending.popleft())
    while pending:
        yield result(pending.popleft())


def die_with_parent(parent_pid: int) -> None:
    """Initializer of a pool worker: exit as soon as process `parent_pid` (the pool's owner) has ended.

    Forkserver workers are children of the fork server, not of the pool's owner, and would otherwise outlive an
    owner killed by a signal it cannot catch (they wait on a queue whose other end they hold themselves). A
    daemon thread waits on a pidfd of the owner (Linux), else polls it twice a second.
    """
    try:
        handle = os.pidfd_open(parent_pid)
    except (AttributeError, OSError):  # no pidfd here (not Linux, or an old kernel), or the owner is gone
        handle = None
    if handle is None and not _alive(parent_pid):
        os._exit(1)
    threading.Thread(target=_exit_after, args=(parent_pid, handle), name="die-with-parent", daemon=True).start()


def _exit_after(parent_pid: int, handle: int | None) -> None:
    if handle is not None:
        select.select([handle], [], [])  # a pidfd turns readable when its process ends
    else:
        while _alive(parent_pid):
            time.sleep(0.5)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_context(preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(list(preload))  # takes effect only before the server starts
    return context
