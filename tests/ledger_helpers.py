"""Shared by the ledger store and lease tests: a ledger URL on each backend, a second process
that holds a run or a stream lease, and a ledger built at schema version 1."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from target_pendo.ledger import default_url
from target_pendo.ledger.migrations import _INSERT_VERSION, _MIGRATIONS

# Holds what argv asks for and sleeps until killed: start_run (its run lock) and, when a
# stream is given, that stream's lease. Prints "ready <backend pid>" once it holds them.
HOLDER = r"""
import sys, time
from target_pendo.ledger import Ledger
url, run_id, stream = sys.argv[1:4]
ledger = Ledger(url)
ledger.start_run(run_id, False)
if stream:
    ledger.lease_stream(stream, run_id, 0)
backend = 0
if getattr(ledger._leases, "conn", None) is not None:  # PostgreSQL: the advisory-lock session
    backend = ledger._leases._execute("SELECT pg_backend_pid()")[0][0]
print("ready", backend, flush=True)
time.sleep(120)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger URL: SQLite under tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return default_url(tmp_path / "state")
    return request.getfixturevalue("postgres_server").new_database()


class Holder:
    """Another target-pendo process on the same ledger, as a second run would be."""

    def __init__(self, url: str, run_id: str, stream: str = "") -> None:
        self.url = url
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, run_id, stream],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("ready"):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            pytest.fail(f"the holder process did not start: {err}")
        self.backend_pid = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no Python cleanup, no close(); only the OS and the server free its locks."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.backend_pid:
            wait_backend_gone(self.url, self.backend_pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def wait_backend_gone(url: str, backend_pid: int, timeout: float = 10) -> None:
    """PostgreSQL ends a killed client's session when it reads the closed socket, a few
    milliseconds later: wait for that, so tests do not race the server."""
    engine = sa.create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                alive = conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                    {"p": backend_pid},
                ).scalar()
            if not alive:
                return
            time.sleep(0.02)
        pytest.fail(f"PostgreSQL kept the session of backend {backend_pid}")
    finally:
        engine.dispose()


def make_v1_ledger(url: str) -> None:
    """A ledger as target-pendo with schema version 1 left it, with one sent row."""
    if url.startswith("sqlite:///"):
        Path(sa.make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in _MIGRATIONS[1]:
            conn.exec_driver_sql(statement)
        conn.execute(_INSERT_VERSION, {"v": "1"})
        conn.execute(
            sa.text(
                "INSERT INTO row_state (stream, row_key, status, value_hash, attempts, "
                "first_run, last_run, last_seen_run, updated_at) "
                "VALUES ('s', 'old-key', 'sent', 'h-old', 0, 'r0', 'r0', 'r0', 't')"
            )
        )
    engine.dispose()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def scalar(url: str, sql: str, **params: object) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def rows(url: str, sql: str, **params: object) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()
