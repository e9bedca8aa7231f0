"""Event sync end to end: Singer input -> target -> real HTTP -> emulator."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from contextlib import redirect_stdout
from io import StringIO

import pytest

from pendo_emulator import DEMO_TRACK_SECRET
from target_pendo.errors import PendoUnavailableError, UnmappedStreamError
from target_pendo.target import TargetPendo

from ..singer import TARGET_CMD, read_rejects, record, run_cli, run_target, schema, state

STREAM = "product_events"
TRACK = "POST /data/track"


def events_config(base_config: dict, **spec: object) -> dict:
    stream_spec = {
        "event_name_column": "event",
        "visitor_id_column": "user_id",
        "account_id_column": "account_id",
        "timestamp_column": "occurred_at",
        **spec,
    }
    return {**base_config, "streams": {STREAM: stream_spec}}


def row(i: int, **overrides: object) -> dict:
    base = {
        "id": i,
        "user_id": f"u-{i}",
        "account_id": f"acct-{i % 7}",
        "event": "Report Exported" if i % 2 else "Signed Up",
        "occurred_at": "2026-11-23T12:00:00.250Z",
        "plan": "pro",
        "amount": i / 4,
    }
    base.update(overrides)
    return base


def test_thousand_events_with_pendo_rejects_and_missing_visitors(emulator, base_config):
    """The issue's acceptance run: 3 invalid for Pendo + 2 without visitor -> 995 stored."""
    blocked = {100: "blocked-1", 200: "blocked-2", 300: "blocked-3"}
    emulator.reject_track("visitorId", list(blocked.values()), "visitorId is on the block list")
    lines = [schema(STREAM)]
    for i in range(1000):
        overrides: dict = {}
        if i in blocked:
            overrides["user_id"] = blocked[i]
        if i in (400, 500):
            overrides["user_id"] = None
        lines.append(record(STREAM, row(i, **overrides)))
    lines.append(state({"bookmarks": {STREAM: {"id": 999}}}))

    states, _ = run_target(events_config(base_config), lines)

    events = emulator.events()
    assert len(events) == 995
    assert emulator.request_counts()[TRACK] == 998
    assert sorted(e["properties"]["id"] for e in events) == sorted(
        set(range(1000)) - set(blocked) - {400, 500}
    )
    rejects = read_rejects(base_config["state_dir"], STREAM)
    assert sorted(r["key"] for r in rejects) == [100, 200, 300, 400, 500]
    by_key = {r["key"]: r for r in rejects}
    assert "visitorId is on the block list" in by_key[100]["reason"]
    assert "HTTP 400" in by_key[100]["reason"]
    assert by_key[400]["field"] == "user_id"
    assert "'user_id' is missing or null" in by_key[400]["reason"]
    assert by_key[400]["record"]["id"] == 400
    assert states == [{"bookmarks": {STREAM: {"id": 999}}}]


def test_event_payload_is_exactly_the_mapped_row(emulator, base_config):
    run_target(events_config(base_config), [schema(STREAM), record(STREAM, row(3))])
    (event,) = emulator.events()
    # the emulator's own bookkeeping (arrival time, whether Pendo would process it) aside
    event = {k: v for k, v in event.items() if not k.startswith("_")}
    assert event == {
        "type": "track",
        "event": "Report Exported",
        "visitorId": "u-3",
        "accountId": "acct-3",
        "timestamp": int(dt.datetime(2026, 11, 23, 12, 0, 0, 250000, dt.UTC).timestamp() * 1000),
        "properties": {"id": 3, "plan": "pro", "amount": 0.75},
        "context": {},
    }


def test_default_properties_get_pendo_safe_names(emulator, base_config):
    props = {
        "id": {"type": "integer"},
        "user": {"type": "string"},
        "plan-tier": {"type": "string"},
        "2fa": {"type": "boolean"},
        "_sdc_extracted_at": {"type": ["string", "null"]},
    }
    config = {**base_config, "streams": {"s": {"event_name": "Seen", "visitor_id_column": "user"}}}
    run_target(
        config,
        [
            schema("s", props),
            record("s", {"id": 1, "user": "u", "plan-tier": "gold", "2fa": True}),
        ],
    )
    (event,) = emulator.events()
    assert event["properties"] == {"id": 1, "plan_tier": "gold", "_2fa": True}


def test_rows_without_timestamp_column_use_send_time(emulator, base_config):
    config = events_config(base_config, timestamp_column=None, context_columns={"ip": "plan"})
    before = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    run_target(config, [schema(STREAM), record(STREAM, row(1))])
    after = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    (event,) = emulator.events()
    assert before <= event["timestamp"] <= after
    assert event["context"] == {"ip": "pro"}
    assert "occurred_at" in event["properties"]


def test_timestamp_forms_and_unusable_ones(emulator, base_config):
    props = {"id": {"type": "integer"}, "user": {"type": "string"}, "ts": {}}
    config = {
        **base_config,
        "streams": {
            "s": {"event_name": "E", "visitor_id_column": "user", "timestamp_column": "ts"}
        },
    }
    expected = 1_763_856_000_000  # 2025-11-23T00:00:00Z
    values = [
        expected,
        expected // 1000,
        "2025-11-23T00:00:00Z",
        "2025-11-23T01:00:00+01:00",
        "2025-11-23",
        str(expected),
    ]
    lines = [schema("s", props)]
    lines += [record("s", {"id": i, "user": f"u{i}", "ts": v}) for i, v in enumerate(values)]
    lines += [
        record("s", {"id": 100, "user": "x", "ts": "yesterday-ish"}),
        record("s", {"id": 101, "user": "x", "ts": None}),
        record("s", {"id": 102, "user": "x", "ts": True}),
    ]
    _, target = run_target(config, lines)
    assert [e["timestamp"] for e in emulator.events()] == [expected] * len(values)
    rejects = read_rejects(base_config["state_dir"], "s")
    assert sorted(r["key"] for r in rejects) == [100, 101, 102]
    assert all(r["field"] == "ts" and "timestamp column 'ts'" in r["reason"] for r in rejects)
    counts = target.run_context.report.streams["s"]
    assert (counts.received, counts.sent, counts.rejected) == (9, 6, 3)
    # the SDK's per-record warnings should not be needed to find the problem: the report says it
    assert counts.old_events == len(values)


def test_old_events_are_sent_counted_and_warned(emulator, base_config, caplog):
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).isoformat()
    fresh = dt.datetime.now(dt.UTC).isoformat()
    lines = [
        schema(STREAM),
        record(STREAM, row(1, occurred_at=old)),
        record(STREAM, row(2, occurred_at=fresh)),
    ]
    _, target = run_target(events_config(base_config), lines)
    assert len(emulator.events()) == 2
    assert target.run_context.report.streams[STREAM].old_events == 1
    assert "more than 7 days old" in caplog.text


def test_schema_violation_rejects_the_row_not_the_run(emulator, base_config):
    lines = [schema(STREAM), record(STREAM, row(1, amount="lots")), record(STREAM, row(2))]
    run_target(events_config(base_config), lines)
    assert [e["visitorId"] for e in emulator.events()] == ["u-2"]
    (reject,) = read_rejects(base_config["state_dir"], STREAM)
    assert reject["field"] == "amount"
    assert "column 'amount' does not match the stream's schema" in reject["reason"]


def test_unmapped_stream_fails_before_sending(emulator, base_config):
    config = events_config(base_config)
    with pytest.raises(UnmappedStreamError) as err:
        run_target(config, [schema("other"), record("other", row(1))])
    assert "'other'" in str(err.value)
    assert STREAM in str(err.value)
    assert "unmapped_streams" in str(err.value)
    assert emulator.request_counts() == {}


def test_unmapped_stream_skipped_when_asked(emulator, base_config):
    config = {**events_config(base_config), "unmapped_streams": "skip"}
    lines = [schema("other"), record("other", row(1)), schema(STREAM), record(STREAM, row(2))]
    _, target = run_target(config, lines)
    assert [e["visitorId"] for e in emulator.events()] == ["u-2"]
    assert target.run_context.report.streams["other"].skipped == 1


def test_wildcard_spec_routes_unlisted_streams(emulator, base_config):
    config = {
        **base_config,
        "streams": {"*": {"event_name": "Any", "visitor_id_column": "user_id"}},
    }
    run_target(config, [schema("a"), record("a", row(1)), schema("b"), record("b", row(2))])
    assert sorted(e["visitorId"] for e in emulator.events()) == ["u-1", "u-2"]


def test_config_column_missing_from_schema_is_a_clear_error(emulator, base_config):
    config = events_config(base_config, account_id_column="acct")
    with pytest.raises(Exception, match=r"account_id_column names column 'acct'"):
        run_target(config, [schema(STREAM), record(STREAM, row(1))])
    assert emulator.request_counts() == {}


def test_state_never_passes_rows_pendo_did_not_accept(emulator, base_config):
    """Pendo goes down for good midway: every STATE emitted covers only delivered rows."""
    config = {**events_config(base_config), "batch_size_rows": 10, "max_retry_seconds": 1}
    emulator.inject(route="track", status=503, after=35, times=None)
    lines = [schema(STREAM)]
    for i in range(100):
        lines.append(record(STREAM, row(i)))
        if i % 5 == 4:
            lines.append(state({"bookmarks": {STREAM: {"id": i}}}))
    target = TargetPendo(config=config, parse_env_config=False)
    target._MAX_RECORD_AGE_IN_MINUTES = 0  # drain everything (and emit STATE) after each row
    out = StringIO()
    with redirect_stdout(out), pytest.raises(PendoUnavailableError):
        target.listen(StringIO("\n".join(lines) + "\n"))
    target_states = [json.loads(x) for x in out.getvalue().splitlines() if x.strip()]

    delivered = {e["properties"]["id"] for e in emulator.events()}
    assert target_states, "STATE should have moved while Pendo was up"
    last = target_states[-1]["bookmarks"][STREAM]["id"]
    assert set(range(last + 1)) <= delivered
    assert last < 99


def test_retries_deliver_each_event_once_and_state_follows(emulator, base_config):
    emulator.inject(route="track", status=429, retry_after="0", times=5)
    emulator.inject(route="track", status=502, times=3)
    lines = [schema(STREAM)] + [record(STREAM, row(i)) for i in range(40)]
    lines.append(state({"done": True}))
    states, target = run_target(events_config(base_config), lines)
    ids = [e["properties"]["id"] for e in emulator.events()]
    assert sorted(ids) == list(range(40))
    assert emulator.request_counts()[TRACK] == 48
    assert target.run_context.client.stats.retries == 8
    assert states == [{"done": True}]


def test_cli_pipes_a_singer_file(emulator, base_config, tmp_path):
    lines = [schema(STREAM), *(record(STREAM, row(i)) for i in range(25))]
    lines.append(state({"bookmarks": {STREAM: {"id": 24}}}))
    result = run_cli(events_config(base_config), lines, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [json.loads(x) for x in result.stdout.splitlines()] == [
        {"bookmarks": {STREAM: {"id": 24}}}
    ]
    assert len(emulator.events()) == 25
    reports = list((tmp_path / "state" / "reports").glob("run-*.json"))
    (report,) = [json.loads(p.read_text()) for p in reports]
    assert report["streams"][STREAM]["sent"] == 25
    assert report["http_calls"] == {TRACK: 25}


def test_cli_wrong_secret_names_the_setting_not_the_value(emulator, base_config, tmp_path):
    wrong = "wrong-secret-3f9a1c"
    config = {**events_config(base_config), "track_event_secret": wrong}
    lines = [schema(STREAM), record(STREAM, row(1)), state({"x": 1})]
    result = run_cli(config, lines, tmp_path)
    assert result.returncode == 1
    assert "track_event_secret" in result.stderr
    assert "Traceback" not in result.stderr
    assert wrong not in result.stderr + result.stdout
    assert result.stdout.strip() == ""  # no STATE
    assert emulator.events() == []


def test_cli_reads_config_from_environment(emulator, base_config, tmp_path):
    spec = {"event_name": "From Env", "visitor_id_column": "user_id"}
    env = {
        "TARGET_PENDO_API_URL": emulator.url,
        "TARGET_PENDO_TRACK_EVENT_SECRET": DEMO_TRACK_SECRET,
        "TARGET_PENDO_STATE_DIR": str(tmp_path / "envstate"),
        "TARGET_PENDO_STREAMS": json.dumps({STREAM: spec}),
    }
    result = subprocess.run(
        [*TARGET_CMD, "--config=ENV"],
        input="\n".join([schema(STREAM), record(STREAM, row(1))]) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [e["event"] for e in emulator.events()] == ["From Env"]
    assert DEMO_TRACK_SECRET not in result.stderr
