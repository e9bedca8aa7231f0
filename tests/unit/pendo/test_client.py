"""PendoClient and RateLimiter against the bundled emulator, over real HTTP on localhost."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator
from target_pendo.errors import (
    PendoAuthError,
    PendoNetworkError,
    PendoNotFoundError,
    PendoRequestError,
    PendoUnavailableError,
)
from target_pendo.pendo.answers import CallOutcome as Outcome
from target_pendo.pendo.answers import CallResult
from target_pendo.pendo.attempts import Attempt
from target_pendo.pendo.client import API_SETTING, PendoClient
from target_pendo.pendo.ratelimit import RateLimiter
from target_pendo.pendo.retry import parse_retry_after

from ...tracks import send_tracks

TRACK_ROUTE = "POST /data/track"

ClientFactory = Callable[..., PendoClient]


@pytest.fixture
def make_client(emulator: Emulator) -> Iterator[ClientFactory]:
    """Builds clients aimed at the emulator (fast defaults); closes every one afterwards."""
    clients: list[PendoClient] = []

    def make(**overrides: Any) -> PendoClient:
        settings: dict[str, Any] = {
            "api_url": emulator.url,
            "track_event_secret": DEMO_TRACK_SECRET,
            "integration_key": DEMO_INTEGRATION_KEY,
            "max_requests_per_second": 0,  # no pacing: the emulator takes any rate
            "request_timeout": 5,
            "max_retry_seconds": 10,
        }
        settings.update(overrides)
        client = PendoClient(settings.pop("api_url"), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> PendoClient:
    return make_client()


def body(visitor: str, **overrides: Any) -> bytes:
    payload: dict[str, Any] = {
        "type": "track",
        "event": "Report Exported",
        "visitorId": visitor,
        "accountId": "acme",
        "timestamp": 1763856000000,
        "properties": {"plan": "pro"},
        "context": {},
    }
    payload.update(overrides)
    return json.dumps(payload).encode()


def bodies(n: int, prefix: str = "v") -> list[bytes]:
    return [body(f"{prefix}-{i}") for i in range(n)]


def stored_visitors(emu: Emulator) -> list[str]:
    return [e["visitorId"] for e in emu.events()]


def assert_delivered_once(emu: Emulator, n: int, prefix: str = "v") -> None:
    visitors = stored_visitors(emu)
    assert len(visitors) == n
    assert sorted(visitors) == sorted(f"{prefix}-{i}" for i in range(n))


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- happy path ----------------------------------------------------------------------------------
def test_send_tracks_delivers_all(emulator: Emulator, client: PendoClient) -> None:
    seen: list[tuple[int, CallResult]] = []
    lock = threading.Lock()

    def on_result(index: int, result: CallResult) -> None:
        with lock:
            seen.append((index, result))

    results = send_tracks(client, bodies(50), on_result=on_result)
    assert len(results) == 50
    assert all(r.outcome is Outcome.ACCEPTED and r.status == 200 for r in results)
    assert_delivered_once(emulator, 50)
    assert emulator.request_counts() == {TRACK_ROUTE: 50}
    assert client.stats.calls[TRACK_ROUTE] == 50
    assert client.stats.retries == 0
    assert sorted(i for i, _ in seen) == list(range(50))
    assert all(results[i] == r for i, r in seen)


def test_send_tracks_empty(emulator: Emulator, client: PendoClient) -> None:
    assert send_tracks(client, []) == []
    assert emulator.request_counts() == {}


def test_api_url_trailing_slash(emulator: Emulator, make_client: ClientFactory) -> None:
    client = make_client(api_url=emulator.url + "/")
    assert send_tracks(client, [body("v-0")])[0].outcome is Outcome.ACCEPTED
    assert_delivered_once(emulator, 1)


def test_max_concurrency_bounds_parallel_calls(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client()
    emulator.inject(route="track", delay=0.3, times=None)
    started = time.monotonic()
    results = send_tracks(client, bodies(8), concurrency=4)
    elapsed = time.monotonic() - started
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert elapsed >= 0.55  # at most 4 at a time: two rounds of 0.3 s
    assert elapsed < 2.0  # and really concurrent: 8 x 0.3 s one by one would be 2.4 s
    assert_delivered_once(emulator, 8)


# --- rejected rows -------------------------------------------------------------------------------
def test_rejected_rows_keep_order_and_reason(emulator: Emulator, client: PendoClient) -> None:
    bad = {3, 7, 11}
    emulator.reject_track("visitorId", [f"v-{i}" for i in bad], "visitor is blocked")
    seen: dict[int, CallResult] = {}
    results = send_tracks(client, bodies(20), on_result=seen.__setitem__)
    for i, result in enumerate(results):
        if i in bad:
            assert result == CallResult(Outcome.REJECTED, 400, "visitor is blocked")
        else:
            assert result == CallResult(Outcome.ACCEPTED, 200)
    assert seen == dict(enumerate(results))
    assert sorted(stored_visitors(emulator)) == sorted(f"v-{i}" for i in range(20) if i not in bad)
    assert emulator.request_counts() == {TRACK_ROUTE: 20}
    assert client.stats.retries == 0


def test_invalid_body_is_rejected_with_emulator_reason(
    emulator: Emulator, client: PendoClient
) -> None:
    results = send_tracks(client, [body("v-0", timestamp="123"), body("v-1"), b"{nope"])
    assert results[0].outcome is Outcome.REJECTED
    assert results[0].status == 400
    assert "timestamp" in results[0].reason
    assert results[1].outcome is Outcome.ACCEPTED
    assert results[2] == CallResult(Outcome.REJECTED, 400, "malformed JSON")
    assert stored_visitors(emulator) == ["v-1"]


def test_reject_reason_is_redacted(emulator: Emulator, client: PendoClient) -> None:
    emulator.reject_track("visitorId", ["v-0"], f"bad key {DEMO_TRACK_SECRET} here")
    result = send_tracks(client, [body("v-0")])[0]
    assert result.outcome is Outcome.REJECTED
    assert DEMO_TRACK_SECRET not in result.reason
    assert "***" in result.reason


@pytest.mark.parametrize(
    ("status", "text", "reason"),
    [
        (413, "too large", "too large"),
        (422, "unprocessable", "unprocessable"),
        (400, "", "no reason given"),
    ],
)
def test_other_row_reject_statuses(
    emulator: Emulator, client: PendoClient, status: int, text: str, reason: str
) -> None:
    emulator.inject(
        route="track", status=status, body=text, match_field="visitorId", match_value="v-1"
    )
    results = send_tracks(client, bodies(3))
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.ACCEPTED]
    assert results[1] == CallResult(Outcome.REJECTED, status, reason)
    assert sorted(stored_visitors(emulator)) == ["v-0", "v-2"]


# --- retries -------------------------------------------------------------------------------------
def test_429_with_retry_after_waits_then_delivers_once(
    emulator: Emulator, client: PendoClient
) -> None:
    emulator.inject(route="track", status=429, retry_after="1", times=4)
    started = time.monotonic()
    results = send_tracks(client, bodies(10))
    elapsed = time.monotonic() - started
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert elapsed >= 0.95
    assert elapsed < 8
    assert_delivered_once(emulator, 10)
    assert emulator.request_counts() == {TRACK_ROUTE: 14}
    assert client.stats.retries == 4
    assert client.stats.in_doubt == 0


def test_an_observer_hears_every_attempt_start_end_and_retry(
    emulator: Emulator, client: PendoClient
) -> None:
    heard: list[tuple[str, object]] = []

    class Observer:
        def attempt_started(self, stream: str | None) -> None:
            heard.append(("started", stream))

        def attempt_ended(self, attempt: Attempt) -> None:
            heard.append(("ended", attempt.status))

        def retrying(self, stream: str | None, cause: str) -> None:
            heard.append(("retrying", cause))

    client.observe(Observer())
    emulator.inject(route="track", status=503, times=1)
    results = send_tracks(client, [body("v-0")], stream="s")
    assert results[0].outcome is Outcome.ACCEPTED
    assert heard == [
        ("started", "s"),
        ("ended", 503),
        ("retrying", "HTTP 503"),
        ("started", "s"),
        ("ended", 200),
    ]


def test_429_with_retry_after_http_date(emulator: Emulator, client: PendoClient) -> None:
    when = datetime.now(UTC) + timedelta(seconds=2)
    emulator.inject(
        route="track", status=429, retry_after=email.utils.format_datetime(when, usegmt=True)
    )
    started = time.monotonic()
    results = send_tracks(client, [body("v-0")])
    elapsed = time.monotonic() - started
    assert results[0].outcome is Outcome.ACCEPTED
    assert elapsed >= 0.9  # the date has whole seconds: 1 to 2 s from now
    assert elapsed < 8
    assert client.stats.retries == 1
    assert_delivered_once(emulator, 1)


@pytest.mark.parametrize("status", [429, 408, 409, 500, 502, 503, 504])
def test_retryable_status_without_retry_after(
    emulator: Emulator, client: PendoClient, status: int
) -> None:
    emulator.inject(route="track", status=status, times=3)
    results = send_tracks(client, bodies(5))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert_delivered_once(emulator, 5)
    assert emulator.request_counts() == {TRACK_ROUTE: 8}
    assert client.stats.retries == 3
    assert client.stats.in_doubt == 0
    assert client.stats.calls[TRACK_ROUTE] == 8


def test_same_body_retried_until_it_passes(emulator: Emulator, client: PendoClient) -> None:
    emulator.inject(route="track", status=503, times=2, match_field="visitorId", match_value="v-2")
    results = send_tracks(client, bodies(4))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert_delivered_once(emulator, 4)
    assert client.stats.retries == 2
    assert emulator.request_counts() == {TRACK_ROUTE: 6}


def test_dropped_connection_is_retried_in_doubt(emulator: Emulator, client: PendoClient) -> None:
    emulator.inject(route="track", drop=True, times=2)
    results = send_tracks(client, bodies(5))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    assert_delivered_once(emulator, 5)
    assert emulator.request_counts() == {TRACK_ROUTE: 7}
    assert client.stats.retries == 2
    assert client.stats.in_doubt == 2


def test_an_answer_broken_off_is_retried_in_doubt(emulator: Emulator, client: PendoClient) -> None:
    """Pendo handled the call, its answer broke off: sent again, counted in doubt."""
    emulator.inject(route="track", cut=True, times=1)
    results = send_tracks(client, [body("v-0")])
    assert results == [CallResult(Outcome.ACCEPTED, 200)]
    assert stored_visitors(emulator) == ["v-0", "v-0"]  # at most one more per broken answer
    assert client.stats.retries == 1
    assert client.stats.in_doubt == 1


def test_a_request_requests_cannot_make_is_one_network_error(make_client: ClientFactory) -> None:
    """A key requests refuses as a header (a line break pasted with it): not an OSError, which
    the CLI would blame on a path, but a PendoNetworkError that quotes no key; nothing sent."""
    client = make_client(integration_key="pasted-key\nZQ81")
    with pytest.raises(PendoNetworkError, match=r"cannot call .*InvalidHeader") as err:
        client.request("GET", "/api/v1/metadata/schema/visitor", API_SETTING)
    assert err.value.in_doubt is False
    assert "ZQ81" not in str(err.value)


def test_timeout_is_retried_and_counted_in_doubt(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client(request_timeout=0.5)
    emulator.inject(route="track", delay=1.0, times=1)
    results = send_tracks(client, [body("v-0")])
    assert results == [CallResult(Outcome.ACCEPTED, 200)]
    assert client.stats.retries >= 1
    assert client.stats.in_doubt >= 1
    # The client hung up before the emulator handled the slow request: it is abandoned.
    time.sleep(0.8)
    assert stored_visitors(emulator) == ["v-0"]
    assert emulator.request_counts() == {TRACK_ROUTE: 2}


def test_timeout_that_did_reach_pendo_is_the_documented_duplicate(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client(request_timeout=0.5)
    emulator.inject(route="track", delay=1.0, times=1, process_after_disconnect=True)
    results = send_tracks(client, [body("v-0")])
    assert results == [CallResult(Outcome.ACCEPTED, 200)]
    assert client.stats.in_doubt >= 1
    # Pendo got the first attempt too: the "in doubt" duplicate the report counts.
    assert wait_for(lambda: len(emulator.events()) == 2), emulator.events()
    assert stored_visitors(emulator) == ["v-0", "v-0"]


def test_retry_budget_exhausted_raises_unavailable(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client(max_retry_seconds=1.5)
    emulator.inject(route="track", status=503, times=None)
    started = time.monotonic()
    with pytest.raises(PendoUnavailableError) as info:
        send_tracks(client, [body("v-0")])
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 6
    assert "max_retry_seconds" in str(info.value)
    assert "503" in str(info.value)
    assert emulator.events() == []
    assert emulator.request_counts()[TRACK_ROUTE] >= 2


def test_unreachable_host_raises_unavailable(make_client: ClientFactory) -> None:
    client = make_client(api_url=f"http://127.0.0.1:{_closed_port()}", max_retry_seconds=0.5)
    with pytest.raises(PendoUnavailableError, match="max_retry_seconds"):
        send_tracks(client, [body("v-0")])
    assert client.stats.retries >= 1


def test_refused_connection_is_not_in_doubt(make_client: ClientFactory) -> None:
    client = make_client(api_url=f"http://127.0.0.1:{_closed_port()}", max_retry_seconds=0.5)
    with pytest.raises(PendoUnavailableError):
        send_tracks(client, [body("v-0")])
    assert client.stats.retries >= 1
    assert client.stats.in_doubt == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Retry-After parsing -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 2 ", 2.0),
        ("0", 0.5),  # a floor above zero: `Retry-After: 0` must not be a hot loop
        ("-3", 0.5),
        ("1.5", 1.5),
        ("86400", 600.0),  # a ceiling: a bogus day is not honoured
        ("nan", None),
        (None, None),
        ("", None),
        ("soon", None),
        ("Thu, 99 Foo 2020 25:61:00 GMT", None),
    ],
)
def test_parse_retry_after_values(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_dates() -> None:
    when = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = email.utils.format_datetime(when, usegmt=True)
    assert header == "Tue, 01 Jan 2030 12:00:00 GMT"
    assert parse_retry_after(header, now=when.timestamp() - 30) == pytest.approx(30.0)
    assert parse_retry_after(header, now=when.timestamp() + 30) == 0.5
    past = email.utils.format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.5
    future = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < (parse_retry_after(future) or 0) <= 120


# --- fatal answers -------------------------------------------------------------------------------
def test_wrong_track_secret_is_auth_error_without_the_value(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    wrong = "wrong-secret-Zq81xx"
    client = make_client(track_event_secret=wrong)
    with pytest.raises(PendoAuthError) as info:
        send_tracks(client, [body("v-0")])
    message = str(info.value)
    assert "track_event_secret" in message
    assert wrong not in message
    assert emulator.events() == []


def test_fatal_error_stops_other_sends(emulator: Emulator, make_client: ClientFactory) -> None:
    client = make_client(track_event_secret="wrong-secret-Zq81xx")
    called: list[CallResult] = []
    with pytest.raises(PendoAuthError):
        send_tracks(client, bodies(200), on_result=lambda i, r: called.append(r))
    assert emulator.request_counts()[TRACK_ROUTE] <= 20
    assert client.stats.calls[TRACK_ROUTE] <= 20
    # every call that went out got a definite "no": not sent, so not "in doubt" later
    assert len(called) == client.stats.calls[TRACK_ROUTE]
    assert {r.outcome for r in called} == {Outcome.NOT_SENT}
    # the client stays usable for later calls (here: still refused, but answered quickly)
    with pytest.raises(PendoAuthError):
        send_tracks(client, [body("v-0")])


def test_empty_track_secret_is_auth_error(emulator: Emulator, make_client: ClientFactory) -> None:
    client = make_client(track_event_secret="")
    with pytest.raises(PendoAuthError, match="track_event_secret"):
        send_tracks(client, bodies(10))
    assert emulator.request_counts() == {}


def test_401_is_auth_error(emulator: Emulator, client: PendoClient) -> None:
    emulator.inject(route="track", status=401)
    with pytest.raises(PendoAuthError, match="track_event_secret"):
        send_tracks(client, [body("v-0")])


def test_other_4xx_is_request_error_with_redacted_body(
    emulator: Emulator, client: PendoClient
) -> None:
    emulator.inject(route="track", status=418, body=f"teapot saw {DEMO_TRACK_SECRET}")
    with pytest.raises(PendoRequestError) as info:
        send_tracks(client, [body("v-0")])
    message = str(info.value)
    assert "418" in message
    assert "teapot" in message
    assert DEMO_TRACK_SECRET not in message


def test_wrong_path_prefix_is_not_found(emulator: Emulator, make_client: ClientFactory) -> None:
    client = make_client(api_url=emulator.url + "/nope")
    with pytest.raises(PendoNotFoundError) as info:
        send_tracks(client, bodies(3))
    assert "region" in str(info.value)
    assert "api_url" in str(info.value)
    assert emulator.events() == []
    with pytest.raises(PendoNotFoundError, match="region"):
        client.verify_integration_key()


# --- verify --------------------------------------------------------------------------------------
def test_verify_integration_key(emulator: Emulator, client: PendoClient) -> None:
    assert client.verify_integration_key() is True
    assert emulator.request_counts() == {"GET /api/v1/token/verify": 1}


def test_verify_wrong_integration_key(make_client: ClientFactory) -> None:
    wrong = "wrong-integration-Kq77"
    client = make_client(integration_key=wrong)
    with pytest.raises(PendoAuthError) as info:
        client.verify_integration_key()
    assert "integration_key" in str(info.value)
    assert wrong not in str(info.value)


def test_verify_empty_integration_key(emulator: Emulator, make_client: ClientFactory) -> None:
    client = make_client(integration_key=None)
    with pytest.raises(PendoAuthError, match="integration_key"):
        client.verify_integration_key()
    assert emulator.request_counts() == {}


def test_verify_is_retried(emulator: Emulator, client: PendoClient) -> None:
    emulator.inject(route="verify", status=503, retry_after="0")
    assert client.verify_integration_key() is True
    assert client.stats.retries == 1


def test_verify_read_only_key_is_false() -> None:
    with Emulator(integration_keys={"read-only-key": False}) as emu:
        client = PendoClient(
            emu.url,
            track_event_secret=None,
            integration_key="read-only-key",
            max_requests_per_second=0,
        )
        try:
            assert client.verify_integration_key() is False
        finally:
            client.close()


# --- pacing --------------------------------------------------------------------------------------
def test_rate_limiter_paces_threads() -> None:
    limiter = RateLimiter(20)
    stamps: list[float] = []
    lock = threading.Lock()
    remaining = [30]

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            limiter.acquire()
            now = time.monotonic()
            with lock:
                stamps.append(now)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert len(stamps) == 30
    assert elapsed >= 1.4  # 29 gaps of 1/20 s
    stamps.sort()
    busiest = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
    assert busiest <= 21


def test_rate_limiter_reports_wait() -> None:
    limiter = RateLimiter(4)
    assert limiter.acquire() == 0.0
    waited = limiter.acquire()
    interval = 1 / (4 * RateLimiter.HEADROOM)  # paced a little under the limit
    assert interval - 0.02 <= waited <= interval


@pytest.mark.parametrize("rate", [None, 0])
def test_rate_limiter_without_rate_never_waits(rate: float | None) -> None:
    limiter = RateLimiter(rate)
    started = time.monotonic()
    waits = [limiter.acquire() for _ in range(2000)]
    assert set(waits) == {0.0}
    assert time.monotonic() - started < 1.0


def test_client_pacing_stays_under_emulator_limit() -> None:
    with Emulator(rate_limit=10) as emu:
        client = PendoClient(
            emu.url,
            track_event_secret=DEMO_TRACK_SECRET,
            integration_key=DEMO_INTEGRATION_KEY,
            max_requests_per_second=8,
            request_timeout=5,
            max_retry_seconds=10,
        )
        try:
            started = time.monotonic()
            results = send_tracks(client, bodies(12))
            elapsed = time.monotonic() - started
        finally:
            client.close()
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
        assert elapsed >= 1.3  # 11 gaps of 1/8 s
        assert client.stats.retries == 0  # never over Pendo's per-key limit: no 429
        assert emu.request_counts() == {TRACK_ROUTE: 12}
        assert_delivered_once(emu, 12)


# --- thread safety -------------------------------------------------------------------------------
def test_concurrent_send_tracks_on_one_client(emulator: Emulator, client: PendoClient) -> None:
    outcomes: dict[str, list[CallResult]] = {}
    errors: list[BaseException] = []

    def run(prefix: str) -> None:
        try:
            outcomes[prefix] = send_tracks(client, bodies(100, prefix))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(outcomes) == ["a", "b"]
    for results in outcomes.values():
        assert len(results) == 100
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
    visitors = stored_visitors(emulator)
    assert len(visitors) == 200
    assert len(set(visitors)) == 200
    assert set(visitors) == {f"{p}-{i}" for p in ("a", "b") for i in range(100)}
    assert emulator.request_counts() == {TRACK_ROUTE: 200}
