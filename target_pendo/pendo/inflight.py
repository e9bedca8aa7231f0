"""Calls of one endpoint on the wire at once: as many as the pace needs (Little's law: a fixed 8
at 250 ms caps the rate at 32/s). Growing by one per answer, new connections reach Pendo a few at
a time, not bunched. A call waiting here is not marked in flight in the ledger.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

START = 8  # calls in flight before any round trip is measured, at least
ASSUMED_ROUND_TRIP = 0.25  # seconds, before one is measured: a Pendo across an ocean
DEFAULT_CEILING = 64  # `max_concurrency`: room for Pendo's reported 100/s at 500 ms round trips
HEADROOM = 1.25  # more calls than the pace needs, for jitter in the round trips
RTT_WEIGHT = 0.2  # weight of each new round trip in the moving average
_STOP_POLL_SECONDS = 0.05


@dataclass
class InFlightStats:
    limit: int  # calls allowed on the wire now
    peak: int = 0  # the most calls that were on the wire at once
    round_trip: float | None = None  # the moving average, seconds


class InFlightLimit:
    """One endpoint's calls on the wire; thread-safe."""

    def __init__(self, ceiling: int, *, rate: float | None = None, paced: bool = True) -> None:
        """`rate`: the pacer's first rate (calls a second)."""
        self.ceiling = max(1, ceiling)
        self._paced = paced
        self._in_flight = 0
        self._cond = threading.Condition()
        first = max(START, self._needed(rate or 0, ASSUMED_ROUND_TRIP))
        self.stats = InFlightStats(limit=min(first, self.ceiling) if paced else self.ceiling)

    @staticmethod
    def _needed(rate: float, round_trip: float) -> int:
        return math.ceil(rate * round_trip * HEADROOM) + 1

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for room on the wire; False (at once) when the run is asked to stop."""
        with self._cond:
            while self._in_flight >= self.stats.limit and not stop.is_set():
                self._cond.wait(_STOP_POLL_SECONDS)
            if stop.is_set():
                return False
            self._in_flight += 1
            self.stats.peak = max(self.stats.peak, self._in_flight)
            return True

    def release(self, round_trip: float | None, rate: float | None) -> None:
        """A call left the wire after `round_trip` seconds (None: no answer) at pacer `rate`."""
        with self._cond:
            self._in_flight -= 1
            stats = self.stats
            if round_trip is not None:
                previous = round_trip if stats.round_trip is None else stats.round_trip
                stats.round_trip = previous + RTT_WEIGHT * (round_trip - previous)
            if self._paced and rate and stats.round_trip is not None:
                wanted = max(1, min(self.ceiling, self._needed(rate, stats.round_trip)))
                stats.limit = min(wanted, stats.limit + 1)  # up by one per answer, down at once
            self._cond.notify_all()
