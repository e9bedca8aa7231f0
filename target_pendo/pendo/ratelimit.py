"""Client-side pacing per endpoint, learnt from Pendo's answers (docs/pendo-api.md): Pendo does
not document its limits (reportedly about 100 calls a second per endpoint, a leaky bucket
answering 429). A 429 for a call sent before the last cut is no new signal; `Retry-After` pauses
the whole endpoint. Slots are `1/rate` apart, so no one-second window holds more than `rate`
calls however many threads ask, and a stall banks no burst.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

START_RATE = 10.0  # requests a second before anything is known
MIN_RATE = 0.5  # one call every two seconds: what a cautious public tap does under 429s
SLOW_START_GAIN = 1.0  # requests a second added per success before the first 429
FIRST_CUT = 0.5  # the cut that ends slow start
CUT = 0.7
INCREASE_SHARE = 0.05  # of the rate at the last cut, added per second of successes
USED_SHARE = 0.5  # the rate grows only while at least this share of it goes out
WINDOW_SECONDS = 1.0  # what the achieved rate is counted over


class RateLimiter:
    """A strict schedule at a fixed rate; thread-safe. `rate` None or 0: never waits."""

    HEADROOM = 0.95  # under the limit: with jitter, a window full here can be over-full at Pendo

    def __init__(self, rate_per_second: float | None, headroom: float = HEADROOM) -> None:
        self._headroom = headroom
        self._interval = 1.0 / (rate_per_second * headroom) if rate_per_second else 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Block until this caller's slot (or until `stop` is set); returns the seconds waited."""
        if not self._interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        wait = slot - now
        if wait > 0:
            (stop or threading.Event()).wait(wait)
        return wait


@dataclass
class PacerStats:
    throttled: int = 0  # 429 answers drawn
    cuts: int = 0
    max_rate: float = 0.0  # achieved: the most calls that went out in one second
    rate: float = 0.0  # the rate allowed now


class AdaptivePacer(RateLimiter):
    """One endpoint's pace, learnt from Pendo's answers; thread-safe."""

    STATED_HEADROOM = 0.98  # a stated ceiling is the user's word for Pendo's limit

    def __init__(self, ceiling: float | None = None, start: float = START_RATE) -> None:
        self.ceiling = ceiling or None
        first = self.ceiling or start
        super().__init__(first, self.STATED_HEADROOM if self.ceiling else self.HEADROOM)
        self._rate = first
        self._slow_start = self.ceiling is None
        self._last_cut = 0.0  # monotonic time of the last cut
        self._step = INCREASE_SHARE * first if self.ceiling else 0.0
        self._window_start: float | None = None  # the one-second window being counted
        self._window_sent = 0
        self._used: float | None = None  # calls a second that went out in the last window
        self.stats = PacerStats(rate=first)

    def _apply(self, rate: float) -> None:
        """Called with the lock held."""
        self._rate = min(max(MIN_RATE, rate), self.ceiling or math.inf)  # a ceiling wins
        self._interval = 1.0 / (self._rate * self._headroom)
        self.stats.rate = self._rate

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Wait for a slot; returns when it was granted: a slot granted before a cut belongs to
        the old rate even if its call leaves after it."""
        granted = time.monotonic()
        super().acquire(stop)
        now = time.monotonic()
        with self._lock:  # count the calls that went out in the last window
            if self._window_start is None:
                self._window_start = now
            elif now - self._window_start >= WINDOW_SECONDS:
                self._used = self._window_sent / (now - self._window_start)
                self.stats.max_rate = max(self.stats.max_rate, self._used)
                self._window_start, self._window_sent = now, 0
            self._window_sent += 1
        return granted

    def on_success(self) -> None:
        with self._lock:
            if self._used is not None and self._used < USED_SHARE * self._rate:
                return  # the rate is not what limits the calls: growing it tests nothing
            gain = SLOW_START_GAIN if self._slow_start else self._step / self._rate
            self._apply(self._rate + gain)

    def on_throttled(self, sent_at: float, retry_after: float | None) -> None:
        now = time.monotonic()
        with self._lock:
            self.stats.throttled += 1
            if retry_after is not None:
                self._next_slot = max(self._next_slot, now + retry_after)
            if sent_at < self._last_cut:
                return  # sent at the old rate: its 429 was already answered by a cut
            self._apply(self._rate * (FIRST_CUT if self._slow_start else CUT))
            self._slow_start = False
            self._last_cut = now
            self._step = max(MIN_RATE, INCREASE_SHARE * self._rate)
            self.stats.cuts += 1
