"""Hostile input and hostile networks, through the real CLI: one bad row rejects one row; every
problem with the input, the config, the filesystem or the ledger is one line on stderr naming
what to fix, exit code 1, no traceback; no key in any output or file."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator

from ..singer import TARGET_CMD, read_rejects, record, run_cli, run_target, schema, state

EVENTS = "events"
PROPS = {
    "id": {"type": "integer"},
    "user_id": {"type": ["string", "null"]},
    "event": {"type": ["string", "null"]},
    "note": {"type": ["string", "null"]},
}
SPEC = {"event_name_column": "event", "visitor_id_column": "user_id"}


def events_config(base: dict, **extra: Any) -> dict:
    return {**base, "streams": {EVENTS: SPEC}, **extra}


def row(i: int, **overrides: Any) -> dict[str, Any]:
    return {"id": i, "user_id": f"u-{i}", "event": "Clicked", "note": "fine", **overrides}


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.startswith("target-pendo: error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def run_raw(config_path: Path, stdin: bytes, env: dict | None = None, **kw: Any):
    return subprocess.run(
        [*TARGET_CMD, "--config", str(config_path)],
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
        **kw,
    )


def decoded(result: subprocess.CompletedProcess[bytes]) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


# --- the catalogue: one line each ---------------------------------------------------------

GOOD = [schema(EVENTS, PROPS), record(EVENTS, row(1))]
INPUT_CASES = [
    pytest.param(
        ["[" * 10_000 + "]" * 10_000], "input line 1", "nested too deeply", id="deep JSON"
    ),
    pytest.param([*GOOD, "null"], "input line 3", "not a Singer message", id="null line"),
    pytest.param([*GOOD, "{}"], "input line 3", "no message 'type'", id="no type"),
    pytest.param(
        [*GOOD, json.dumps({"type": "RECORDS", "stream": EVENTS})],
        "input line 3",
        "unknown message type 'RECORDS'",
        id="unknown type",
    ),
    pytest.param(
        [*GOOD, json.dumps({"type": "RECORD", "stream": EVENTS, "record": [1, 2]})],
        "input line 3",
        "has no record object (got a list)",
        id="record is a list",
    ),
    pytest.param(
        [*GOOD, json.dumps({"type": "RECORD", "stream": EVENTS, "record": None})],
        "input line 3",
        "has no record object (got null)",
        id="record is null",
    ),
    pytest.param(
        [*GOOD, json.dumps({"type": "ACTIVATE_VERSION", "stream": "nope", "version": 1})],
        "input line 3",
        "ACTIVATE_VERSION for stream 'nope' before its SCHEMA",
        id="ACTIVATE_VERSION of an unknown stream",
    ),
    pytest.param([*GOOD, "{not json"], "input line 3", "not valid JSON", id="not JSON"),
    pytest.param(
        [record(EVENTS, row(1))], "input line 1", "before a corresponding schema", id="no SCHEMA"
    ),
]


@pytest.mark.parametrize(("lines", "where", "what"), INPUT_CASES)
def test_bad_input_is_one_line_naming_the_input_line(
    emulator: Emulator, base_config: dict, tmp_path: Path, lines: list[str], where: str, what: str
) -> None:
    result = run_cli(events_config(base_config), [*lines, state({"x": 1})], tmp_path)
    line = one_error_line(result)
    assert where in line
    assert what in line
    assert result.stdout.strip() == ""


def _corrupt_ledger(state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    (state_dir / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)


def _ledger_without_a_table(state_dir: Path, base: dict, tmp: Path) -> None:
    run_cli({**base, "state_dir": str(state_dir), "streams": {EVENTS: SPEC}}, GOOD, tmp)
    with sqlite3.connect(state_dir / "ledger.sqlite3") as conn:
        conn.execute("DROP TABLE row_state")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("state_dir is a file", "state_dir"),
        ("state_dir under a file", "state_dir"),
        ("corrupt ledger", "ledger.sqlite3"),
        ("ledger missing a table", "row_state"),
        ("api_url without a host", "'api_url'"),
        ("api_url with a bad port", "'api_url'"),
        ("config is not JSON", "config.json is not valid JSON"),
        ("config is a list", "holds a JSON list"),
        ("impossible rate", "'max_requests_per_second'"),
    ],
)
def test_config_filesystem_and_ledger_problems_are_one_line(
    emulator: Emulator, base_config: dict, tmp_path: Path, case: str, expected: str
) -> None:
    config = events_config(base_config)
    state_dir = tmp_path / "state-here"
    config["state_dir"] = str(state_dir)
    raw: str | None = None
    if case == "state_dir is a file":
        state_dir.write_text("x")
    elif case == "state_dir under a file":
        (tmp_path / "plain").write_text("x")
        config["state_dir"] = str(tmp_path / "plain" / "state")
    elif case == "corrupt ledger":
        _corrupt_ledger(state_dir)
    elif case == "ledger missing a table":
        _ledger_without_a_table(state_dir, base_config, tmp_path)
    elif case == "api_url without a host":
        config["api_url"] = "http://"
    elif case == "api_url with a bad port":
        config["api_url"] = "http://127.0.0.1:99999"
    elif case == "config is not JSON":
        raw = "{not json"
    elif case == "config is a list":
        raw = "[1, 2]"
    elif case == "impossible rate":
        config["max_requests_per_second"] = 1e-9
    cfg = tmp_path / "config.json"
    cfg.write_text(raw if raw is not None else json.dumps(config))
    result = decoded(run_raw(cfg, ("\n".join(GOOD) + "\n").encode()))
    line = one_error_line(result)
    assert expected in line
    assert DEMO_TRACK_SECRET not in result.stderr


def test_a_full_disk_is_one_line(emulator: Emulator, base_config: dict, tmp_path: Path) -> None:
    """Writes past a file-size limit fail like a full disk (EFBIG instead of ENOSPC)."""
    config = events_config(base_config)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    lines = [schema(EVENTS, PROPS)] + [record(EVENTS, row(i, user_id=None)) for i in range(3000)]

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = decoded(run_raw(cfg, ("\n".join(lines) + "\n").encode(), preexec_fn=limit_file_size))
    line = one_error_line(result)
    assert "File too large" in line or "disk" in line


# --- text that is not valid Unicode -------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"note": "bad \ud800 text"}, "note"),
        ({"user_id": "u-\udfff"}, "user_id"),
        ({"event": "\ud83d"}, "event"),
    ],
)
def test_a_lone_surrogate_rejects_its_row_naming_the_field(
    emulator: Emulator, base_config: dict, tmp_path: Path, overrides: dict, field: str
) -> None:
    lines = [schema(EVENTS, PROPS), record(EVENTS, row(1)), record(EVENTS, row(2, **overrides))]
    lines += [record(EVENTS, row(3)), state({"done": 3})]
    result = run_cli(events_config(base_config), lines, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(e["properties"]["id"] for e in emulator.events()) == [1, 3]
    (reject,) = read_rejects(base_config["state_dir"], EVENTS)
    assert reject["key"] == 2
    assert reject["field"] == field
    assert "not valid Unicode" in reject["reason"]
    assert reject.get("escaped") is True  # the row as it was, escaped so the file stays UTF-8
    assert json.loads(result.stdout) == {"done": 3}
    again = run_cli(events_config(base_config), lines, tmp_path)  # and on every rerun
    assert again.returncode == 0


def test_a_surrogate_in_the_key_rejects_the_row(emulator: Emulator, base_config: dict) -> None:
    props = {**PROPS, "id": {"type": "string"}}
    lines = [schema(EVENTS, props), record(EVENTS, row("k-1")), record(EVENTS, row("k-\ud800"))]
    run_target(events_config(base_config), lines)
    assert [e["properties"]["id"] for e in emulator.events()] == ["k-1"]
    (reject,) = read_rejects(base_config["state_dir"], EVENTS)
    assert "cannot be kept" in reject["reason"]


def test_bytes_that_are_not_utf8_reject_their_row(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(events_config(base_config)))
    good = [schema(EVENTS, PROPS), record(EVENTS, row(1))]
    bad = (
        b'{"type": "RECORD", "stream": "events", "record": {"id": 2, "user_id": "u-2", '
        b'"event": "Clicked", "note": "caf\xe9 \xff"}}'
    )
    stdin = ("\n".join(good) + "\n").encode() + bad + b"\n" + record(EVENTS, row(3)).encode()
    result = decoded(run_raw(cfg, stdin + b"\n"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(e["properties"]["id"] for e in emulator.events()) == [1, 3]
    (reject,) = read_rejects(base_config["state_dir"], EVENTS)
    assert reject["field"] == "note"


def test_a_nul_in_a_key_is_rejected_on_postgresql(emulator: Emulator, ledger_config: dict) -> None:
    props = {**PROPS, "id": {"type": "string"}}
    lines = [schema(EVENTS, props), record(EVENTS, row("a\x00b")), record(EVENTS, row("ok"))]
    run_target(events_config(ledger_config), lines)
    assert [e["properties"]["id"] for e in emulator.events()] == ["ok"]
    (reject,) = read_rejects(ledger_config["state_dir"], EVENTS)
    assert "NUL" in reject["reason"]


def test_objects_reject_unencodable_values_and_ids(emulator: Emulator, base_config: dict) -> None:
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", ["v-1", "v-3"])
    props = {"id": {"type": "string"}, "plan": {"type": ["string", "null"]}}
    spec = {"sync": "visitor", "custom_fields": {"plan": "plan"}}
    lines = [
        schema("users", props),
        record("users", {"id": "v-1", "plan": "pro"}),
        record("users", {"id": "v-2", "plan": "x\ud800"}),
        record("users", {"id": "v-\ud800", "plan": "pro"}),
        record("users", {"id": "v-3", "plan": "team"}),
    ]
    run_target({**base_config, "streams": {"users": spec}}, lines)
    stored = emulator.objects("visitor")
    assert (stored["v-1"]["custom"], stored["v-3"]["custom"]) == ({"plan": "pro"}, {"plan": "team"})
    rejects = read_rejects(base_config["state_dir"], "users")
    assert sorted(r["field"] for r in rejects) == ["id", "plan"]


TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=12
)  # every code point, surrogates and control characters included


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=8))
def test_property_any_text_in_event_columns(emulator: Emulator, base_config: dict, rows) -> None:
    """delivered + rejected = input, whatever the text, and nothing escapes."""
    emulator.reset()
    import tempfile

    state_dir = tempfile.mkdtemp(prefix="target-pendo-text-")
    config = events_config(base_config, state_dir=state_dir)
    lines = [schema(EVENTS, PROPS)]
    lines += [
        json.dumps(
            {"type": "RECORD", "stream": EVENTS, "record": row(i, user_id=u, event=e, note=n)}
        )
        for i, (u, e, n) in enumerate(rows)
    ]
    run_target(config, lines)
    delivered = [e["properties"]["id"] for e in emulator.events()]
    rejected = [r["key"] for r in read_rejects(state_dir, EVENTS)]
    assert sorted(delivered + rejected) == list(range(len(rows)))
    assert len(set(delivered)) == len(delivered)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=8))
def test_property_any_text_in_object_columns(emulator: Emulator, base_config: dict, rows) -> None:
    emulator.reset()
    import tempfile

    state_dir = tempfile.mkdtemp(prefix="target-pendo-text-")
    ids = [f"v-{i}" for i in range(len(rows))]
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", group="agent", fields={"name": "string"})
    emulator.seed("visitor", ids)
    props = {"id": {"type": "string"}, "plan": {"type": ["string"]}, "name": {"type": "string"}}
    spec = {"sync": "visitor", "custom_fields": {"plan": "plan"}, "agent_fields": {"name": "name"}}
    lines = [schema("users", props)]
    lines += [
        json.dumps({"type": "RECORD", "stream": "users", "record": {"id": i, "plan": p, "name": n}})
        for i, (p, n) in zip(ids, rows, strict=True)
    ]
    run_target({**base_config, "state_dir": state_dir, "streams": {"users": spec}}, lines)
    stored = emulator.objects("visitor")
    updated = {i for i in ids if stored[i]["custom"] or stored[i]["agent"]}
    rejected = {r["key"] for r in read_rejects(state_dir, "users")}
    assert updated | rejected == set(ids)
    assert not updated & rejected


# --- secrets ------------------------------------------------------------------------------


def every_file_text(root: Path) -> str:
    return "\n".join(p.read_text("utf-8", "replace") for p in root.rglob("*") if p.is_file())


def test_a_key_inside_row_data_is_redacted_everywhere(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    lines = [schema(EVENTS, PROPS), record(EVENTS, row(1, user_id=None, note=DEMO_TRACK_SECRET))]
    lines.append(record(EVENTS, row(2, note=f"x {DEMO_INTEGRATION_KEY}", event=None)))
    for extra in ({}, {"dry_run": True}):
        config = events_config(base_config, call_log=True, **extra)
        result = run_cli(config, lines, tmp_path, env={"TARGET_PENDO_LOGLEVEL": "DEBUG"})
        assert result.returncode == 0, result.stderr[-2000:]
        everything = result.stdout + result.stderr + every_file_text(Path(config["state_dir"]))
        everything += (
            (Path(config["state_dir"]) / "ledger.sqlite3").read_bytes().decode("utf-8", "replace")
            if (Path(config["state_dir"]) / "ledger.sqlite3").exists()
            else ""
        )
        assert DEMO_TRACK_SECRET not in everything
        assert DEMO_INTEGRATION_KEY not in everything


def test_credentials_inside_api_url_are_never_shown(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    host = emulator.url.removeprefix("http://")
    url = f"http://proxyuser:hunter2pass@{host}/?token=tok3nvalue"
    config = events_config(base_config, api_url=url, call_log=True)
    emulator.inject(route="track", status=500, times=None)
    config["max_retry_seconds"] = 1
    result = run_cli(config, [schema(EVENTS, PROPS), record(EVENTS, row(1))], tmp_path)
    assert result.returncode == 1
    everything = result.stdout + result.stderr + every_file_text(Path(config["state_dir"]))
    for secret in ("hunter2pass", "proxyuser", "tok3nvalue"):
        assert secret not in everything


def test_debug_logging_stays_proportional_to_the_work(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    lines = [schema(EVENTS, PROPS)] + [record(EVENTS, row(i)) for i in range(2000)]
    result = run_cli(
        events_config(base_config), lines, tmp_path, env={"TARGET_PENDO_LOGLEVEL": "DEBUG"}
    )
    assert result.returncode == 0
    # one debug line per HTTP call at most: well under a kilobyte per event, not the whole
    # batch after every record (which was 655 MB here)
    assert len(result.stderr) < 2000 * 1500
    assert DEMO_TRACK_SECRET not in result.stderr


# --- hostile networks ---------------------------------------------------------------------


def test_retry_after_zero_is_not_a_hot_loop(emulator: Emulator, base_config: dict) -> None:
    emulator.inject(route="track", status=429, retry_after="0", times=None)
    config = events_config(base_config, max_retry_seconds=3, max_concurrency=1)
    started = time.monotonic()
    with pytest.raises(Exception, match="max_retry_seconds"):
        run_target(config, [schema(EVENTS, PROPS), record(EVENTS, row(1))])
    assert time.monotonic() - started >= 2.5
    assert emulator.request_counts()["POST /data/track"] <= 8  # 0.5 s apart at least


def test_a_retry_after_beyond_the_budget_fails_at_once(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    emulator.inject(route="track", status=429, retry_after="3600", times=None)
    config = events_config(base_config, max_retry_seconds=60)
    started = time.monotonic()
    result = run_cli(config, [schema(EVENTS, PROPS), record(EVENTS, row(1))], tmp_path)
    line = one_error_line(result)
    assert time.monotonic() - started < 15
    assert "Retry-After" in line
    assert "max_retry_seconds" in line


def test_a_host_that_does_not_resolve_fails_within_seconds(
    base_config: dict, tmp_path: Path
) -> None:
    config = events_config(base_config, api_url="https://pendo.invalid", max_retry_seconds=300)
    started = time.monotonic()
    result = run_cli(config, [schema(EVENTS, PROPS), record(EVENTS, row(1))], tmp_path)
    line = one_error_line(result)
    assert time.monotonic() - started < 20
    assert "cannot resolve" in line


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            '{\n  "streams": {\n    "a": {"event_name": "x", "visitor_id_column": "id"},\n  }\n}',
            "config file {cfg} is not valid JSON: a trailing comma at line 3, column 56 "
            "(JSON allows none before } or ])",
            id="trailing comma",
        ),
        pytest.param(
            '{\n  "api_url": "http://x"\n  "streams": {}\n}',
            "config file {cfg} is not valid JSON: Expecting ',' delimiter at line 3, column 3",
            id="missing comma",
        ),
        pytest.param(
            "{\n  'streams': {}\n}",
            "config file {cfg} is not valid JSON: Expecting property name enclosed in double "
            "quotes at line 2, column 3",
            id="single quotes",
        ),
    ],
)
def test_a_config_file_that_is_not_json_names_the_real_place_and_reason(
    tmp_path: Path, raw: str, expected: str
) -> None:
    """A trailing comma is reported where it is (the parser stops at the next line), and
    every other mistake with the parser's own reason."""
    cfg = tmp_path / "config.json"
    cfg.write_text(raw)
    for command in ([], ["check"]):
        result = subprocess.run(
            [*TARGET_CMD, "--config", str(cfg), *command],
            input="",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1
        assert result.stderr == f"target-pendo: error: {expected.replace('{cfg}', str(cfg))}\n"
