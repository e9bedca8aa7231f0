"""`target-pendo ledger export`: the sync log as Singer messages, through the real CLI, on SQLite
and PostgreSQL. Real runs against the emulator, then exports: every line is a Singer message
whose records fit their SCHEMA and whose keys are unique; the counts are the ledger's; `--state`
and `--since` continue without a duplicate; a run still running is held back, lines and all,
until it has finished; no key ever leaves in the output."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import sqlalchemy as sa

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET
from target_pendo.ledger import Ledger, RowOutcome, default_url

from ..singer import TARGET_CMD, record, run_cli, schema

EVENTS = "product_events"
USERS = "users"
RUNS, ROWS = "pendo_sync_runs", "pendo_sync_rows"
KEYS = {RUNS: ["run_id"], ROWS: ["run_id", "stream", "row_key", "occurrence"]}
USER_PROPS = {
    "id": {"type": "string"},
    "plan": {"type": ["string", "null"]},
    "seats": {"type": ["integer", "null"]},
}


def sync_config(config: dict, **extra: Any) -> dict:
    return {
        **config,
        "streams": {
            EVENTS: {"event_name_column": "event", "visitor_id_column": "user_id"},
            USERS: {"sync": "visitor", "custom_fields": {"plan": "plan", "seats": "seats"}},
        },
        **extra,
    }


def event_lines(ids: range, *, no_visitor: tuple[int, ...] = ()) -> list[str]:
    lines = [schema(EVENTS)]
    for i in ids:
        user = None if i in no_visitor else f"u-{i % 7}"
        lines.append(record(EVENTS, {"id": i, "user_id": user, "event": "Report Exported"}))
    return lines


def user_lines(rows: list[tuple[str, str]]) -> list[str]:
    lines = [schema(USERS, USER_PROPS, ["id"])]
    lines += [record(USERS, {"id": i, "plan": plan, "seats": 3}) for i, plan in rows]
    return lines


def sync(config: dict, lines: list[str], tmp_path: Path) -> None:
    result = run_cli(config, lines, tmp_path)
    assert result.returncode == 0, result.stderr


def export(
    config: dict, tmp_path: Path, *args: str, code: int = 0
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "export-config.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [*TARGET_CMD, "ledger", "export", *args, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == code, result.stderr
    return result


def messages(stdout: str) -> list[dict[str, Any]]:
    """The export's lines, each checked to be a Singer message: SCHEMAs first, every RECORD
    valid against its stream's SCHEMA, a STATE last."""
    found = [json.loads(line) for line in stdout.splitlines()]
    assert [m["type"] for m in found[:2]] == ["SCHEMA", "SCHEMA"]
    assert found[-1]["type"] == "STATE"
    validators = {}
    for m in found:
        assert m["type"] in ("SCHEMA", "RECORD", "STATE"), m
        if m["type"] == "SCHEMA":
            assert m["key_properties"] == KEYS[m["stream"]]
            validators[m["stream"]] = fastjsonschema.compile(m["schema"])
        elif m["type"] == "RECORD":
            validators[m["stream"]](m["record"])
        else:
            assert isinstance(m["value"], dict)
    return found


def records(found: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [m["record"] for m in found if m["type"] == "RECORD" and m["stream"] == stream]


def keys(found: list[dict[str, Any]], stream: str) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in KEYS[stream]) for r in records(found, stream)]


def last_state(found: list[dict[str, Any]], tmp_path: Path, name: str = "state.json") -> str:
    """The last STATE's value in a file, as a loader leaves it for the next `--state`."""
    path = tmp_path / name
    path.write_text(json.dumps(found[-1]["value"]))
    return str(path)


def ledger_url(config: dict) -> str:
    return config.get("ledger_url") or default_url(config["state_dir"])


def query(config: dict, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(ledger_url(config))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def ledger_runs(config: dict) -> list[str]:
    """The finished runs, in the order they finished."""
    rows = query(
        config, "SELECT run_id FROM sync_runs WHERE status <> 'running' ORDER BY finished_at"
    )
    return [r[0] for r in rows]


def ledger_lines(config: dict, run_ids: list[str]) -> Counter[tuple[str, str, str]]:
    """(run, stream, outcome) -> lines in sync_rows."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for run_id, stream, outcome, n in query(
        config, "SELECT run_id, stream, outcome, COUNT(*) FROM sync_rows GROUP BY 1, 2, 3"
    ):
        if run_id in run_ids:
            counts[(run_id, stream, outcome)] = int(n)
    return counts


def exported_lines(found: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    return Counter((r["run_id"], r["stream"], r["outcome"]) for r in records(found, ROWS))


def test_export_is_the_ledger_as_singer_and_continues_without_duplicates(
    emulator, ledger_config, tmp_path
):
    emulator.seed("visitor", group="custom", fields={"plan": "string", "seats": "integer"})
    emulator.seed("visitor", [f"v-{i}" for i in range(8)])  # v-8 and v-9 are not in Pendo
    config = sync_config(ledger_config)
    users = [(f"v-{i}", "pro") for i in range(10)] + [("v-2", "max")]  # v-2 twice: superseded
    sync(config, event_lines(range(50), no_visitor=(3, 4)) + user_lines(users), tmp_path)
    sync(config, event_lines(range(50, 60)) + user_lines([("v-3", "max")]), tmp_path)

    first = messages(export(config, tmp_path).stdout)
    runs = ledger_runs(config)
    assert len(runs) == 2
    assert [r["run_id"] for r in records(first, RUNS)] == runs
    assert exported_lines(first) == ledger_lines(config, runs)
    assert exported_lines(first)[(runs[0], EVENTS, "rejected")] == 2
    assert exported_lines(first)[(runs[0], USERS, "skipped_unknown")] == 2
    for stream in (RUNS, ROWS):
        assert len(set(keys(first, stream))) == len(keys(first, stream))
    # one run logged v-2 twice: superseded in its batch, then sent
    v2 = {(r["occurrence"], r["outcome"]) for r in records(first, ROWS) if r["row_key"] == "v-2"}
    assert {o for _, o in v2} == {"superseded", "sent"}
    assert {n for n, _ in v2} == {1, 2}
    reports = dict(query(config, "SELECT run_id, report FROM sync_runs"))
    for run in records(first, RUNS):
        assert run["status"] == "succeeded"
        assert run["full_resync"] is False
        assert run["report"] == json.loads(reports[run["run_id"]])  # an object, not text
        assert run["report"]["streams"][EVENTS]["received"] in (50, 10)
    rejected = [r for r in records(first, ROWS) if r["outcome"] == "rejected"]
    assert all("'user_id' is missing or null" in r["reason"] for r in rejected)
    # a STATE after each run, the last one the bookmark of both
    states = [m for m in first if m["type"] == "STATE"]
    assert len(states) == 2
    assert set(states[-1]["value"]["bookmarks"][RUNS]["recent_runs"]) == set(runs)

    # nothing new: no record, and the bookmark passed on unchanged
    state_file = last_state(first, tmp_path)
    again = messages(export(config, tmp_path, "--state", state_file).stdout)
    assert records(again, RUNS) == records(again, ROWS) == []
    assert again[-1]["value"] == first[-1]["value"]

    sync(config, event_lines(range(60, 65)) + user_lines([("v-4", "max")]), tmp_path)
    third = ledger_runs(config)[-1]
    result = export(config, tmp_path, "--state", state_file)
    after = messages(result.stdout)
    assert [r["run_id"] for r in records(after, RUNS)] == [third]
    assert exported_lines(after) == ledger_lines(config, [third])
    assert exported_lines(after)[(third, EVENTS, "sent")] == 5
    assert not set(keys(after, ROWS)) & set(keys(first, ROWS))
    assert "exported 1 finished run(s) and 6 sync_rows line(s)" in result.stderr
    # --since the last run of the first export: the same records; the whole export's output
    # as the state file (a loader's output keeps one state per line): its last is used
    since = messages(export(config, tmp_path, "--since", runs[-1]).stdout)
    assert records(since, RUNS) == records(after, RUNS)
    assert records(since, ROWS) == records(after, ROWS)
    whole = tmp_path / "whole-output.jsonl"
    whole.write_text(result.stdout)
    caught_up = messages(export(config, tmp_path, "--state", str(whole)).stdout)
    assert records(caught_up, RUNS) == []
    # exported again from the start: the same records under the same keys (a merging loader
    # ends with one copy of each)
    everything = messages(export(config, tmp_path).stdout)
    assert records(everything, ROWS) == records(first, ROWS) + records(after, ROWS)


def test_a_running_run_is_exported_whole_once_it_has_finished(emulator, ledger_config, tmp_path):
    config = sync_config(ledger_config, batch_size_rows=10)
    sync(config, event_lines(range(5)), tmp_path)
    cfg = tmp_path / "running-config.json"
    cfg.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [*TARGET_CMD, "--config", str(cfg)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write("\n".join(event_lines(range(100, 130))) + "\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while True:  # the running run's first 3 batches are in sync_rows
            running = query(
                config,
                "SELECT r.run_id, COUNT(l.run_id) FROM sync_runs r LEFT JOIN sync_rows l "
                "ON l.run_id = r.run_id WHERE r.status = 'running' GROUP BY r.run_id",
            )
            if running and running[0][1] >= 30:
                break
            assert time.monotonic() < deadline, "the running run logged no rows"
            time.sleep(0.05)
        run_id = running[0][0]
        during = messages(export(config, tmp_path).stdout)
        assert [r["run_id"] for r in records(during, RUNS)] == ledger_runs(config)
        assert run_id not in {r["run_id"] for r in records(during, RUNS)}
        assert run_id not in {r["run_id"] for r in records(during, ROWS)}
        assert len(records(during, ROWS)) == 5
        state_file = last_state(during, tmp_path)

        proc.stdin.write("\n".join(event_lines(range(130, 150))[1:]) + "\n")
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    after = messages(export(config, tmp_path, "--state", state_file).stdout)
    (run,) = records(after, RUNS)
    assert run["run_id"] == run_id
    assert run["status"] == "succeeded"
    assert exported_lines(after) == ledger_lines(config, [run_id])
    assert exported_lines(after)[(run_id, EVENTS, "sent")] == 50  # before and after the export


def test_no_key_leaves_in_the_export(emulator, ledger_config, tmp_path):
    config = sync_config(ledger_config)
    if "ledger_url" in config:  # a password in the URL (the test server trusts any)
        config["ledger_url"] = config["ledger_url"].replace("postgres@", "postgres:pw-Zq81x@")
    sync(config, event_lines(range(5)), tmp_path)
    ledger = Ledger(ledger_url(config))
    planted = "20261201T000000000-planted"
    ledger.start_run(planted, False)
    reason = f"value 'k-{DEMO_TRACK_SECRET}' refused"  # as if by a careless older version
    ledger.record(EVENTS, planted, [RowOutcome("x", "rejected", reason)])
    ledger.finish_run(planted, "failed", {"error": f"HTTP 403 for key {DEMO_INTEGRATION_KEY}"})
    ledger.close()
    result = export(config, tmp_path)
    secrets = [DEMO_TRACK_SECRET, DEMO_INTEGRATION_KEY, "pw-Zq81x"]
    assert not [s for s in secrets if s in result.stdout or s in result.stderr]
    found = messages(result.stdout)
    (line,) = [r for r in records(found, ROWS) if r["run_id"] == planted]
    assert line["reason"] == "value 'k-***' refused"
    (run,) = [r for r in records(found, RUNS) if r["run_id"] == planted]
    assert run["report"] == {"error": "HTTP 403 for key ***"}
    failed = export(config, tmp_path, "--since", "no-such-run", code=1)
    assert failed.stdout == ""
    assert "no such run" in failed.stderr
    assert not [s for s in secrets if s in failed.stderr]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--state", "missing.json"], 1, "cannot read state file"),
        (["--state", "bad.json"], 1, "is not JSON"),
        (["--state", "odd.json"], 1, "is not a bookmark this export wrote"),
        (["--state", "odd.json", "--since", "r1"], 2, "not both"),
    ],
)
def test_a_bad_start_is_a_one_line_error(tmp_path, monkeypatch, args, code, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "odd.json").write_text(json.dumps({"bookmarks": {RUNS: {"recent_runs": [1]}}}))
    result = export({"state_dir": str(tmp_path / "state")}, tmp_path, *args, code=code)
    assert result.stdout == ""
    assert says in result.stderr


def test_an_empty_ledger_exports_the_schemas_and_creates_nothing(tmp_path):
    state_dir = tmp_path / "state"
    found = messages(export({"state_dir": str(state_dir)}, tmp_path).stdout)
    assert [m["stream"] for m in found[:2]] == [RUNS, ROWS]
    assert len(found) == 3
    assert not state_dir.exists()  # read-only: no file, no folder
    status = subprocess.run(
        [
            *TARGET_CMD,
            "ledger",
            "status",
            "--since",
            "r1",
            "--config",
            str(tmp_path / "export-config.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 2
    assert "--since and --state are options of 'ledger export'" in status.stderr


def test_a_run_that_shows_up_late_is_exported_once(tmp_path):
    """Finishes are timed before their commit, by the clock of the machine that ran the run: a
    run can become visible after one that finished later. The bookmark's hour of overlap
    exports it once; a host clock far ahead does not make later runs be skipped."""
    config = {"state_dir": str(tmp_path / "state")}
    ledger = Ledger(ledger_url(config))

    def finished_run(run_id: str, finished_at: str | None = None) -> None:
        ledger.start_run(run_id, False)
        ledger.record(EVENTS, run_id, [RowOutcome(f"{run_id}-1", "sent")])
        ledger.finish_run(run_id, "succeeded", {})
        if finished_at is not None:
            moved = sa.text("UPDATE sync_runs SET finished_at = :f WHERE run_id = :r")
            with ledger.engine.begin() as conn:
                conn.execute(moved, {"f": finished_at, "r": run_id})

    try:
        finished_run("a")
        finished_run("b")
        first = messages(export(config, tmp_path).stdout)
        assert [r["run_id"] for r in records(first, RUNS)] == ["a", "b"]
        mark = first[-1]["value"]["bookmarks"][RUNS]["replication_key_value"]
        at = dt.datetime.fromisoformat(mark)
        finished_run("late", (at - dt.timedelta(minutes=10)).isoformat(timespec="milliseconds"))
        finished_run("too-late", (at - dt.timedelta(hours=2)).isoformat(timespec="milliseconds"))
        finished_run("ahead", (at + dt.timedelta(days=1)).isoformat(timespec="milliseconds"))
        state_file = last_state(first, tmp_path)
        second = messages(export(config, tmp_path, "--state", state_file).stdout)
        # "too-late" finished more than the hour of overlap before the bookmark: not seen
        assert [r["run_id"] for r in records(second, RUNS)] == ["late", "ahead"]
        assert {r["run_id"] for r in records(second, ROWS)} == {"late", "ahead"}
        bookmark = second[-1]["value"]["bookmarks"][RUNS]
        assert bookmark["replication_key_value"] < (at + dt.timedelta(days=1)).isoformat()
        finished_run("next")
        third = messages(export(config, tmp_path, "--state", last_state(second, tmp_path)).stdout)
        assert [r["run_id"] for r in records(third, RUNS)] == ["next"]
    finally:
        ledger.close()
