"""Which streams have a batch under way, for the progress lines."""

from __future__ import annotations

import threading
from collections import Counter


class Drains:
    """Batches under way per stream: the sinks' drain threads write it, the monitor reads it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()  # stream -> drains running
        self._rows: dict[str, int] = {}
        # set when a batch ends (or the run stops): a due progress line is logged then
        self.wake = threading.Event()
        self.ended_count = 0  # batches ended so far, so the monitor knows it saw the last one

    def started(self, stream: str, rows: int) -> None:
        with self._lock:
            self._running[stream] += 1
            self._rows[stream] = rows

    def ended(self, stream: str) -> None:
        with self._lock:
            self._running[stream] -= 1
            if self._running[stream] <= 0:
                del self._running[stream]
            self.ended_count += 1
        self.wake.set()

    def current(self, stream: str) -> tuple[int, int]:
        with self._lock:
            return self._running.get(stream, 0), self._rows.get(stream, 0)
