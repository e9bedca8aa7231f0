"""The ledger as a store: a read-only view that writes nothing, honest accounting of calls
that were not sent, one clear error for each way the database can fail, and text the
database cannot hold. On SQLite and a real PostgreSQL where both must behave alike."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from target_pendo.cli.ledger import ledger_command
from target_pendo.errors import TargetPendoError
from target_pendo.ledger import (
    MAX_KEY_CHARS,
    Ledger,
    LedgerCorruptError,
    LedgerReadOnlyError,
    LedgerStorageError,
    RowOutcome,
    default_url,
    migrations,
    unstorable_reason,
)
from target_pendo.run.outcomes import Status

from ...ledger_helpers import ledger_url, make_v1_ledger, rows, scalar, tables
from ...singer import TARGET_CMD

__all__ = ["ledger_url"]  # the fixture, used by name

S = "users"


def _path(url: str) -> Path:
    return Path(sa.make_url(url).database or "")


def _write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


# --- read-only --------------------------------------------------------------------------------
def test_read_only_without_a_ledger_creates_nothing(tmp_path):
    state_dir = tmp_path / "state"
    url = default_url(state_dir)
    ledger = Ledger(url, read_only=True)
    assert ledger.states(S, ["a"]) == {}
    assert ledger.keys_with_status(S, [Status.SENT]) == []
    assert ledger.unseen_since(S, "r1", [Status.SENT]) == []
    assert ledger.status_counts() == []
    assert ledger.schema_version() == 0
    assert ledger.start_run("r1", False) == []
    ledger.lease_stream(S, "r1", 0)
    ledger.record(S, "r1", [RowOutcome("a", "sent", value_hash="h")])
    ledger.finish_run("r1", "succeeded", {})
    ledger.close()
    assert not _path(url).exists()
    assert not state_dir.exists()  # not even the folder


def test_read_only_reads_an_existing_ledger_and_changes_nothing(ledger_url):
    writer = Ledger(ledger_url)
    writer.start_run("r1", False)
    writer.record(S, "r1", [RowOutcome("a", "sent", value_hash="h1")])
    writer.finish_run("r1", "succeeded", {})
    writer.close()
    sqlite = ledger_url.startswith("sqlite")
    before = hashlib.sha256(_path(ledger_url).read_bytes()).hexdigest() if sqlite else None

    viewer = Ledger(ledger_url, read_only=True)
    try:
        assert viewer.states(S, ["a", "b"])["a"].value_hash == "h1"
        assert viewer.status_counts() == [(S, "sent", 1)]
        viewer.start_run("dry", False)
        viewer.record(S, "dry", [RowOutcome("b", "sent", value_hash="h2")])
        viewer.finish_run("dry", "succeeded", {})
        with pytest.raises(LedgerReadOnlyError, match=rf"read-only.*reset stream '{S}'"):
            viewer.reset_stream(S)
        # the connection itself refuses writes (SQLite mode=ro; PostgreSQL read-only session,
        # which psycopg raises as an InternalError), not only the Ledger's methods
        refused = (sa.exc.OperationalError, sa.exc.InternalError)
        with pytest.raises(refused, match=r"(?i)read.?only"), viewer.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM row_state"))
    finally:
        viewer.close()
    assert rows(ledger_url, "SELECT run_id FROM sync_runs") == [("r1",)]
    assert rows(ledger_url, "SELECT row_key FROM row_state") == [("a",)]
    if sqlite:
        assert hashlib.sha256(_path(ledger_url).read_bytes()).hexdigest() == before


def test_read_only_reads_an_older_ledger_without_migrating_it(ledger_url):
    make_v1_ledger(ledger_url)
    viewer = Ledger(ledger_url, read_only=True)
    try:
        assert viewer.schema_version() == 1
        assert viewer.states("s", ["old-key"])["old-key"].status == "sent"
    finally:
        viewer.close()
    assert scalar(ledger_url, "SELECT value FROM ledger_meta") == "1"
    assert "stream_leases" not in tables(ledger_url)


def test_read_only_leaves_an_empty_database_file_as_it_is(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    path.touch()  # a SQLite database with no tables
    viewer = Ledger(f"sqlite:///{path}", read_only=True)
    try:
        assert viewer.states(S, ["a"]) == {}
        assert viewer.schema_version() == 0
    finally:
        viewer.close()
    assert path.stat().st_size == 0  # not migrated


def test_read_only_shows_a_schema_it_cannot_read_as_empty_and_says_so(
    ledger_url, monkeypatch, caplog
):
    make_v1_ledger(ledger_url)
    monkeypatch.setattr(migrations, "READABLE_FROM_VERSION", 2)
    caplog.set_level(logging.WARNING, logger="target_pendo.ledger")
    viewer = Ledger(ledger_url, read_only=True)
    try:
        assert viewer.states("s", ["old-key"]) == {}
        assert viewer.schema_version() == 1
    finally:
        viewer.close()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "schema version 1" in warning
    assert "every row is treated as new" in warning
    assert scalar(ledger_url, "SELECT value FROM ledger_meta") == "1"  # still not migrated


def test_read_only_database_without_tables_is_an_empty_ledger(postgres_server):
    url = postgres_server.new_database()
    viewer = Ledger(url, read_only=True)
    try:
        assert viewer.states(S, ["a"]) == {}
        assert viewer.status_counts() == []
    finally:
        viewer.close()
    assert tables(url) == set()


def test_dry_run_status_command_creates_no_ledger(tmp_path, capsys):
    state_dir = tmp_path / "state"
    cfg = _write_config(tmp_path, {"state_dir": str(state_dir)})
    assert ledger_command.main(["status", "--config", str(cfg)], standalone_mode=False) == 0
    assert capsys.readouterr().out == ""
    assert not state_dir.exists()


# --- not_sent and status counts ---------------------------------------------------------------
def test_not_sent_is_no_attempt_keeps_the_hash_and_is_no_sighting(ledger_url):
    ledger = Ledger(ledger_url)
    try:
        ledger.record(
            S,
            "r1",
            [RowOutcome("k", "sent", value_hash="h1"), RowOutcome("bad", "rejected", "refused")],
        )
        reason = "Pendo refused the call (HTTP 403): the key lacks write access"
        ledger.record(S, "r2", [RowOutcome("k", "in_flight"), RowOutcome("bad", "in_flight")])
        ledger.record(S, "r2", [RowOutcome("k", "not_sent", reason)])
        ledger.record(S, "r2", [RowOutcome("bad", "not_sent", "never put on the wire")])
        found = rows(
            ledger_url,
            "SELECT row_key, status, value_hash, attempts, reason, last_seen_run, last_run "
            "FROM row_state ORDER BY row_key",
        )
        assert found == [
            ("bad", "not_sent", None, 1, "never put on the wire", "r1", "r2"),
            ("k", "not_sent", "h1", 0, reason, "r1", "r2"),
        ]
        # not in flight, so the next run does not count it in doubt
        assert ledger.keys_with_status(S, [Status.IN_FLIGHT]) == []
        # not a sighting: a full-table sync of r2 still sees both as gone from the source
        assert ledger.unseen_since(S, "r2", [Status.NOT_SENT]) == ["bad", "k"]
        logged = rows(
            ledger_url,
            "SELECT row_key, outcome, reason FROM sync_rows WHERE run_id = 'r2' ORDER BY row_key",
        )
        assert logged == [("bad", "not_sent", "never put on the wire"), ("k", "not_sent", reason)]
        assert ledger.status_counts() == [(S, "not_sent", 2)]
        ledger.record(S, "r3", [RowOutcome("k", "sent", value_hash="h2")])
        assert ledger.states(S, ["k"])["k"].value_hash == "h2"
    finally:
        ledger.close()


def test_status_counts_per_stream_and_status(ledger_url):
    ledger = Ledger(ledger_url)
    try:
        ledger.record("b", "r1", [RowOutcome("1", "sent"), RowOutcome("2", "sent")])
        ledger.record("a", "r1", [RowOutcome("1", "rejected", "no"), RowOutcome("2", "sent")])
        ledger.record("a", "r1", [RowOutcome("3", "skipped_unknown", "no such visitor")])
        assert ledger.status_counts() == [
            ("a", "rejected", 1),
            ("a", "sent", 1),
            ("a", "unknown", 1),
            ("b", "sent", 2),
        ]
    finally:
        ledger.close()


def test_runs_by_id_prefix_take_wildcards_literally_and_outcomes_per_run(ledger_url):
    ledger = Ledger(ledger_url)
    try:
        for run_id in ("run_1", "runX1", "run_12"):
            ledger.start_run(run_id, False)
            ledger.finish_run(run_id, "succeeded", {})
        assert [r.run_id for r in ledger.runs(prefix="run_1")] == ["run_1"]  # exact wins
        assert [r.run_id for r in ledger.runs(prefix="run_")] == ["run_1", "run_12"]  # _ is _
        assert {r.run_id for r in ledger.runs(limit=2)} <= {"run_1", "runX1", "run_12"}
        assert len(ledger.runs(limit=2)) == 2
        assert ledger.runs(prefix="nope") == []
        assert ledger.runs(prefix="RUN_1") == []  # ids match case and all (SQLite's LIKE does not)
        ledger.record(S, "run_1", [RowOutcome("1", "sent"), RowOutcome("2", "rejected", "no")])
        ledger.record(S, "run_1", [RowOutcome("3", "rejected", "no")])
        assert ledger.run_outcomes("run_1") == {S: {"sent": 1, "rejected": 2}}
        assert ledger.run_reject_reasons("run_1") == [(S, "no", 2)]
        assert ledger.run_outcomes("run_12") == {}
    finally:
        ledger.close()


def test_ledger_status_command_prints_the_counts(tmp_path, capsys):
    state_dir = tmp_path / "state"
    ledger = Ledger(default_url(state_dir))
    ledger.record(S, "r1", [RowOutcome("1", "sent"), RowOutcome("2", "not_sent", "HTTP 403")])
    ledger.close()
    cfg = _write_config(tmp_path, {"state_dir": str(state_dir)})
    assert ledger_command.main(["status", "--config", str(cfg)], standalone_mode=False) == 0
    assert capsys.readouterr().out.splitlines() == [f"{S}\tnot_sent\t1", f"{S}\tsent\t1"]


# --- errors -----------------------------------------------------------------------------------
def _one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message
    assert isinstance(error, TargetPendoError)
    return message


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not a SQLite database, just some text\n" * 100)
    for read_only in (False, True):
        with pytest.raises(LedgerCorruptError) as info:
            Ledger(f"sqlite:///{path}", read_only=read_only)
        message = _one_line(info.value)
        assert str(path) in message
        assert "move" in message
        assert "aside" in message


def _open_and_look_up(url: str, keys: list[str]) -> None:
    ledger = Ledger(url)
    try:
        ledger.states(S, keys)
    finally:
        ledger.close()


def test_a_truncated_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    keys = [f"key-{i:05d}-{'x' * 40}" for i in range(3000)]
    ledger.record(S, "r1", [RowOutcome(k, "sent", value_hash="h" * 32) for k in keys])
    ledger.close()
    path = _path(url)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(LedgerCorruptError) as info:
        _open_and_look_up(url, keys)
    message = _one_line(info.value)
    assert str(path) in message
    assert "backup" in message


def test_a_ledger_missing_a_table(ledger_url):
    Ledger(ledger_url).close()
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE row_state")
    engine.dispose()
    for read_only in (False, True):
        with pytest.raises(LedgerCorruptError) as info:
            Ledger(ledger_url, read_only=read_only)
        message = _one_line(info.value)
        assert "'row_state'" in message
        where = str(_path(ledger_url)) if ledger_url.startswith("sqlite") else "ledger_"
        assert where in message


def test_a_table_dropped_while_running(ledger_url):
    ledger = Ledger(ledger_url)
    try:
        ledger.record(S, "r1", [RowOutcome("1", "rejected", "no")])
        engine = sa.create_engine(ledger_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE sync_rows")
        engine.dispose()
        with pytest.raises(LedgerCorruptError) as info:
            ledger.record(S, "r1", [RowOutcome("2", "rejected", "no")])
        assert "'sync_rows'" in _one_line(info.value)
    finally:
        ledger.close()


def test_state_dir_is_a_file(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.write_text("not a folder")
    with pytest.raises(LedgerStorageError) as info:
        Ledger(default_url(state_dir))
    message = _one_line(info.value)
    assert f"{state_dir} is a file, not a folder" in message
    assert "'state_dir'" in message
    below = state_dir / "deeper"
    with pytest.raises(LedgerStorageError) as info:
        Ledger(default_url(below))
    assert str(below) in _one_line(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a folder whatever its mode")
def test_state_dir_that_cannot_be_created(tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        with pytest.raises(LedgerStorageError) as info:
            Ledger(default_url(parent / "state"))
        message = _one_line(info.value)
        assert str(parent / "state") in message
        assert "ermission denied" in message
    finally:
        parent.chmod(0o700)


def _make_read_only(path: Path) -> None:
    """chmod for a normal user; as root (who ignores modes) the immutable attribute, which
    stops root too. Skips when neither can be had."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a file read-only for root")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i failed: {done.stderr.decode().strip()}")


def _make_writable(path: Path) -> None:
    if os.geteuid() != 0:
        path.parent.chmod(0o755)
        path.chmod(0o644)
    else:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)


def test_a_read_only_ledger_file_fails_at_open_before_anything_is_sent(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    Ledger(url).close()
    path = _path(url)
    _make_read_only(path)
    try:
        with pytest.raises(LedgerStorageError) as info:
            Ledger(url)
        message = _one_line(info.value)
        assert str(path) in message
        assert "read-only" in message
        assert "readonly database" in message
        viewer = Ledger(url, read_only=True)  # reading it is fine
        assert viewer.states(S, ["a"]) == {}
        viewer.close()
    finally:
        _make_writable(path)


def _record_many(ledger: Ledger) -> None:
    for i in range(200):
        ledger.record(S, "r1", [RowOutcome(f"{i}-{'k' * 500}", "rejected", "x" * 2000)])


def test_a_full_database_during_a_write(tmp_path):
    """SQLITE_FULL ("database or disk is full"), as a full disk gives, from SQLite's own cap on
    the database's size."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    try:
        cursor = ledger._writer.raw.cursor()  # the connection that records
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages + 2}")
        cursor.close()
        with pytest.raises(LedgerStorageError) as info:
            _record_many(ledger)
        message = _one_line(info.value)
        assert str(_path(url)) in message
        assert "disk is full" in message
        assert f"stream '{S}'" in message
    finally:
        ledger.close()


_FILL_THE_DISK = r"""
import resource, signal, sys
from target_pendo.errors import TargetPendoError
from target_pendo.ledger import Ledger, RowOutcome
ledger = Ledger(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
try:
    for i in range(100_000):
        ledger.record("users", "r1", [RowOutcome(str(i), "rejected", "x" * 300)])
except TargetPendoError as exc:
    print(type(exc).__name__, exc)
"""


def test_a_write_failing_on_the_disk(tmp_path):
    """The file cannot grow (RLIMIT_FSIZE, which binds root too): SQLite's disk I/O error."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-c", _FILL_THE_DISK, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.strip().split(" ", 1)
    assert kind == "LedgerStorageError"
    assert "\n" not in message
    assert str(_path(url)) in message
    assert "disk I/O error" in message


def test_the_cli_prints_a_ledger_problem_as_one_line(tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "ledger.sqlite3").write_bytes(b"\x00garbage" * 500)
    cfg = _write_config(tmp_path, {"state_dir": str(state_dir)})
    for action in (["status"], ["reset", "--stream", S]):
        done = subprocess.run(
            [*TARGET_CMD, "ledger", *action, "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith("target-pendo: error: the ledger at ")
        assert str(state_dir / "ledger.sqlite3") in line


def test_postgres_errors_hide_the_password(postgres_server):
    url = postgres_server.new_database().replace("postgres@", "postgres:s3cret-pw@")
    url = url.replace(f":{postgres_server.port}/", ":1/")  # nothing listens on port 1
    with pytest.raises(TargetPendoError) as info:
        Ledger(url)
    message = _one_line(info.value)
    assert "s3cret-pw" not in message
    assert "***" in message
    assert "'ledger_url'" in message


# --- text the database cannot store -----------------------------------------------------------
def test_unstorable_reason_names_the_problem():
    assert unstorable_reason("order-42 ünïcode ok") is None
    assert "NUL" in (unstorable_reason("a\x00b") or "")
    assert "surrogate (U+D800)" in (unstorable_reason("a\ud800b") or "")
    assert unstorable_reason("k" * MAX_KEY_CHARS, max_chars=MAX_KEY_CHARS) is None
    too_long = unstorable_reason("k" * (MAX_KEY_CHARS + 1), max_chars=MAX_KEY_CHARS)
    assert "2049 characters" in (too_long or "")


def test_reasons_with_nul_or_surrogates_are_stored_escaped(ledger_url):
    ledger = Ledger(ledger_url)
    try:
        reason = "Pendo said: bad byte \x00 and half a pair \ud800"
        ledger.record(S, "r1", [RowOutcome("k", "rejected", reason)])
        escaped = "Pendo said: bad byte \\x00 and half a pair \\ud800"
        assert rows(ledger_url, "SELECT reason FROM row_state") == [(escaped,)]
        assert rows(ledger_url, "SELECT reason FROM sync_rows") == [(escaped,)]
        # a stream name the database cannot hold still gets its lease (PostgreSQL writes the
        # holder's row with the name escaped)
        ledger.lease_stream("odd\x00stream", "r1", 0)
        ledger.release_leases()
    finally:
        ledger.close()
