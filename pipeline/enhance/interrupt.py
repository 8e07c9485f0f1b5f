"""Termination signals as exceptions, so that `finally` clean-ups (hidden partial files) run on every way out.

Python turns Ctrl-C (SIGINT) into KeyboardInterrupt; SIGTERM (kill, a scheduler, a container stop) and SIGHUP (a
closed terminal) would end the process without unwinding. Inside `signals_as_exceptions()` they raise
`Terminated` once (a second signal while cleaning up is ignored); the previous handlers are restored on exit.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(BaseException):
    """The process received a termination signal (a BaseException, like KeyboardInterrupt: no `except Exception`
    swallows it)."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` in the main thread (elsewhere: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if not fired:  # the first signal unwinds; later ones must not interrupt the clean-up
            fired.append(signum)
            raise Terminated(signum)

    previous = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
