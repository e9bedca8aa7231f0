"""The run's workers: results in order, at most `size` at once, and a failed batch raises the
error that failed it after every running call has ended."""

from __future__ import annotations

import threading
import time

import pytest

from target_pendo.errors import StopRequested
from target_pendo.run.workers import Workers


def test_each_returns_results_in_order_with_at_most_size_running() -> None:
    workers = Workers(3)
    running, most = 0, 0
    lock = threading.Lock()

    def work(item: int, checkpoint: object) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return item * 2

    try:
        assert workers.each(work, list(range(20))) == [i * 2 for i in range(20)]
        assert most == 3
    finally:
        workers.close()


def test_the_first_error_stops_what_has_not_started_and_is_the_one_raised() -> None:
    workers = Workers(2)
    started: list[int] = []

    def work(item: int, checkpoint) -> int:  # type: ignore[no-untyped-def]
        started.append(item)
        if item == 0:
            raise ValueError("the cause")
        time.sleep(0.05)
        checkpoint()  # raises StopRequested once item 0 failed
        return item

    try:
        with pytest.raises(ValueError, match="the cause"):
            workers.each(work, list(range(50)))
        assert len(started) < 50  # the rest never started
    finally:
        workers.close()


def test_spread_runs_copies_that_stop_when_one_fails() -> None:
    workers = Workers(4)
    turns = iter(range(1000))
    done: list[int] = []

    def loop(failed: threading.Event) -> None:
        while not failed.is_set():
            n = next(turns)
            if n == 10:
                raise StopRequested("a stop")  # only a follower: still raised when alone
            done.append(n)
            time.sleep(0.001)

    try:
        with pytest.raises(StopRequested):
            workers.spread(8, loop)
        assert len(done) < 100
    finally:
        workers.close()
