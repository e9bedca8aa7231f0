"""Calls in flight follow the pace and the round trip (Little's law), within max_concurrency:
the mechanism, with a real emulator answering after a round trip. Throughput figures live in
`make bench`."""

from __future__ import annotations

import threading

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator
from target_pendo.pendo.answers import CallOutcome
from target_pendo.pendo.client import PendoClient
from target_pendo.pendo.inflight import START, InFlightLimit

from ...tracks import send_tracks


def body(i: int) -> bytes:
    return (
        f'{{"type":"track","event":"E","visitorId":"v-{i}","timestamp":1,'
        '"properties":{},"context":{}}'
    ).encode()


def test_the_limit_follows_rate_times_round_trip_growing_one_call_per_answer():
    limit = InFlightLimit(64, rate=10)
    assert limit.stats.limit == START  # before any answer: at least 8
    stop = threading.Event()
    for _ in range(30):  # 100/s at 250 ms: 100 x 0.25 x 1.25 + 1 = 33 wanted
        assert limit.acquire(stop)
        limit.release(0.25, 100)
    assert limit.stats.limit == 33
    assert limit.stats.round_trip == 0.25
    limit.acquire(stop)
    limit.release(0.25, 30)  # a 429 cut the pace: down at once
    assert limit.stats.limit == 11
    for _ in range(40):  # answers speed up: down as the average follows
        limit.acquire(stop)
        limit.release(0.01, 30)
    assert limit.stats.limit <= 2


def test_the_limit_never_passes_max_concurrency_and_unpaced_it_is_max_concurrency():
    limit = InFlightLimit(12, rate=10)
    stop = threading.Event()
    for _ in range(50):
        limit.acquire(stop)
        limit.release(2.0, 100)
    assert limit.stats.limit == 12
    assert InFlightLimit(40, paced=False).stats.limit == 40


def test_a_stop_request_ends_the_wait_for_room():
    limit = InFlightLimit(1, rate=10)
    stop = threading.Event()
    assert limit.acquire(stop)
    threading.Timer(0.2, stop.set).start()
    assert limit.acquire(stop) is False  # the wire was full; the stop ended the wait


def test_with_slow_answers_more_than_8_calls_go_out_at_once_and_fewer_when_they_speed_up():
    """A Pendo 400 ms away and a stated ceiling of 100/s: 8 calls at once would cap the run at
    20/s; the limit grows past 8 (up to what 100/s needs) and every event lands once. When the
    answers come at once, the limit falls back."""
    with Emulator(latency=0.4) as emu:
        client = PendoClient(
            emu.url,
            track_event_secret=DEMO_TRACK_SECRET,
            integration_key=DEMO_INTEGRATION_KEY,
            max_requests_per_second=100,
            request_timeout=5,
        )
        try:
            results = send_tracks(client, [body(i) for i in range(200)], concurrency=64)
            slow = client.in_flight()["track"]
            assert slow.peak > 8
            slow_limit = slow.limit
            assert slow_limit > 8
            assert all(r.outcome is CallOutcome.ACCEPTED for r in results)
            emu.latency = 0.0
            send_tracks(client, [body(i) for i in range(200, 400)], concurrency=64)
            assert client.in_flight()["track"].limit < slow_limit
        finally:
            client.close()
        assert sorted(e["visitorId"] for e in emu.events()) == sorted(f"v-{i}" for i in range(400))
