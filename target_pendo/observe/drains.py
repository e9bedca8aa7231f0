"""Which streams have a batch under way, for the progress lines (``progress.py``)."""

from __future__ import annotations

import threading
from collections import Counter


class Drains:
    """Which streams have a batch under way (mapping, ledger lookups) and of how many rows:
    the sinks' drain threads say when one starts and ends, the monitor reads it. It belongs
    to the run's context, so no registry of monitors is needed to find the run's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()  # stream -> drains running
        self._rows: dict[str, int] = {}
        # set when a batch ends (or the run stops): wakes the progress monitor's thread, so a
        # due progress line is logged when a batch is done, not only at its next tick
        self.wake = threading.Event()

    def started(self, stream: str, rows: int) -> None:
        with self._lock:
            self._running[stream] += 1
            self._rows[stream] = rows

    def ended(self, stream: str) -> None:
        with self._lock:
            self._running[stream] -= 1
            if self._running[stream] <= 0:
                del self._running[stream]
        self.wake.set()

    def current(self, stream: str) -> tuple[int, int]:
        """(drains running, rows of the latest) of a stream."""
        with self._lock:
            return self._running.get(stream, 0), self._rows.get(stream, 0)
