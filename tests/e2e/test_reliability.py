"""Reliability: faults from the emulator, bad input, and secrets that must never leak."""

from __future__ import annotations

import json
import tempfile
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendo_emulator import Emulator
from target_pendo.errors import PendoUnavailableError

from ..singer import read_log, read_rejects, record, run_cli, run_target, schema, state

STREAM = "events"
TRACK = "POST /data/track"


def spec() -> dict:
    return {
        STREAM: {
            "event_name": "Fault Test",
            "visitor_id_column": "user_id",
            "timestamp_column": "occurred_at",
        }
    }


def rows(n: int, bad_visitor: set[int] = frozenset(), refused: set[int] = frozenset()) -> list:
    out = []
    for i in range(n):
        user = None if i in bad_visitor else (f"refused-{i}" if i in refused else f"u-{i}")
        out.append({"id": i, "user_id": user, "event": "x", "occurred_at": "2026-11-23T10:00:00Z"})
    return out


def lines_for(data: list[dict]) -> list[str]:
    lines = [schema(STREAM)] + [record(STREAM, r) for r in data]
    lines.append(state({"bookmarks": {STREAM: {"id": len(data) - 1}}}))
    return lines


def delivered_ids(emulator: Emulator) -> Counter:
    return Counter(e["properties"]["id"] for e in emulator.events())


# --- faults ------------------------------------------------------------------------------------
FAULTS = {
    "429 burst with Retry-After": [{"status": 429, "retry_after": "1", "times": 6}],
    "429 without Retry-After": [{"status": 429, "times": 4}],
    "500/502/503": [
        {"status": 500, "times": 2},
        {"status": 502, "times": 2, "after": 5},
        {"status": 503, "times": 2, "after": 10},
    ],
    "responses slower than the timeout": [{"delay": 1.0, "times": 3}],
    "dropped connections": [{"drop": True, "times": 4}, {"drop": True, "times": 2, "after": 20}],
}


@pytest.mark.parametrize("faults", list(FAULTS.values()), ids=list(FAULTS))
def test_faults_end_with_every_event_exactly_once(emulator, base_config, faults):
    for fault in faults:
        emulator.inject(route="track", **fault)
    config = {**base_config, "streams": spec(), "request_timeout": 0.5, "max_concurrency": 4}
    states, target = run_target(config, lines_for(rows(60)))
    assert delivered_ids(emulator) == Counter(range(60))
    assert states == [{"bookmarks": {STREAM: {"id": 59}}}]
    assert target.run_context.client.stats.retries >= sum(f.get("times", 1) for f in faults)


def test_an_answer_broken_off_is_sent_again_as_in_doubt(emulator, base_config, tmp_path):
    """A proxy or load balancer drops the connection mid-answer: the event reached Pendo, its
    answer did not. The call is in doubt and sent again (Pendo has no idempotency key): at
    most one duplicate per broken answer, and the run ends well."""
    emulator.inject(route="track", cut=True, times=2, after=3)
    config = {**base_config, "streams": spec(), "max_concurrency": 4}
    result = run_cli(config, lines_for(rows(30)), tmp_path)
    assert result.returncode == 0, result.stderr
    delivered = delivered_ids(emulator)
    assert set(delivered) == set(range(30))
    assert sum(delivered.values()) - 30 <= 2
    assert json.loads(result.stdout.splitlines()[-1]) == {"bookmarks": {STREAM: {"id": 29}}}


def test_pendo_down_past_the_budget_fails_without_state(emulator, base_config, tmp_path):
    emulator.inject(route="track", status=503, after=10, times=None)
    config = {**base_config, "streams": spec(), "max_retry_seconds": 1, "max_concurrency": 2}
    result = run_cli(config, lines_for(rows(40)), tmp_path)
    assert result.returncode == 1
    assert "max_retry_seconds" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == ""  # no STATE for the rows not sent
    assert len(emulator.events()) == 10


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n=st.integers(min_value=1, max_value=30),
    data=st.data(),
)
def test_property_random_faults_and_bad_rows(emulator, base_config, n, data):
    """delivered + rejected = input, no row both delivered and rejected, none twice."""
    emulator.reset()
    ids = list(range(n))
    bad_visitor = set(data.draw(st.lists(st.sampled_from(ids), max_size=3)))
    refused = set(data.draw(st.lists(st.sampled_from(ids), max_size=3))) - bad_visitor
    emulator.reject_track("visitorId", [f"refused-{i}" for i in refused], "refused by Pendo")
    kinds = st.sampled_from(
        [
            {"status": 429, "retry_after": "0"},
            {"status": 429},
            {"status": 500},
            {"status": 502},
            {"status": 503},
            {"status": 408},
            {"drop": True},
            {"delay": 0.4},
        ]
    )
    schedule = data.draw(
        st.lists(st.tuples(kinds, st.integers(0, n), st.integers(1, 3)), max_size=4)
    )
    for fault, after, times in schedule:
        emulator.inject(route="track", after=after, times=times, **fault)
    state_dir = tempfile.mkdtemp(prefix="target-pendo-prop-")
    config = {
        **base_config,
        "streams": spec(),
        "state_dir": state_dir,
        "request_timeout": 0.25,
        "max_concurrency": 3,
    }
    lines = lines_for(rows(n, bad_visitor, refused))
    reruns = 0
    try:
        run_target(config, lines)
    except PendoUnavailableError:
        # The schedule outlasted the retry budget: the run failed without STATE. Pendo
        # recovers and the same input is piped again, as an orchestrator's retry would.
        emulator.faults.clear()
        reruns = 1
        run_target(config, lines)

    delivered = delivered_ids(emulator)
    rejected = Counter(r["key"] for r in read_rejects(state_dir, STREAM))
    assert all(count == 1 for count in delivered.values()), delivered  # no duplicates
    # a rerun sends a refused row again (rejected rows are retried), so it may be listed twice
    assert all(count <= 1 + reruns for count in rejected.values()), rejected
    assert not set(delivered) & set(rejected)
    assert set(delivered) | set(rejected) == set(ids)
    assert set(rejected) == bad_visitor | refused


# --- bad input ---------------------------------------------------------------------------------
BAD_INPUTS = {
    "malformed JSON": (
        lambda: [schema(STREAM), '{"type": "RECORD", "stream": "events", "record": {'],
        ["input line 2 is not valid JSON"],
    ),
    "RECORD before SCHEMA": (
        lambda: [record(STREAM, rows(1)[0])],
        ["before a corresponding schema", "input line 1", "'events'"],
    ),
    "record without its key": (
        lambda: [schema(STREAM), record(STREAM, {"user_id": "u"})],
        ["missing one or more key_properties", "input line 2", "['id']"],
    ),
    "configured column not in the schema": (
        lambda: [schema(STREAM, {"id": {"type": "integer"}, "user": {"type": "string"}})],
        ["stream 'events'", "visitor_id_column names column 'user_id'", "columns: ['id', 'user']"],
    ),
    "unmapped stream": (
        lambda: [schema("orders")],
        ["stream 'orders' is not in setting 'streams'", "unmapped_streams"],
    ),
}


@pytest.mark.parametrize(("make", "expected"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_is_one_clear_error(emulator, base_config, tmp_path, make, expected):
    result = run_cli({**base_config, "streams": spec()}, make(), tmp_path)
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if "target-pendo: error:" in line]
    assert len(error_lines) == 1, result.stderr
    for fragment in expected:
        assert fragment in error_lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == ""


def test_row_level_problems_are_rejected_with_stream_key_and_field(emulator, base_config):
    data = rows(4)
    data[1]["user_id"] = None
    data[2]["occurred_at"] = "31/02/2026"
    data[3]["id"] = "not-an-integer"  # breaks the stream's schema
    run_target({**base_config, "streams": spec()}, lines_for(data))
    rejects = {r["key"]: r for r in read_rejects(base_config["state_dir"], STREAM)}
    assert set(rejects) == {1, 2, "not-an-integer"}
    assert rejects[1]["field"] == "user_id"
    assert rejects[2]["field"] == "occurred_at"
    assert "'31/02/2026'" in rejects[2]["reason"]
    assert rejects["not-an-integer"]["field"] == "id"
    assert all(r["stream"] == STREAM for r in rejects.values())


def test_large_properties_are_counted(emulator, base_config):
    props = {"id": {"type": "integer"}, "user_id": {"type": "string"}, "notes": {"type": "string"}}
    config = {
        **base_config,
        "streams": {STREAM: {"event_name": "E", "visitor_id_column": "user_id"}},
    }
    lines = [
        schema(STREAM, props),
        record(STREAM, {"id": 1, "user_id": "u", "notes": "x" * 600}),
        record(STREAM, {"id": 2, "user_id": "u", "notes": "short"}),
    ]
    _, target = run_target(config, lines)
    assert len(emulator.events()) == 2
    assert target.run_context.report.streams[STREAM].large_properties == 1


# --- secrets -----------------------------------------------------------------------------------
TRACK_SECRET = "trk-5ecret-8d1f0c2a"
API_KEY = "int-5ecret-77e0b9f4"


def test_secrets_appear_nowhere_even_with_debug_logging(tmp_path):
    with Emulator(track_secrets=(TRACK_SECRET,), integration_keys={API_KEY: True}) as emulator:
        emulator.seed("visitor", group="custom", fields={"plan": "string"})
        emulator.seed("visitor", ["v-1"])
        emulator.reject_track("visitorId", ["u-2"], f"refused; your key was {TRACK_SECRET}")
        emulator.inject(route="track", status=429, retry_after="0", times=2, body=API_KEY)
        state_dir = tmp_path / "state"
        config = {
            "api_url": emulator.url,
            "track_event_secret": TRACK_SECRET,
            "integration_key": API_KEY,
            "state_dir": str(state_dir),
            "max_requests_per_second": 1000,
            "max_rejected_fraction": 1,
            "streams": {
                **spec(),
                "users": {"sync": "visitor", "custom_fields": {"plan": "plan"}},
            },
        }
        lines = lines_for(rows(5))
        lines += [
            schema("users", {"id": {"type": "string"}, "plan": {"type": "string"}}),
            record("users", {"id": "v-1", "plan": "pro"}),
            record("users", {"id": "v-404", "plan": "pro"}),
        ]
        env = {"TARGET_PENDO_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}
        good = run_cli(config, lines, tmp_path, env=env)
        assert good.returncode == 0, good.stderr
        assert "DEBUG" in good.stderr  # debug logging really was on
        bad = run_cli(
            {**config, "track_event_secret": "wrong-" + TRACK_SECRET}, lines, tmp_path, env=env
        )
        assert bad.returncode == 1
        outputs = good.stdout + good.stderr + bad.stdout + bad.stderr
        for secret in (TRACK_SECRET, API_KEY):
            assert secret not in outputs
            for path in state_dir.rglob("*"):
                if path.is_file():
                    assert secret.encode() not in path.read_bytes(), path
        assert "***" in json.dumps(read_log(state_dir, "rejects", STREAM))
