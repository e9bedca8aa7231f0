"""How long to wait before another attempt. The schedule is `backoff`'s; the loop is the
transport's own, as the `backoff` decorator cannot end a wait on SIGTERM, fail at once on a
`Retry-After` past the budget, or give up on some causes (DNS) after a couple of tries.
"""

from __future__ import annotations

import email.utils
import itertools
import math
import time

import backoff

RETRY_AFTER_MIN_SECONDS = 0.5  # `Retry-After: 0` must not become a hot loop
RETRY_AFTER_MAX_SECONDS = 600.0  # nor a bogus hour be honoured
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
DNS_FAILURE_TRIES = 2  # a host name that does not resolve will not a minute later either


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` (delta-seconds or an HTTP date), clamped; None if unreadable."""
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


def retry_wait(retry: int, retry_after: float | None) -> float:
    """Seconds before retry number `retry` (1 = the first retry)."""
    if retry_after is not None:
        return retry_after
    schedule = backoff.expo(factor=BACKOFF_BASE_SECONDS, max_value=BACKOFF_CAP_SECONDS)
    next(schedule)  # the value backoff's own loop primes the generator with
    ceiling = next(itertools.islice(schedule, max(retry, 1) - 1, None))
    return backoff.full_jitter(float(ceiling))
