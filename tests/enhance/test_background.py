"""The decoding and encoding threads of `enhance`: order kept, errors raised in the caller, early exits stop them."""
from __future__ import annotations

import threading
import time
from contextlib import closing

import pytest

from pipeline.enhance.background import BackgroundCalls, prefetched


def test_prefetched_keeps_the_order_and_runs_ahead_in_another_thread():
    threads = []

    def items():
        for i in range(20):
            threads.append(threading.current_thread().name)
            yield i

    assert list(prefetched(items(), depth=3)) == list(range(20))
    assert set(threads) == {"prefetch"}


def test_prefetched_raises_the_producers_error_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("bad packet in film.mkv")

    seen = []
    with pytest.raises(ValueError, match="bad packet in film.mkv"):
        for item in prefetched(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_leaving_early_stops_the_producer_and_closes_its_generator():
    closed = threading.Event()
    produced = []

    def endless():
        try:
            while True:
                produced.append(len(produced))
                yield produced[-1]
        finally:
            closed.set()

    with closing(prefetched(endless(), depth=2)) as items:
        assert next(items) == 0
    assert closed.is_set()
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 4          # stopped: at most the queue's depth and one in hand were made


def test_background_calls_run_in_order_in_one_worker():
    done, threads = [], set()

    def record(i):
        threads.add(threading.current_thread().name)
        time.sleep(0.001 * (i % 3))
        done.append(i)

    calls = BackgroundCalls(depth=2)
    for i in range(30):
        calls.submit(record, i)
    calls.finish()
    assert done == list(range(30)) and threads == {"writer"}


def test_a_failed_call_is_raised_at_the_next_submit_or_at_finish_and_later_calls_do_not_run():
    ran = []

    def fail():
        raise ValueError("out.mkv: the ac3 encoder failed")

    calls = BackgroundCalls()
    calls.submit(fail)
    with pytest.raises(ValueError, match="encoder failed"):
        for i in range(100):
            calls.submit(ran.append, i)
            time.sleep(0.01)
    calls.cancel()
    assert len(ran) < 100

    calls = BackgroundCalls()
    calls.submit(fail)
    with pytest.raises(ValueError, match="encoder failed"):
        calls.finish()


def test_cancel_drops_the_queued_calls():
    ran, gate = [], threading.Event()
    calls = BackgroundCalls(depth=10)
    calls.submit(gate.wait)
    for i in range(5):
        calls.submit(ran.append, i)
    calls.stop.set()                          # what cancel does first: nothing queued may start after it
    gate.set()
    calls.cancel()
    assert ran == []
