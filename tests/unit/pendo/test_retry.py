"""target_pendo.pendo.retry: the retry schedule and Retry-After."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_pendo.pendo.retry import (
    BACKOFF_CAP_SECONDS,
    RETRY_AFTER_MAX_SECONDS,
    RETRY_AFTER_MIN_SECONDS,
    parse_retry_after,
    retry_wait,
)


@given(st.integers(min_value=1, max_value=200))
def test_a_wait_is_jittered_under_a_capped_doubling_ceiling(retry: int) -> None:
    ceiling = min(BACKOFF_CAP_SECONDS, 0.5 * 2 ** (retry - 1))
    waits = [retry_wait(retry, None) for _ in range(20)]
    assert all(0 <= w <= ceiling for w in waits)
    assert len(set(waits)) > 1  # full jitter, not a fixed step


def test_the_ceilings_double_from_half_a_second_to_the_cap() -> None:
    tops = [max(retry_wait(r, None) for _ in range(400)) for r in (1, 2, 3, 8)]
    assert tops[0] <= 0.5 < tops[1] <= 1.0 < tops[2] <= 2.0
    assert 16 < tops[3] <= BACKOFF_CAP_SECONDS


def test_retry_after_is_the_wait_when_pendo_gives_one() -> None:
    assert retry_wait(5, 7.0) == 7.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0", RETRY_AFTER_MIN_SECONDS),
        ("-5", RETRY_AFTER_MIN_SECONDS),
        ("99999", RETRY_AFTER_MAX_SECONDS),
        ("soon", None),
        ("nan", None),
        (None, None),
    ],
)
def test_retry_after_is_read_and_kept_in_range(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 12, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(12, abs=1)
