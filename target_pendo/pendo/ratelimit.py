"""Client-side pacing: a strict schedule, and the adaptive rate that learns Pendo's limit.

Pendo does not document its rate limits (third parties report about 100 calls a second per
endpoint, a leaky bucket answering 429). A fixed rate is either too slow for a subscription
that takes more, or a storm of 429s for one that takes less, so each endpoint (Track, the
`/api/v1` routes) gets an ``AdaptivePacer`` shared by every sink and worker:
- slow start: the rate grows by one request a second per success (doubling about every
  second) until the first 429;
- then additive increase, multiplicative decrease: a 429 cuts the rate (to half when leaving
  slow start, else to 0.7 of it), counting only answers to calls sent *after* the last cut, so
  a burst of 429s for calls already in flight is one cut, not ten; successes add back 5 % of
  the rate at the last cut per second;
- a `Retry-After` pauses the whole endpoint for that long;
- `max_requests_per_second`, when set, is a ceiling the rate never passes.

Requests take slots on a strict schedule (``RateLimiter``): each takes the next slot
`1/rate` seconds after the previous one (5 % under the rate, see HEADROOM), so no
one-second window holds more than `rate` requests, whatever the number of threads asking; a
stall does not bank slots for a burst afterwards.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

START_RATE = 10.0  # requests a second before anything is known
MIN_RATE = 0.5  # one call every two seconds: what a cautious public tap does under 429s
SLOW_START_GAIN = 1.0  # requests a second added per success before the first 429
FIRST_CUT = 0.5
CUT = 0.7
INCREASE_SHARE = 0.05  # of the rate at the last cut, added per second of successes


class RateLimiter:
    """A strict schedule at a fixed rate; thread-safe. `rate` None or 0: never waits."""

    # Paced a little under the limit: requests reach Pendo with scheduling and network jitter,
    # and a window that is exactly full at the sender can look over-full at the receiver.
    HEADROOM = 0.95

    def __init__(self, rate_per_second: float | None) -> None:
        self._interval = 1.0 / (rate_per_second * self.HEADROOM) if rate_per_second else 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def _set_rate(self, rate_per_second: float) -> None:
        """Called with the lock held."""
        self._interval = 1.0 / (rate_per_second * self.HEADROOM)

    def pause_until(self, moment: float) -> None:
        """No slot before `moment` (monotonic seconds)."""
        with self._lock:
            self._next_slot = max(self._next_slot, moment)

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Block until this caller's slot (or until `stop` is set); returns the seconds
        waited."""
        if not self._interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        wait = slot - now
        if wait > 0:
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
        return wait


@dataclass
class PacerStats:
    throttled: int = 0  # 429 answers drawn
    cuts: int = 0
    max_rate: float = 0.0  # the highest rate reached
    rate: float = 0.0  # the rate now


class AdaptivePacer(RateLimiter):
    """One endpoint's pace, learnt from Pendo's answers; thread-safe."""

    def __init__(self, ceiling: float | None = None, start: float = START_RATE) -> None:
        self.ceiling = ceiling or None
        first = min(start, self.ceiling) if self.ceiling else start
        super().__init__(first)
        self._rate = first
        self._slow_start = True
        self._last_cut = 0.0  # monotonic time of the last cut
        self._step = 0.0
        self.stats = PacerStats(max_rate=first, rate=first)

    def _apply(self, rate: float) -> None:
        """Called with the lock held."""
        top = self.ceiling if self.ceiling else float("inf")
        self._rate = max(MIN_RATE, min(rate, top))
        self._set_rate(self._rate)
        self.stats.rate = self._rate
        self.stats.max_rate = max(self.stats.max_rate, self._rate)

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Wait for a slot; returns when it was granted. A slot granted before a cut belongs
        to the old rate even if its call leaves after the cut, so its 429 is no new signal."""
        granted = time.monotonic()
        super().acquire(stop)
        return granted

    def on_success(self) -> None:
        with self._lock:
            if self._slow_start:
                self._apply(self._rate + SLOW_START_GAIN)
            else:
                self._apply(self._rate + self._step / self._rate)

    def on_throttled(self, sent_at: float, retry_after: float | None) -> None:
        """A 429 for a call sent at `sent_at` (from `acquire`)."""
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
