"""Locks that free themselves when their holder dies: how runs sharing one ledger keep out of
each other's way, and how a new run tells a killed run from one still going.

- SQLite ledgers: `flock` on a small file beside the database. The kernel drops the lock when
  the process ends, however it ends (SIGKILL included), so there is never a stale lease to
  expire or to clean up by hand. The holder writes who it is into the file so a waiter can
  name it.
- PostgreSQL ledgers (several machines, ephemeral containers): session-level advisory locks
  on one connection kept open for the run. The server drops them when the session ends, and
  TCP keepalives on both ends make a session whose client vanished (a container killed with
  its network) end within about a minute instead of the OS default of two hours. Who holds a
  stream is written to the `stream_leases` table.

Failures surface as `OSError` or the driver's exceptions, which `leases.py` and `errors.py`
turn into messages that say what to fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from target_pendo import private
from target_pendo.ledger.storable import escaped
from target_pendo.ledger.tables import now

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: file leases are unavailable
    fcntl = None  # type: ignore[assignment]

FILE_LOCKS_AVAILABLE = fcntl is not None

Kind = Literal["stream", "run"]  # a stream's lease, or a run's own lock

# Client side (libpq): notice a server that vanished. 20 s idle, then a probe every 5 s, 6
# unanswered probes: the connection is declared dead after about 50 s.
PG_KEEPALIVE_CONNECT_ARGS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 20,
    "keepalives_interval": 5,
    "keepalives_count": 6,
}
# Server side: the same timings for the server's end of the lease session, which is what makes
# the server end the session (and drop its advisory locks) when our container vanishes.
# `idle_session_timeout = 0`: the lease session idles for the whole run and must not be closed
# for it (PostgreSQL 14+; older servers do not know the setting and are skipped).
_PG_LEASE_SESSION_SETTINGS = (
    *(f"SET tcp_{k} = {v}" for k, v in PG_KEEPALIVE_CONNECT_ARGS.items() if k != "keepalives"),
    "SET idle_session_timeout = 0",
)


def _sha256(name: str) -> bytes:
    """sha256, not `hash()`: the same on every machine and Python version."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()


def pg_key(name: str) -> int:
    """A stable signed 32-bit advisory-lock key for a stream name, run id or namespace."""
    return int.from_bytes(_sha256(name)[:4], "big", signed=True)


# The first key of PostgreSQL's two-key advisory locks: a fixed namespace per kind of lock, so
# our locks collide neither with each other's kinds nor with other applications' locks.
_PG_NAMESPACES: dict[Kind, int] = {
    "stream": pg_key("target-pendo:stream-lease"),
    "run": pg_key("target-pendo:run"),
}
PG_NAMESPACE_MIGRATION = pg_key("target-pendo:migration")


def lock_file_name(name: str) -> str:
    """A file name for any stream name or run id (which may hold `/`, spaces, anything)."""
    return _sha256(name).hex()[:16] + ".lock"


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease: enough for a waiter to find the other run and decide what to do."""

    run_id: str
    host: str
    pid: int
    acquired_at: str

    @classmethod
    def this_process(cls, run_id: str) -> LeaseHolder:
        return cls(run_id, socket.gethostname(), os.getpid(), now())

    @classmethod
    def from_file(cls, path: Path) -> LeaseHolder | None:
        """Who wrote the lock file last (the holder, while the lock is taken); None for a
        missing, empty or half-written file (the holder writes right after locking)."""
        try:
            raw = json.loads(path.read_bytes())
            return cls(str(raw["run_id"]), str(raw["host"]), int(raw["pid"]), raw["acquired_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"run {self.run_id} on host {self.host} (pid {self.pid}), since {self.acquired_at}"


def try_flock(path: Path, holder: LeaseHolder) -> int | None:
    """Take the `flock` on `path` without waiting and write `holder` into the file: the open
    file, which holds the lock until it is closed (None: another holds it). flock locks belong
    to the open file, not the process: two Ledger instances in one process exclude each other
    too."""
    assert fcntl is not None
    private.make_file(path)  # 0600 when new
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, private.FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder), ensure_ascii=True).encode(), 0)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)  # closing the file drops the lock
        raise
    return fd


def release_flock(fd: int, path: Path, *, remove: bool) -> None:
    """Drop the lock. `remove`: delete the file too (only for files no one else creates: a
    run's own lock); else empty it, so a waiter never names a holder that has left."""
    try:
        if remove:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def flock_is_free(path: Path) -> bool:
    """Whether no process holds the lock on `path` (a missing file: no one does). A free lock
    file is removed: it belonged to a run that is gone."""
    assert fcntl is not None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return True
    finally:
        os.close(fd)


class PgLockSession:
    """Advisory locks on one dedicated, autocommit PostgreSQL session kept for the run. It owns
    `conn`, a psycopg (or psycopg2) DBAPI connection: closing it (or the process dying, or the
    network vanishing past the keepalives) drops every lock it holds. Stream names are stored
    escaped (`storable.escaped`)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        for statement in _PG_LEASE_SESSION_SETTINGS:
            try:
                self._execute(statement)
            except Exception as exc:  # an older server without the setting: not needed
                if getattr(exc, "sqlstate", None) != "42704":  # undefined_object
                    raise

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def try_lock(self, kind: Kind, name: str) -> bool:
        keys = (_PG_NAMESPACES[kind], pg_key(name))
        return bool(self._execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)", keys)[0][0])

    def unlock(self, kind: Kind, name: str) -> None:
        keys = (_PG_NAMESPACES[kind], pg_key(name))
        self._execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", keys)

    def write_holder(self, stream: str, holder: LeaseHolder) -> None:
        self._execute(
            "INSERT INTO stream_leases (stream, run_id, host, pid, acquired_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream) DO UPDATE SET "
            "run_id = excluded.run_id, host = excluded.host, pid = excluded.pid, "
            "acquired_at = excluded.acquired_at",
            (escaped(stream), holder.run_id, holder.host, holder.pid, holder.acquired_at),
        )

    def read_holder(self, stream: str) -> LeaseHolder | None:
        rows = self._execute(
            "SELECT run_id, host, pid, acquired_at FROM stream_leases WHERE stream = %s",
            (escaped(stream),),
        )
        if not rows:
            return None
        run_id, host, pid, acquired_at = rows[0]
        return LeaseHolder(run_id, host, int(pid), acquired_at)

    def forget_holder(self, stream: str, run_id: str) -> None:
        self._execute(
            "DELETE FROM stream_leases WHERE stream = %s AND run_id = %s", (escaped(stream), run_id)
        )

    def close(self) -> None:
        self.conn.close()
