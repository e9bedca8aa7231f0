"""How long to wait before another attempt, and when to stop trying.

The schedule is `backoff`'s (exponential, capped, full jitter); the loop around it is the
transport's own rather than the `backoff` decorator, which cannot do three things a production
sync needs: an interruptible wait (a SIGTERM must not sit out a 30-second back-off), failing at
once on a `Retry-After` longer than what is left of the budget, and giving up on some causes (a
host name that does not resolve) after a couple of tries.
"""

from __future__ import annotations

import email.utils
import itertools
import math
import time
from dataclasses import dataclass

import backoff

# `Retry-After` is honoured within this range: a floor above zero keeps `Retry-After: 0` (or
# a negative value) from becoming a hot loop, a ceiling keeps a bogus hour from being honoured.
RETRY_AFTER_MIN_SECONDS = 0.5
RETRY_AFTER_MAX_SECONDS = 600.0
# Full-jitter exponential back-off when Pendo gives no `Retry-After`.
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
# A host name that does not resolve will not resolve a minute later either.
DNS_FAILURE_TRIES = 2


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), clamped
    into [RETRY_AFTER_MIN_SECONDS, RETRY_AFTER_MAX_SECONDS]; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):  # NaN is no answer
        return None
    return min(max(seconds, RETRY_AFTER_MIN_SECONDS), RETRY_AFTER_MAX_SECONDS)


@dataclass(frozen=True)
class RetryPolicy:
    """When another attempt is worth it. `max_seconds` bounds one logical call's attempts."""

    max_seconds: float = 300.0

    def wait(self, retry: int, retry_after: float | None) -> float:
        """Seconds before retry number `retry` (1 = the first retry)."""
        if retry_after is not None:
            return retry_after
        return backoff.full_jitter(_ceiling(retry))


def _ceiling(retry: int) -> float:
    """The longest wait before retry number `retry`: the value `backoff.expo` gives it (0.5 s,
    doubling, capped at BACKOFF_CAP_SECONDS)."""
    schedule = backoff.expo(factor=BACKOFF_BASE_SECONDS, max_value=BACKOFF_CAP_SECONDS)
    next(schedule)  # the value backoff's own loop primes the generator with
    return float(next(itertools.islice(schedule, max(retry, 1) - 1, None)))
