"""The retention window: a run's history (sync_rows lines, its sync_runs row and report, call
log, rejects and unknown-id days) goes once older than `retention_days`, at the end of the
next successful run or by `target-pendo ledger prune`; row_state (what Pendo holds, what is
pending) stays. Through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from target_pendo.ledger import Ledger, default_url
from target_pendo.run.retention import HISTORY_FOLDERS

from ..singer import TARGET_CMD, log_files, record, run_cli, schema
from .test_ledger import USER_PROPS, USERS, seed_users, users_config

EVENTS = "events"
EVENT_SPEC = {"event_name_column": "event", "visitor_id_column": "user_id"}
LONG_AGO = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)


def ledger_url(config: dict) -> str:
    return config.get("ledger_url") or default_url(config["state_dir"])


def query(config: dict, sql: str, **params: object) -> list[tuple]:
    engine = sa.create_engine(ledger_url(config))
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def sync(config: dict, tmp_path: Path, first: int) -> subprocess.CompletedProcess[str]:
    """Events first..first+4 (one without a visitor: rejected) and users v-0..v-3 (v-3 unknown
    to Pendo: pending), with a call log."""
    lines = [schema(EVENTS)]
    lines += [
        record(EVENTS, {"id": i, "user_id": None if i == first else f"u-{i}", "event": "E"})
        for i in range(first, first + 5)
    ]
    lines += [schema(USERS, USER_PROPS)]
    lines += [record(USERS, {"id": f"v-{i}", "plan": f"p{first}", "seats": i}) for i in range(4)]
    result = run_cli(config, lines, tmp_path)
    assert result.returncode == 0, result.stderr
    return result


def age(config: dict, run_id: str) -> None:
    """Make a run and every file it wrote 100 days old, as if it had run then."""
    query(
        config,
        "UPDATE sync_runs SET started_at = :t WHERE run_id = :r",
        t=LONG_AGO.isoformat(timespec="milliseconds"),
        r=run_id,
    )
    then = LONG_AGO.timestamp()
    state_dir = Path(config["state_dir"])
    for folder in ("rejects", "unknown"):  # that day's files, named for the day
        for path in list((state_dir / folder).rglob("*.jsonl")):
            path.rename(path.with_name(f"{LONG_AGO:%Y-%m-%d}.jsonl"))
    for path in state_dir.rglob("*"):
        if path.is_file() and (run_id in path.name or path.suffix == ".jsonl"):
            os.utime(path, (then, then))


def run_ids(config: dict) -> list[str]:
    return [r[0] for r in query(config, "SELECT run_id FROM sync_runs ORDER BY started_at")]


def row_state(config: dict) -> list[tuple]:
    return query(
        config,
        "SELECT stream, row_key, status, value_hash, pending FROM row_state "
        "ORDER BY stream, row_key",
    )


@pytest.fixture
def config(emulator, ledger_config) -> dict:
    seed_users(emulator, 3)
    config = users_config({**ledger_config, "call_log": True})
    config["streams"][EVENTS] = EVENT_SPEC
    return config


def test_history_older_than_the_window_goes_with_the_next_run(config, tmp_path):
    sync(config, tmp_path, 0)
    (old,) = run_ids(config)
    age(config, old)
    old_files = [p for p in Path(config["state_dir"]).rglob("*") if p.is_file()]
    old_days = log_files(config["state_dir"], "rejects", EVENTS)
    assert old_days
    assert log_files(config["state_dir"], "unknown", USERS)
    held = row_state(config)

    result = sync(config, tmp_path, 10)
    assert "Pruned history older than 30 days: 1 run(s), " in result.stderr
    (recent,) = run_ids(config)  # the old run is gone, report and all
    assert recent != old
    lines = dict(query(config, "SELECT run_id, count(*) FROM sync_rows GROUP BY run_id"))
    assert old not in lines
    assert lines[recent] > 0
    gone = [p for p in old_files if "ledger" not in p.name and not p.exists()]
    assert any(f"run-{old}" in p.name for p in gone)  # its report
    assert any(p.name == f"{old}.jsonl" for p in gone)  # its call log
    # today's rejects and unknown ids (this run's) are there; the old day's lines are not
    assert all(r["run_id"] == recent for r in _lines(config, "rejects", EVENTS))
    assert all(r["run_id"] == recent for r in _lines(config, "unknown", USERS))
    # row_state is state, not history: the events sent then stay sent (never sent again)
    now = {r[:2]: r for r in row_state(config)}
    for row in held:
        if row[0] == EVENTS:
            assert now[row[:2]] == row
    assert (Path(config["state_dir"]) / "reports" / f"run-{recent}.json").exists()


def _lines(config: dict, folder: str, stream: str) -> list[dict]:
    return [
        json.loads(line)
        for path in log_files(config["state_dir"], folder, stream)
        for line in path.read_text().splitlines()
    ]


def test_retention_days_0_keeps_everything(config, tmp_path):
    keep = {**config, "retention_days": 0}
    sync(keep, tmp_path, 0)
    (old,) = run_ids(keep)
    age(keep, old)
    result = sync(keep, tmp_path, 10)
    assert "Pruned" not in result.stderr
    assert old in run_ids(keep)
    assert (Path(keep["state_dir"]) / "reports" / f"run-{old}.json").exists()


def test_a_dry_run_prunes_nothing(config, tmp_path):
    sync(config, tmp_path, 0)
    (old,) = run_ids(config)
    age(config, old)
    sync({**config, "dry_run": True}, tmp_path, 10)
    assert run_ids(config) == [old]
    # every folder a run writes (the dry run's payloads included) is one the window prunes
    state_dir = Path(config["state_dir"])
    folders = {p.name for p in state_dir.iterdir() if p.is_dir()} - {"ledger.sqlite3.locks"}
    assert "dry_run" in folders
    assert folders <= set(HISTORY_FOLDERS)
    assert all(p.name.startswith("ledger.sqlite3") for p in state_dir.iterdir() if p.is_file())


def test_ledger_prune_prunes_it_all_and_gives_sqlite_space_back(emulator, base_config, tmp_path):
    """An older ledger file (no incremental vacuum) with a month of history: `ledger prune`
    forgets all of it and the file shrinks; from then on each run gives space back."""
    config = users_config(base_config)
    seed_users(emulator, 3)
    sync_lines = [schema(USERS, USER_PROPS), record(USERS, {"id": "v-0", "plan": "a", "seats": 1})]
    assert run_cli(config, sync_lines, tmp_path).returncode == 0
    path = Path(ledger_url(config).removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:  # as a ledger made before schema 4 is
        db.execute("PRAGMA auto_vacuum=NONE")
        db.execute("VACUUM")
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (0,)
        for day in range(30):
            run_id = f"old-{day:02d}"
            at = (LONG_AGO + dt.timedelta(days=day)).isoformat(timespec="milliseconds")
            db.execute(
                "INSERT INTO sync_runs (run_id, started_at, status) VALUES (?, ?, 'succeeded')",
                (run_id, at),
            )
            db.executemany(
                "INSERT INTO sync_rows (run_id, stream, row_key, outcome, at) "
                "VALUES (?, ?, ?, 'sent', ?)",
                ((run_id, USERS, f"v-{day}-{i}-" + "x" * 40, at) for i in range(3000)),
            )
    before = path.stat().st_size
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json"), "ledger", "prune"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "pruned history older than 30 days: 30 run(s), 90000 sync_rows line(s)" in (
        result.stdout
    )
    assert "given back to the disk" in result.stdout
    assert path.stat().st_size < before / 3
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental from now on
        assert db.execute("SELECT count(*) FROM sync_runs").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM row_state").fetchone() == (1,)


def test_a_run_prunes_a_bounded_amount_and_the_next_one_the_rest(ledger_config, tmp_path):
    """The first run on a large old ledger does not stall: each prune stops at its bound and
    says older history is left; the next one goes on from there. Running runs are kept."""
    url = ledger_url(ledger_config)
    ledger = Ledger(url)
    try:
        at = LONG_AGO.isoformat(timespec="milliseconds")
        query(
            {"ledger_url": url},
            "INSERT INTO sync_runs (run_id, started_at, status) VALUES "
            "('a', :t, 'succeeded'), ('b', :t, 'failed'), ('c', :t, 'running')",
            t=at,
        )
        for run_id in "abc":
            values = ", ".join(f"('{run_id}', 's', 'k{i}', 'sent', '{at}')" for i in range(500))
            query(
                {"ledger_url": url},
                f"INSERT INTO sync_rows (run_id, stream, row_key, outcome, at) VALUES {values}",
            )
        cutoff = dt.datetime.now(dt.UTC).isoformat()
        first = ledger.prune_history(cutoff, max_rows=400)  # checked between deletes
        assert (first.runs, first.rows, first.more) == (1, 500, True)
        second = ledger.prune_history(cutoff, max_rows=400)
        assert (second.runs, second.rows, second.more) == (1, 500, False)
        left = query({"ledger_url": url}, "SELECT run_id, count(*) FROM sync_rows GROUP BY run_id")
        assert left == [("c", 500)]
    finally:
        ledger.close()


def test_a_sqlite_ledger_gives_the_space_of_a_prune_back(tmp_path):
    """A ledger made now (incremental vacuum): the file shrinks with what a run prunes."""
    url = default_url(tmp_path / "state")
    ledger = Ledger(url)
    try:
        path = Path(url.removeprefix("sqlite:///"))
        at = LONG_AGO.isoformat(timespec="milliseconds")
        with sqlite3.connect(path) as db:
            db.execute(
                "INSERT INTO sync_runs (run_id, started_at, status) VALUES ('old', ?, 'failed')",
                (at,),
            )
            db.executemany(
                "INSERT INTO sync_rows (run_id, stream, row_key, outcome, at) "
                "VALUES ('old', 's', ?, 'sent', ?)",
                ((f"key-{i}-" + "x" * 60, at) for i in range(100_000)),
            )
        ledger.give_space_back()  # the inserts' write-ahead log into the file
        before = path.stat().st_size
        pruned = ledger.prune_history(dt.datetime.now(dt.UTC).isoformat(), max_rows=10**6)
        assert (pruned.runs, pruned.rows) == (1, 100_000)
        assert ledger.give_space_back()
        assert path.stat().st_size < before / 10
    finally:
        ledger.close()
