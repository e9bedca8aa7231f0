"""How long to wait before another attempt, and when to stop trying: one immutable policy.

The schedule is `backoff`'s (its exponential wait generator, capped, with full jitter); the loop
around it is the transport's own rather than the `backoff` decorator, for three things a
production sync needs and the decorator cannot do: the wait between attempts is interruptible
(a SIGTERM must not sit out a 30-second back-off), a `Retry-After` longer than what is left of
the budget fails at once instead of sleeping through the budget, and some causes (a host name
that does not resolve) give up after a couple of tries instead of retrying for minutes.
"""

from __future__ import annotations

import email.utils
import itertools
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
    seconds = _raw_retry_after(value, now)
    if seconds is None:
        return None
    return min(max(seconds, RETRY_AFTER_MIN_SECONDS), RETRY_AFTER_MAX_SECONDS)


def _raw_retry_after(value: str | None, now: float | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return when.timestamp() - (time.time() if now is None else now)
    return seconds if seconds == seconds else None  # NaN is no answer


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
