"""Adaptive pacing: the rate learnt from Pendo's answers (unit), and against an emulator that
enforces a limit nobody told the client (real HTTP). Throughput figures live in `make bench`;
these tests check the behaviour: slow start, one cut per burst, the ceiling, Retry-After."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator
from target_pendo.pendo.answers import CallOutcome
from target_pendo.pendo.client import PendoClient
from target_pendo.pendo.ratelimit import CUT, FIRST_CUT, START_RATE, AdaptivePacer

from ...tracks import send_tracks


def test_slow_start_grows_until_the_first_429_then_halves() -> None:
    pacer = AdaptivePacer()
    assert pacer.stats.rate == START_RATE
    for _ in range(50):
        pacer.on_success()
    assert pacer.stats.rate == START_RATE + 50
    sent = pacer.acquire()
    pacer.on_throttled(sent, None)
    assert pacer.stats.rate == pytest.approx((START_RATE + 50) * FIRST_CUT)
    assert pacer.stats.cuts == 1


def test_a_burst_of_429s_for_calls_sent_before_the_cut_is_one_cut() -> None:
    pacer = AdaptivePacer()
    before = [pacer.acquire() for _ in range(5)]
    pacer.on_throttled(before[0], None)
    rate = pacer.stats.rate
    for sent in before[1:]:
        pacer.on_throttled(sent, None)  # answers to calls sent at the old rate
    assert (pacer.stats.rate, pacer.stats.cuts, pacer.stats.throttled) == (rate, 1, 5)
    later = pacer.acquire()
    pacer.on_throttled(later, None)  # a call sent at the new rate is a new signal
    assert pacer.stats.rate == pytest.approx(rate * CUT)


def test_after_the_first_cut_the_rate_grows_additively() -> None:
    pacer = AdaptivePacer()
    for _ in range(90):
        pacer.on_success()
    pacer.on_throttled(pacer.acquire(), None)  # 100 -> 50
    for _ in range(50):  # about one second of successes at 50/s
        pacer.on_success()
    assert 50 < pacer.stats.rate < 50 + 5  # 5 % of the rate at the cut per second


def test_the_ceiling_is_never_passed() -> None:
    pacer = AdaptivePacer(ceiling=25)
    for _ in range(1000):
        pacer.on_success()
    assert pacer.stats.rate == 25
    times = [pacer.acquire() for _ in range(40)]
    window = [t for t in times if t - times[10] < 1.0 and t >= times[10]]
    assert len(window) <= 25


def test_retry_after_pauses_the_endpoint() -> None:
    pacer = AdaptivePacer()
    pacer.on_throttled(pacer.acquire(), 0.6)
    started = time.monotonic()
    pacer.acquire()
    assert time.monotonic() - started >= 0.55


def test_the_rate_never_falls_below_the_floor() -> None:
    pacer = AdaptivePacer()
    for n in range(40):
        pacer.on_throttled(time.monotonic() + 10 + n, None)  # each a fresh signal, no waiting
    assert pacer.stats.rate == 0.5


@pytest.mark.parametrize("limit", [30, 90])
def test_against_an_unknown_limit_few_calls_are_refused(limit: int) -> None:
    """An emulator enforcing `limit` calls/s per key and endpoint (429, no Retry-After): every
    event lands once and 429s stay a small share of the calls."""
    with Emulator(rate_limit=limit) as emu:
        client = PendoClient(
            emu.url,
            track_event_secret=DEMO_TRACK_SECRET,
            integration_key=DEMO_INTEGRATION_KEY,
            request_timeout=5,
            max_retry_seconds=30,
        )
        n = limit * 4
        bodies = [
            (
                f'{{"type":"track","event":"E","visitorId":"v-{i}","timestamp":1,'
                '"properties":{},"context":{}}'
            ).encode()
            for i in range(n)
        ]
        try:
            results = send_tracks(client, bodies, concurrency=8)
        finally:
            client.close()
        assert all(r.outcome is CallOutcome.ACCEPTED for r in results)
        assert Counter(e["visitorId"] for e in emu.events()) == Counter(f"v-{i}" for i in range(n))
        refused = sum(emu.rate_limited().values())
        assert refused <= 0.1 * n, refused
        assert client.pacing()["track"].throttled == refused


def test_a_stated_ceiling_is_the_pace_from_the_first_call_and_a_429_still_cuts() -> None:
    pacer = AdaptivePacer(ceiling=80)
    assert pacer.stats.rate == 80  # no slow start from 10/s
    started = time.monotonic()
    for _ in range(41):
        pacer.acquire()
    assert time.monotonic() - started < 0.7  # 40 intervals at 80/s (x 0.98) is ~0.51 s
    pacer.on_throttled(pacer.acquire(), None)
    assert pacer.stats.rate == pytest.approx(80 * CUT)
    for _ in range(1000):
        pacer.on_success()
    assert pacer.stats.rate == 80  # back up to the ceiling, never past it


def test_the_rate_does_not_grow_while_it_is_not_used_and_reports_what_went_out() -> None:
    """Two calls a second where 10 are allowed: successes add nothing (the rate was not what
    held the calls back), and what the pacer reports reached is what went out."""
    pacer = AdaptivePacer()
    for _ in range(5):
        pacer.acquire()
        pacer.on_success()
        time.sleep(0.5)
    rate = pacer.stats.rate
    for _ in range(20):
        pacer.on_success()
    assert pacer.stats.rate == rate
    assert 1 <= pacer.stats.max_rate <= 3


def test_a_stated_ceiling_under_the_floor_still_holds() -> None:
    pacer = AdaptivePacer(ceiling=0.2)
    pacer.on_success()
    assert pacer.stats.rate == 0.2
    pacer.on_throttled(pacer.acquire(), None)
    assert pacer.stats.rate <= 0.2
