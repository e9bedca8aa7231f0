"""Client-side pacing so the target stays under Pendo's per-key limit.

A strict schedule rather than a token bucket with bursts: each request takes the next slot
`1/rate` seconds after the previous one (2.5 % slower, see HEADROOM), so no one-second window
holds more than `rate` requests, whatever the number of threads asking; a stall does not bank
slots for a burst afterwards.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Thread-safe: every sink and worker shares one instance per target run."""

    # Paced a little under the limit: requests reach Pendo with scheduling and network jitter,
    # and a window that is exactly full at the sender can look over-full at the receiver.
    HEADROOM = 0.975

    def __init__(self, rate_per_second: float | None) -> None:
        self._interval = 1.0 / (rate_per_second * self.HEADROOM) if rate_per_second else 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()

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
