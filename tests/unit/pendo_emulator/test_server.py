"""The bundled emulator follows ../shared/pendo-api.md, checked with plain `requests` over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any

import certifi
import pytest
import requests

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator

KEY = "x-pendo-integration-key"
TRACK = "/data/track"
VERIFY = "/api/v1/token/verify"
TIMEOUT = 5


def event(visitor: str = "u-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "track",
        "event": "Report Exported",
        "visitorId": visitor,
        "accountId": "acme",
        "timestamp": 1763856000000,
        "properties": {"plan": "pro", "rows": 120},
        "context": {"ip": "76.253.187.23"},
    }
    body.update(overrides)
    return body


def post_track(
    url: str,
    body: Any,
    key: str | None = DEMO_TRACK_SECRET,
    raw: bytes | None = None,
    session: requests.Session | None = None,
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers[KEY] = key
    data = raw if raw is not None else json.dumps(body).encode()
    return (session or requests).post(url + TRACK, data=data, headers=headers, timeout=TIMEOUT)


def visitors(emu: Emulator) -> list[str]:
    return [e["visitorId"] for e in emu.events()]


# --- /data/track -----------------------------------------------------------------------------
def test_track_with_track_secret_is_stored_with_empty_200(emulator: Emulator) -> None:
    body = event("u-42", timestamp=int(time.time() * 1000))
    response = post_track(emulator.url, body)
    assert response.status_code == 200
    assert response.content == b""
    events = emulator.events()
    assert len(events) == 1
    stored = dict(events[0])
    assert isinstance(stored.pop("_received_at"), int)
    assert stored.pop("_processed") is True
    assert stored == body


def test_track_accepts_minimal_body(emulator: Emulator) -> None:
    body = {"type": "track", "event": "E", "visitorId": "v", "timestamp": 0, "context": {}}
    assert post_track(emulator.url, body).status_code == 200
    assert visitors(emulator) == ["v"]


@pytest.mark.parametrize(
    "key",
    [None, "", "not-the-secret", DEMO_INTEGRATION_KEY],
    ids=["missing", "empty", "wrong", "integration-key"],
)
def test_track_with_wrong_or_missing_key_is_403_empty(emulator: Emulator, key: str | None) -> None:
    response = post_track(emulator.url, event(), key=key)
    assert response.status_code == 403
    assert response.content == b""
    assert emulator.events() == []


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        (b"{not json", "malformed"),
        (b"", "malformed"),
        (b"[1, 2]", "object"),
        (b"null", "object"),
        (b'"a string"', "object"),
        (json.dumps(event(type="identify")).encode(), "type"),
        (json.dumps({k: v for k, v in event().items() if k != "type"}).encode(), "type"),
        (json.dumps({k: v for k, v in event().items() if k != "event"}).encode(), "event"),
        (json.dumps(event(event="")).encode(), "event"),
        (json.dumps({k: v for k, v in event().items() if k != "visitorId"}).encode(), "visitorId"),
        (json.dumps(event(visitorId=42)).encode(), "visitorId"),
        (json.dumps(event(timestamp=1.5)).encode(), "timestamp"),
        (json.dumps(event(timestamp="123")).encode(), "timestamp"),
        (json.dumps(event(timestamp=True)).encode(), "timestamp"),
        (json.dumps({k: v for k, v in event().items() if k != "timestamp"}).encode(), "timestamp"),
        (json.dumps(event(properties=[1])).encode(), "properties"),
        (json.dumps(event(context="x")).encode(), "context"),
        (json.dumps(event(context=None)).encode(), "context"),
        (json.dumps({k: v for k, v in event().items() if k != "context"}).encode(), "context"),
    ],
    ids=[
        "malformed",
        "empty-body",
        "array",
        "null",
        "string",
        "type-identify",
        "type-missing",
        "event-missing",
        "event-empty",
        "visitor-missing",
        "visitor-int",
        "timestamp-float",
        "timestamp-string",
        "timestamp-bool",
        "timestamp-missing",
        "properties-list",
        "context-string",
        "context-null",
        "context-missing",
    ],
)
def test_track_invalid_body_is_400_plain_text(
    emulator: Emulator, raw: bytes, reason_part: str
) -> None:
    response = post_track(emulator.url, None, raw=raw)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert reason_part in response.text
    assert emulator.events() == []


def test_track_rule_rejects_matching_events_only(emulator: Emulator) -> None:
    emulator.reject_track("visitorId", ["bad-1", "bad-2"], "visitor is blocked")
    assert post_track(emulator.url, event("ok-1")).status_code == 200
    response = post_track(emulator.url, event("bad-2"))
    assert response.status_code == 400
    assert response.text == "visitor is blocked"
    assert visitors(emulator) == ["ok-1"]


def test_track_rule_with_unhashable_body_value_still_answers(emulator: Emulator) -> None:
    emulator.reject_track("accountId", ["banned"], "account banned")
    response = post_track(emulator.url, event("v-1", accountId=["a", "b"]))
    assert response.status_code in (200, 400)


# --- /api/v1/token/verify ----------------------------------------------------------------------
def test_verify_with_integration_key(emulator: Emulator) -> None:
    response = requests.get(
        emulator.url + VERIFY, headers={KEY: DEMO_INTEGRATION_KEY}, timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert response.json() == {"valid": True, "writeAccess": True}


@pytest.mark.parametrize(
    "key", [None, "wrong-key", DEMO_TRACK_SECRET], ids=["missing", "wrong", "track-secret"]
)
def test_verify_without_valid_key_is_403_empty(emulator: Emulator, key: str | None) -> None:
    headers = {KEY: key} if key is not None else {}
    response = requests.get(emulator.url + VERIFY, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 403
    assert response.content == b""


def test_verify_read_only_key_reports_no_write_access() -> None:
    with Emulator(integration_keys={"read-only-key": False}) as emu:
        response = requests.get(emu.url + VERIFY, headers={KEY: "read-only-key"}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"valid": True, "writeAccess": False}


def test_unknown_route_is_404(emulator: Emulator) -> None:
    response = requests.post(
        emulator.url + "/nope/data/track",
        data=b"{}",
        headers={KEY: DEMO_TRACK_SECRET},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404
    assert emulator.events() == []


# --- request counts ----------------------------------------------------------------------------
def test_request_counts_per_route_include_faulted_requests(emulator: Emulator) -> None:
    emulator.inject(route="track", status=503, times=1)
    for i in range(3):
        post_track(emulator.url, event(f"v-{i}"))
    post_track(emulator.url, event(), key="wrong")
    requests.get(emulator.url + VERIFY, headers={KEY: DEMO_INTEGRATION_KEY}, timeout=TIMEOUT)
    requests.get(emulator.url + "/elsewhere", timeout=TIMEOUT)
    requests.get(emulator.url + "/_emulator/events", timeout=TIMEOUT)  # control: not counted
    assert emulator.request_counts() == {
        "POST /data/track": 4,
        "GET /api/v1/token/verify": 1,
        "GET /elsewhere": 1,
    }
    assert visitors(emulator) == ["v-1", "v-2"]


# --- faults ------------------------------------------------------------------------------------
def test_fault_429_with_retry_after(emulator: Emulator) -> None:
    emulator.inject(route="track", status=429, retry_after="7", body="slow down")
    first = post_track(emulator.url, event("v-1"))
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert first.text == "slow down"
    second = post_track(emulator.url, event("v-2"))
    assert second.status_code == 200
    assert visitors(emulator) == ["v-2"]


def test_fault_429_without_retry_after(emulator: Emulator) -> None:
    emulator.inject(route="track", status=429)
    response = post_track(emulator.url, event())
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert emulator.events() == []


def test_fault_times(emulator: Emulator) -> None:
    emulator.inject(route="track", status=500, times=3)
    statuses = [post_track(emulator.url, event(f"v-{i}")).status_code for i in range(5)]
    assert statuses == [500, 500, 500, 200, 200]
    assert visitors(emulator) == ["v-3", "v-4"]


def test_fault_times_none_is_forever(emulator: Emulator) -> None:
    emulator.inject(route="track", status=502, times=None)
    statuses = {post_track(emulator.url, event(f"v-{i}")).status_code for i in range(6)}
    assert statuses == {502}
    assert emulator.faults.pending() == 1


def test_fault_after(emulator: Emulator) -> None:
    emulator.inject(route="track", status=503, after=2, times=1)
    statuses = [post_track(emulator.url, event(f"v-{i}")).status_code for i in range(4)]
    assert statuses == [200, 200, 503, 200]
    assert visitors(emulator) == ["v-0", "v-1", "v-3"]


def test_fault_match_field(emulator: Emulator) -> None:
    emulator.inject(
        route="track", status=500, times=None, match_field="visitorId", match_value="flaky"
    )
    assert post_track(emulator.url, event("steady")).status_code == 200
    assert post_track(emulator.url, event("flaky")).status_code == 500
    assert post_track(emulator.url, event("flaky")).status_code == 500
    assert post_track(emulator.url, event("steady-2")).status_code == 200
    assert visitors(emulator) == ["steady", "steady-2"]


def test_fault_route_filter(emulator: Emulator) -> None:
    emulator.inject(route="verify", status=503)
    assert post_track(emulator.url, event()).status_code == 200
    verify = requests.get(
        emulator.url + VERIFY, headers={KEY: DEMO_INTEGRATION_KEY}, timeout=TIMEOUT
    )
    assert verify.status_code == 503


def test_fault_drop_closes_connection(emulator: Emulator) -> None:
    emulator.inject(route="track", drop=True)
    with pytest.raises(requests.ConnectionError):
        post_track(emulator.url, event("dropped"))
    assert post_track(emulator.url, event("after")).status_code == 200
    assert visitors(emulator) == ["after"]
    assert emulator.request_counts()["POST /data/track"] == 2


def test_fault_cut_handles_the_request_and_breaks_its_answer(emulator: Emulator) -> None:
    emulator.inject(route="track", cut=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post_track(emulator.url, event("handled"))
    assert post_track(emulator.url, event("after")).status_code == 200
    assert visitors(emulator) == ["handled", "after"]


def test_fault_delay_then_normal_answer(emulator: Emulator) -> None:
    emulator.inject(route="track", delay=0.6)
    started = time.monotonic()
    response = post_track(emulator.url, event("slow"))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed >= 0.55
    assert visitors(emulator) == ["slow"]
    started = time.monotonic()
    assert post_track(emulator.url, event("fast")).status_code == 200
    assert time.monotonic() - started < 0.5


def test_fault_needs_status_delay_or_drop(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="status"):
        emulator.inject(route="track")
    with pytest.raises(ValueError, match="route"):
        emulator.inject(route="nowhere", status=500)


# --- control routes over HTTP ------------------------------------------------------------------
def test_control_faults_add_and_clear(emulator: Emulator) -> None:
    url = emulator.url + "/_emulator/faults"
    added = requests.post(
        url, json={"route": "track", "status": 429, "retry_after": 1}, timeout=TIMEOUT
    )
    assert added.status_code == 200
    assert added.json() == {"pending": 1}
    added = requests.post(
        url,
        json=[{"route": "track", "status": 500, "times": None}, {"route": "verify", "status": 503}],
        timeout=TIMEOUT,
    )
    assert added.json() == {"pending": 3}
    first = post_track(emulator.url, event())
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "1"
    assert post_track(emulator.url, event()).status_code == 500
    cleared = requests.delete(url, timeout=TIMEOUT)
    assert cleared.status_code == 200
    assert cleared.json() == {"pending": 0}
    assert post_track(emulator.url, event()).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        b"{oops",
        b"",
        b'{"route": "nowhere", "status": 500}',
        b'{"route": "track"}',
        b'{"route": "track", "status": 500, "colour": "red"}',
    ],
    ids=["bad-json", "empty", "bad-route", "no-effect", "unknown-field"],
)
def test_control_faults_bad_request_is_400(emulator: Emulator, payload: bytes) -> None:
    response = requests.post(emulator.url + "/_emulator/faults", data=payload, timeout=TIMEOUT)
    assert response.status_code == 400
    assert emulator.faults.pending() == 0


def test_control_events_and_requests(emulator: Emulator) -> None:
    post_track(emulator.url, event("a"))
    post_track(emulator.url, event("b"))
    events = requests.get(emulator.url + "/_emulator/events", timeout=TIMEOUT)
    assert events.status_code == 200
    assert [e["visitorId"] for e in events.json()["events"]] == ["a", "b"]
    counts = requests.get(emulator.url + "/_emulator/requests", timeout=TIMEOUT)
    assert counts.json() == {"counts": {"POST /data/track": 2}}


def test_control_track_rules(emulator: Emulator) -> None:
    response = requests.post(
        emulator.url + "/_emulator/track-rules",
        json={"field": "event", "values": ["Forbidden"], "reason": "event name not allowed"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    rejected = post_track(emulator.url, event(event="Forbidden"))
    assert rejected.status_code == 400
    assert rejected.text == "event name not allowed"
    assert post_track(emulator.url, event(event="Allowed")).status_code == 200
    bad = requests.post(
        emulator.url + "/_emulator/track-rules", json={"field": "event"}, timeout=TIMEOUT
    )
    assert bad.status_code == 400


def test_control_reset(emulator: Emulator) -> None:
    emulator.reject_track("visitorId", ["x"], "no")
    post_track(emulator.url, event("a"))
    emulator.inject(route="track", status=500, times=None)
    response = requests.post(emulator.url + "/_emulator/reset", timeout=TIMEOUT)
    assert response.status_code == 200
    assert emulator.events() == []
    assert emulator.request_counts() == {}
    assert emulator.faults.pending() == 0
    assert post_track(emulator.url, event("x")).status_code == 200  # rule gone, fault gone
    assert visitors(emulator) == ["x"]


def test_unknown_control_route_is_404(emulator: Emulator) -> None:
    response = requests.get(emulator.url + "/_emulator/nothing", timeout=TIMEOUT)
    assert response.status_code == 404


# --- per-key rate limit ------------------------------------------------------------------------
def test_rate_limit_burst_gets_429() -> None:
    with Emulator(rate_limit=5) as emu, requests.Session() as session:
        statuses = [
            post_track(emu.url, event(f"v-{i}"), session=session).status_code for i in range(15)
        ]
        ok = statuses.count(200)
        assert 5 <= ok <= 7
        assert statuses.count(429) == 15 - ok
        assert statuses[:5] == [200] * 5
        assert len(emu.events()) == ok
        # another key has its own bucket
        verify = session.get(emu.url + VERIFY, headers={KEY: DEMO_INTEGRATION_KEY}, timeout=TIMEOUT)
        assert verify.status_code == 200
        # the bucket refills at `rate` a second
        time.sleep(0.5)
        assert post_track(emu.url, event("later"), session=session).status_code == 200


# --- CLI ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator_cli(*args: str) -> subprocess.Popen[str]:
    """`target-pendo-emulator ARGS` as a subprocess; its stderr is read as text."""
    return subprocess.Popen(
        [sys.executable, "-c", "from pendo_emulator.server import main; main()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_serves_track_and_events() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_emulator_cli(
        "--port",
        str(port),
        "--schema-case",
        "lowercase",
        "--item-budget",
        "100",
        "--block-undefined-agent-fields",
        "true",
        "--rate-limit-retry-after",
        "null",
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "exited"
            try:
                if requests.get(url + "/_emulator/events", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "emulator CLI did not answer in time"
            time.sleep(0.1)
        assert post_track(url, event("cli-visitor")).status_code == 200
        events = requests.get(url + "/_emulator/events", timeout=TIMEOUT).json()["events"]
        assert [e["visitorId"] for e in events] == ["cli-visitor"]
        switches = requests.get(url + "/_emulator/switches", timeout=TIMEOUT).json()["switches"]
        assert switches["schema_case"] == "lowercase"
        assert switches["item_budget"] == 100
        assert switches["block_undefined_agent_fields"] is True
        assert switches["rate_limit_retry_after"] is None
        assert switches["bad_value"] == "item"  # not given: the default
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_a_fault_waiting_out_after_does_not_block_later_faults(emulator):
    emulator.inject(route="track", status=500, after=2)
    emulator.inject(route="track", status=503)
    statuses = [post_track(emulator.url, event(f"f{i}")).status_code for i in range(4)]
    assert statuses == [503, 200, 500, 200]


def test_times_below_one_is_refused(emulator):
    with pytest.raises(ValueError, match="times"):
        emulator.inject(route="track", status=500, times=0)


def test_seed_by_count_creates_prefixed_ids(emulator):
    response = requests.post(
        emulator.url + "/_emulator/seed",
        json={"kind": "account", "id_prefix": "a-", "count": 3},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert sorted(emulator.objects("account")) == ["a-0", "a-1", "a-2"]


def test_cli_refuses_a_bad_switch_value() -> None:
    from pendo_emulator.server import main

    with pytest.raises(SystemExit) as exc:
        main(["--bad-value", "sometimes"])
    assert exc.value.code == 2


def test_cli_tls_serves_https_with_a_ca_written_for_requests(tmp_path) -> None:
    """`--tls`: a certificate for localhost and each --tls-name, its CA in --ca-file, which
    verifies it; without the CA the certificate does not verify."""
    port = _free_port()
    ca = tmp_path / "ca.pem"
    proc = start_emulator_cli(
        "--port", str(port), "--tls", "--tls-name", "app.pendo.io", "--ca-file", str(ca)
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert f"REQUESTS_CA_BUNDLE={ca}" in first
        assert f"listening on https://127.0.0.1:{port}" in proc.stderr.readline()
        url = f"https://localhost:{port}/_emulator/events"
        assert requests.get(url, timeout=TIMEOUT, verify=str(ca)).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, timeout=TIMEOUT, verify=certifi.where())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
