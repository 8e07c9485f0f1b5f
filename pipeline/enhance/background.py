"""Work beside the main thread, in order: decoding ahead of the model, encoding behind it.

FFmpeg's decoders and encoders, soundfile and most of numpy release the GIL, so on two cores a film's decoding
(pass 1) and its encoding and muxing (pass 2) overlap with the separation and the remix instead of adding to
them. Both helpers keep the order of the work exactly, so the output is byte-identical to doing it in line, and
both bound memory by a queue of `depth` items. An error in the worker is raised in the main thread at its next
call; leaving early (an error in the main thread, Ctrl-C) stops the worker before returning.

Not a `pipeline.parallel.ParallelMap`: a map runs a function over independent items, while these keep the order
of one stateful stream (a decoder that must see its packets in turn, a muxer that must receive them in turn).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.1


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of `items`, produced by a worker thread up to `depth` items ahead of the consumer."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not _put(ready, item, stop):
                    return
            _put(ready, _END, stop)
        except BaseException as err:            # noqa: BLE001 - handed to the consumer, raised there
            _put(ready, _Failure(err), stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


class BackgroundCalls:
    """Runs submitted calls one after another in a worker thread, in submission order."""

    def __init__(self, depth: int = 4, name: str = "writer"):
        self.pending: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.worker = threading.Thread(target=self._run, name=name, daemon=True)
        self.worker.start()

    def submit(self, call: Callable, *args) -> None:
        """Queue `call(*args)`; raises the error of an earlier call, if one failed."""
        self._raise()
        if not _put(self.pending, (call, args), self.stop):
            self._raise()

    def finish(self) -> None:
        """Wait for every queued call; raises the error of any that failed."""
        _put(self.pending, _END, self.stop)
        self.worker.join()
        self._raise()

    def cancel(self) -> None:
        """Drop the queued calls and stop the worker (after the call it is running); errors are dropped."""
        self.stop.set()
        self.worker.join()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                job = self.pending.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if job is _END:
                return
            call, args = job
            try:
                call(*args)
            except BaseException as err:        # noqa: BLE001 - raised in the submitting thread
                self.error = err
                self.stop.set()
                return

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def _put(target: queue.Queue, item, stop: threading.Event) -> bool:
    """Put `item`, waiting for room unless `stop` is set (then False)."""
    while not stop.is_set():
        try:
            target.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False
