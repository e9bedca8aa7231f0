"""One writer per ledger stream, and runs that were killed told from runs still going: on
SQLite (flock) and on a real PostgreSQL (advisory locks), against real second processes."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from target_pendo.cli.ledger import ledger_command
from target_pendo.ledger import SCHEMA_VERSION, Ledger, LedgerBusyError, default_url, lock_file_name

from ...ledger_helpers import Holder, ledger_url, make_v1_ledger, rows, scalar, tables

__all__ = ["ledger_url"]  # the fixture, used by name

STREAM = "product_events"


def test_a_second_process_waits_then_is_told_who_holds_the_stream(ledger_url):
    holder = Holder(ledger_url, "holder-run-1", STREAM)
    ledger = Ledger(ledger_url)
    try:
        started = time.monotonic()
        with pytest.raises(LedgerBusyError) as info:
            ledger.lease_stream(STREAM, "my-run", wait_seconds=0.6)
        waited = time.monotonic() - started
        assert 0.6 <= waited < 3
        message = str(info.value)
        assert "\n" not in message
        for part in ("holder-run-1", socket.gethostname(), f"pid {holder.pid}", "since"):
            assert part in message
        assert f"stream '{STREAM}'" in message
        assert "ledger_wait_seconds" in message
        assert info.value.holder is not None
        assert info.value.holder.run_id == "holder-run-1"
        ledger.lease_stream("another_stream", "my-run", wait_seconds=0)  # not blocked

        holder.kill()  # SIGKILL: the lease frees itself, no cleanup ran
        started = time.monotonic()
        ledger.lease_stream(STREAM, "my-run", wait_seconds=5)
        assert time.monotonic() - started < 1
    finally:
        holder.stop()
        ledger.close()


def test_a_lease_is_held_until_released_or_closed(ledger_url):
    first, second = Ledger(ledger_url), Ledger(ledger_url)
    try:
        first.lease_stream(STREAM, "run-a", 0)
        first.lease_stream(STREAM, "run-a", 0)  # held already: a no-op
        with pytest.raises(LedgerBusyError, match="run-a"):
            second.lease_stream(STREAM, "run-b", 0)
        first.release_leases()
        second.lease_stream(STREAM, "run-b", 0)
        second.close()
        first.lease_stream(STREAM, "run-a", 0)
    finally:
        first.close()
        second.close()


def test_a_waiting_run_gets_the_stream_when_the_holder_closes(ledger_url):
    first, second = Ledger(ledger_url), Ledger(ledger_url)
    try:
        first.lease_stream(STREAM, "run-a", 0)
        timer = threading.Timer(0.5, first.close)
        timer.start()
        started = time.monotonic()
        second.lease_stream(STREAM, "run-b", wait_seconds=10)
        assert 0.4 < time.monotonic() - started < 3
        timer.join()
    finally:
        first.close()
        second.close()


def test_a_read_only_ledger_takes_no_lease(ledger_url):
    writer = Ledger(ledger_url)
    viewer = Ledger(ledger_url, read_only=True)
    try:
        writer.lease_stream(STREAM, "run-a", 0)
        viewer.lease_stream(STREAM, "dry-run", 0)  # does not wait, does not fail
        writer.release_leases()
        viewer.lease_stream(STREAM, "dry-run", 0)
        writer.lease_stream(STREAM, "run-a", 0)  # the viewer took nothing
    finally:
        viewer.close()
        writer.close()


def test_sqlite_lease_is_a_lock_file_naming_its_holder(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    try:
        ledger.lease_stream(STREAM, "run-a", 0)
        path = tmp_path / "ledger.sqlite3.locks" / lock_file_name(STREAM)
        holder = json.loads(path.read_text())
        assert holder["run_id"] == "run-a"
        assert holder["host"] == socket.gethostname()
        assert isinstance(holder["pid"], int)
        ledger.release_leases()
        assert path.read_text() == ""  # a waiter never names a run that has left
    finally:
        ledger.close()


def test_in_memory_sqlite_needs_no_lock():
    ledger = Ledger("sqlite://")
    try:
        ledger.lease_stream(STREAM, "run-a", 0)
        ledger.start_run("run-a", False)
        ledger.finish_run("run-a", "succeeded", {})
    finally:
        ledger.close()


def test_postgres_lease_session_has_keepalives_and_names_its_holder(postgres_server):
    url = postgres_server.new_database()
    ledger = Ledger(url)
    try:
        ledger.lease_stream(STREAM, "run-a", 0)
        session = ledger._leases
        assert session.conn is not None
        # server side: the server ends the session of a client that vanished
        assert session._execute("SHOW tcp_keepalives_idle") == [("20",)]
        assert session._execute("SHOW tcp_keepalives_count") == [("6",)]
        # client side (libpq)
        assert session.conn.info.get_parameters()["keepalives_idle"] == "20"
        found = rows(url, "SELECT run_id, host, pid FROM stream_leases WHERE stream = :s", s=STREAM)
        assert found == [("run-a", socket.gethostname(), os.getpid())]
        ledger.release_leases()
        assert rows(url, "SELECT run_id FROM stream_leases") == []
    finally:
        ledger.close()


# --- runs -------------------------------------------------------------------------------------
def test_a_killed_run_is_marked_abandoned_and_a_live_one_is_not(ledger_url):
    killed = Holder(ledger_url, "killed-run")
    live = Holder(ledger_url, "live-run")
    ledger = Ledger(ledger_url)
    try:
        killed.kill()
        assert ledger.start_run("new-run", False) == ["killed-run"]
        statuses = dict(rows(ledger_url, "SELECT run_id, status FROM sync_runs"))
        assert statuses == {"killed-run": "abandoned", "live-run": "running", "new-run": "running"}
        finished = scalar(
            ledger_url, "SELECT finished_at FROM sync_runs WHERE run_id = 'killed-run'"
        )
        assert finished is not None
        ledger.finish_run("new-run", "succeeded", {})
        live.kill()
        later = Ledger(ledger_url)
        try:
            assert later.start_run("later-run", False) == ["live-run"]
        finally:
            later.close()
    finally:
        killed.stop()
        live.stop()
        ledger.close()


def test_a_run_closed_without_finishing_is_abandoned_by_the_next(ledger_url):
    first = Ledger(ledger_url)
    first.start_run("r1", False)
    first.close()
    second = Ledger(ledger_url)
    try:
        assert second.start_run("r2", False) == ["r1"]
        second.finish_run("r2", "succeeded", {})
    finally:
        second.close()
    third = Ledger(ledger_url)
    try:
        assert third.start_run("r3", False) == []  # finished runs stay as they are
    finally:
        third.close()
    statuses = dict(rows(ledger_url, "SELECT run_id, status FROM sync_runs"))
    # r3 was closed without finishing too, but no run has started since to notice
    assert statuses == {"r1": "abandoned", "r2": "succeeded", "r3": "running"}


def test_a_finished_run_removes_its_lock_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    locks = tmp_path / "ledger.sqlite3.locks"
    ledger = Ledger(url)
    try:
        ledger.start_run("r1", False)
        assert [p.name for p in locks.iterdir()] == [f"run-{lock_file_name('r1')}"]
        ledger.finish_run("r1", "succeeded", {})
        assert list(locks.iterdir()) == []
    finally:
        ledger.close()


def test_a_run_id_in_use_by_a_live_run_is_refused(ledger_url):
    first, second = Ledger(ledger_url), Ledger(ledger_url)
    try:
        first.start_run("same-id", False)
        with pytest.raises(LedgerBusyError, match="same-id"):
            second.start_run("same-id", False)
    finally:
        first.close()
        second.close()


# --- schema -----------------------------------------------------------------------------------
def test_a_version_1_ledger_is_migrated_to_the_current_version(ledger_url):
    """Version 2 added the lease holders' table, version 3 the pending queue's columns."""
    make_v1_ledger(ledger_url)
    assert "stream_leases" not in tables(ledger_url)
    ledger = Ledger(ledger_url)
    try:
        assert ledger.schema_version() == SCHEMA_VERSION == 4
        assert ledger.pending_rows("s", "r1") == []  # the old key has nothing pending
        assert "stream_leases" in tables(ledger_url)
        assert ledger.states("s", ["old-key"])["old-key"].value_hash == "h-old"
        ledger.lease_stream("s", "r1", 0)
    finally:
        ledger.close()


def test_runs_opening_a_new_ledger_at_once_all_succeed(ledger_url):
    """The migration is one serialised transaction: concurrent first opens do not collide."""
    if ledger_url.startswith("sqlite"):
        Path(sa.make_url(ledger_url).database or "").parent.mkdir(parents=True)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        try:
            barrier.wait()
            Ledger(ledger_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert scalar(ledger_url, "SELECT value FROM ledger_meta") == str(SCHEMA_VERSION)


def test_ledger_reset_refuses_while_a_run_holds_the_stream(tmp_path, capsys):
    state_dir = tmp_path / "state"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"state_dir": str(state_dir)}))
    reset = ["reset", "--stream", STREAM, "--config", str(cfg)]
    holder = Holder(default_url(state_dir), "syncing-run", STREAM)
    try:
        with pytest.raises(LedgerBusyError, match="syncing-run"):
            ledger_command.main(reset, standalone_mode=False)
        holder.kill()
        assert ledger_command.main(reset, standalone_mode=False) == 0
        assert f"forgot 0 key(s) of stream '{STREAM}'" in capsys.readouterr().out
    finally:
        holder.stop()
