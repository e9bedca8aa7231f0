"""Operating a sync: run report, alerting exit code, API-call log, dry run, connection check."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator
from target_pendo.sinks.base import PendoSink

from ..singer import TARGET_CMD, log_files, record, run_cli, run_target, schema, state

STREAM = "events"


def events_config(config: dict, **extra: object) -> dict:
    spec = {"event_name": "Ops Test", "visitor_id_column": "user_id"}
    return {**config, "streams": {STREAM: spec}, **extra}


def event_lines(n: int, missing_visitor: set[int] = frozenset()) -> list[str]:
    lines = [schema(STREAM)]
    for i in range(n):
        user = None if i in missing_visitor else f"u-{i}"
        lines.append(record(STREAM, {"id": i, "user_id": user, "plan": "pro"}))
    lines.append(state({"bookmarks": {STREAM: {"id": n - 1}}}))
    return lines


def latest_report(state_dir: str) -> dict:
    reports = sorted((Path(state_dir) / "reports").glob("run-*.json"))
    return json.loads(reports[-1].read_text())


def test_run_report_counts_match_the_emulator(emulator, base_config, tmp_path):
    emulator.inject(route="track", status=503, times=2)
    result = run_cli(events_config(base_config), event_lines(30, {4}), tmp_path)
    assert result.returncode == 0, result.stderr
    report = latest_report(base_config["state_dir"])
    counts = report["streams"][STREAM]
    assert counts["received"] == 30
    assert counts["sent"] == len(emulator.events()) == 29
    assert counts["rejected"] == 1
    assert counts["http_calls"] == emulator.request_counts()["POST /data/track"] == 31
    assert counts["retries"] == 2
    assert counts["seconds"] > 0
    assert report["status"] == "succeeded"
    summary = [line for line in result.stderr.splitlines() if f"stream '{STREAM}'" in line]
    assert summary
    assert "received 30, sent 29, rejected 1" in summary[-1]
    assert "31 HTTP calls, 2 retries" in summary[-1]


def test_too_many_rejects_exit_non_zero_after_delivering_the_rest(emulator, base_config, tmp_path):
    config = events_config(base_config, max_rejected_fraction=0.05)
    result = run_cli(config, event_lines(20, {1, 2}), tmp_path)  # 10% rejected
    assert result.returncode == 1
    assert "max_rejected_fraction=0.05" in result.stderr
    assert f"'{STREAM}' (2 of 20)" in result.stderr
    assert len(emulator.events()) == 18  # the rest was delivered
    assert [json.loads(x) for x in result.stdout.splitlines()] == [
        {"bookmarks": {STREAM: {"id": 19}}}
    ]


def test_rejects_under_the_threshold_exit_zero(emulator, base_config, tmp_path):
    config = events_config(base_config, max_rejected_fraction=0.05)
    result = run_cli(config, event_lines(40, {1}), tmp_path)  # 2.5%
    assert result.returncode == 0, result.stderr


def test_call_log_has_every_attempt_without_secrets(emulator, base_config):
    emulator.inject(route="track", status=429, retry_after="0", times=1)
    _, target = run_target(events_config(base_config, call_log=True), event_lines(3))
    path = Path(base_config["state_dir"]) / "calls" / f"{target.run_context.run_id}.jsonl"
    calls = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(calls) == 4  # 3 events, one of them retried once
    assert sorted(c["status"] for c in calls) == [200, 200, 200, 429]
    retried = [c for c in calls if c["attempt"] == 2]
    assert len(retried) == 1
    assert retried[0]["status"] == 200
    first = calls[0]
    assert first["method"] == "POST"
    assert first["url"] == emulator.url + "/data/track"
    assert first["stream"] == STREAM
    assert first["latency_ms"] >= 0
    assert json.loads(first["request_body"])["event"] == "Ops Test"
    assert first["request_headers"] == {"x-pendo-integration-key": "***"}
    assert DEMO_TRACK_SECRET not in path.read_text()


def test_dry_run_sends_nothing_and_writes_payloads(emulator, base_config):
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", ["v-1"])
    config = {
        **base_config,
        "dry_run": True,
        "streams": {
            STREAM: {"event_name": "Ops Test", "visitor_id_column": "user_id"},
            "users": {"sync": "visitor", "custom_fields": {"plan": "plan"}},
        },
    }
    lines = [
        *event_lines(5, {2}),
        schema("users", {"id": {"type": "string"}, "plan": {"type": "string"}}),
        record("users", {"id": "v-1", "plan": "gold"}),
    ]
    _, target = run_target(config, lines)
    assert emulator.events() == []
    assert emulator.request_counts() == {"GET /api/v1/metadata/schema/visitor": 1}
    folder = Path(base_config["state_dir"]) / "dry_run" / target.run_context.run_id
    events = [json.loads(x) for x in (folder / f"{STREAM}.jsonl").read_text().splitlines()]
    assert [e["body"]["visitorId"] for e in events] == ["u-0", "u-1", "u-3", "u-4"]
    assert all(e["path"] == "/data/track" for e in events)
    (users,) = [json.loads(x) for x in (folder / "users.jsonl").read_text().splitlines()]
    assert users["path"] == "/api/v1/metadata/visitor/custom/value"
    assert users["body"] == [{"visitorId": "v-1", "values": {"plan": "gold"}}]
    assert log_files(base_config["state_dir"], "rejects", STREAM)
    # the ledger was left alone: a real run now sends everything
    run_target({**config, "dry_run": False}, lines)
    assert len(emulator.events()) == 4
    assert emulator.objects("visitor")["v-1"]["custom"] == {"plan": "gold"}


def test_progress_is_logged_on_long_runs(emulator, base_config, caplog, monkeypatch):
    monkeypatch.setattr(PendoSink, "PROGRESS_EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO)
    run_target(events_config(base_config, batch_size_rows=10), event_lines(30))
    progress = [r.getMessage() for r in caplog.records if "Progress of stream" in r.getMessage()]
    assert len(progress) >= 3
    assert "30 received, 30 sent, 0 rejected" in progress[-1]
    assert "rows/s" in progress[-1]
    # the same progress as SDK metric lines: record_count tagged endpoint "pendo"
    points = [
        json.loads(r.getMessage().removeprefix("METRIC: "))
        for r in caplog.records
        if r.getMessage().startswith("METRIC: ")
    ]
    sent = [
        p for p in points if p["metric"] == "record_count" and p["tags"].get("endpoint") == "pendo"
    ]
    assert len(sent) >= 2
    assert sum(p["value"] for p in sent) == 30
    assert {p["tags"]["stream"] for p in sent} == {STREAM}


def run_check(config: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [*TARGET_CMD, "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_validates_both_keys_without_writing(emulator, base_config, tmp_path):
    result = run_check(base_config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "track_event_secret: ok" in result.stdout
    assert "integration_key: ok (valid, with write access)" in result.stdout
    assert emulator.events() == []


@pytest.mark.parametrize("which", ["track_event_secret", "integration_key"])
def test_check_names_the_wrong_key_not_its_value(emulator, base_config, tmp_path, which):
    wrong = "not-the-right-key-41"
    result = run_check({**base_config, which: wrong}, tmp_path)
    assert result.returncode == 1
    assert f"{which}: FAILED" in result.stdout
    assert wrong not in result.stdout + result.stderr


def test_check_flags_a_read_only_integration_key(tmp_path):
    with Emulator(integration_keys={"read-only-key": False}) as emulator:
        config = {"api_url": emulator.url, "integration_key": "read-only-key"}
        result = run_check(config, tmp_path)
    assert result.returncode == 1
    assert "read-only" in result.stdout
    assert DEMO_INTEGRATION_KEY not in result.stdout
