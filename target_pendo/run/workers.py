"""One pool of `max_concurrency` threads that every sink's calls share. In a failing batch the
first error stops what has not started, running calls end on their own, and the error raised
is the one that failed the batch, not a "stopped because another failed" that followed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from target_pendo.errors import StopRequested

T = TypeVar("T")
R = TypeVar("R")


class Workers:
    def __init__(self, size: int) -> None:
        self.size = size
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="pendo")

    def each(self, fn: Callable[[T, Callable[[], None]], R], items: Sequence[T]) -> list[R]:
        """`fn(item, checkpoint)` for each item, results in order; `checkpoint()` raises
        StopRequested once another item has failed, so an item can stop between its calls."""
        failed = threading.Event()

        def checkpoint() -> None:
            if failed.is_set():
                raise StopRequested("another call of this batch failed")

        def run(item: T) -> R:
            checkpoint()
            return fn(item, checkpoint)

        return _results([self._pool.submit(_flagging, failed, run, item) for item in items])

    def spread(self, copies: int, loop: Callable[[threading.Event], None]) -> None:
        """`copies` of `loop(failed)` side by side; the first error sets `failed` for the others."""
        failed = threading.Event()
        copies = min(copies, self.size)
        _results([self._pool.submit(_flagging, failed, loop, failed) for _ in range(copies)])

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _flagging(failed: threading.Event, fn: Callable[..., R], *args: Any) -> R:
    try:
        return fn(*args)
    except BaseException:
        failed.set()
        raise


def _results(futures: Sequence[Future[Any]]) -> list[Any]:
    """Every future's result, waiting for all; then the error that failed the batch."""
    results: list[Any] = []
    errors: list[BaseException] = []
    for future in futures:
        try:
            results.append(future.result())
        except BaseException as exc:
            errors.append(exc)
    if errors:  # the first that is not a StopRequested: a stop follows from another failure
        raise next((e for e in errors if not isinstance(e, StopRequested)), errors[0])
    return results
