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

These are the locks themselves; `leases.py` puts them behind the one interface the ledger
uses. Nothing here knows the ledger's errors: failures surface as `OSError` or the driver's
exceptions, which `leases.py` and `errors.py` turn into messages that say what to fix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from target_pendo import private

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: file leases are unavailable
    fcntl = None  # type: ignore[assignment]

FILE_LOCKS_AVAILABLE = fcntl is not None

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
    "SET tcp_keepalives_idle = 20",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 6",
    "SET idle_session_timeout = 0",
)


def _int32(text: str) -> int:
    """A stable signed 32-bit integer for `text` (sha256, so the same on every machine and
    Python version, unlike `hash()`)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


# The first key of PostgreSQL's two-key advisory locks: a fixed namespace per kind of lock, so
# our locks collide neither with each other's kinds nor with other applications' locks.
PG_NAMESPACE_STREAM = _int32("target-pendo:stream-lease")
PG_NAMESPACE_RUN = _int32("target-pendo:run")
PG_NAMESPACE_MIGRATION = _int32("target-pendo:migration")


def pg_key(name: str) -> int:
    """The second advisory-lock key for a stream name or run id."""
    return _int32(name)


def lock_file_name(name: str) -> str:
    """A file name for any stream name or run id (which may hold `/`, spaces, anything)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16] + ".lock"


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease: enough for a waiter to find the other run and decide what to do."""

    run_id: str
    host: str
    pid: int
    acquired_at: str

    @classmethod
    def this_process(cls, run_id: str) -> LeaseHolder:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        return cls(run_id, socket.gethostname(), os.getpid(), now)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseHolder | None:
        """None for an empty or half-written file (the holder writes right after locking)."""
        try:
            raw = json.loads(data)
            return cls(str(raw["run_id"]), str(raw["host"]), int(raw["pid"]), raw["acquired_at"])
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"run {self.run_id} on host {self.host} (pid {self.pid}), since {self.acquired_at}"


class FileLease:
    """An exclusive `flock` on one file; held while this object keeps the file open.

    flock locks belong to the open file, not the process: two `FileLease`s on one path in one
    process exclude each other too, as two Ledger instances must.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, holder: LeaseHolder) -> bool:
        """Take the lock without waiting; on success write `holder` into the file."""
        if self._fd is not None:
            return True
        assert fcntl is not None
        private.make_file(self.path)  # 0600 when new
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, private.FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        try:
            data = holder.to_json()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except BaseException:
            os.close(fd)  # closing the file drops the lock
            raise
        self._fd = fd
        return True

    def holder(self) -> LeaseHolder | None:
        """Who wrote the file last (the holder, while the lock is taken)."""
        try:
            return LeaseHolder.from_json(self.path.read_bytes())
        except OSError:
            return None

    def release(self, *, remove: bool) -> None:
        """Drop the lock. `remove`: delete the file too (only for files no one else creates:
        a run's own lock); else empty it, so a waiter never names a holder that has left."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if remove:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            else:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    @staticmethod
    def is_free(path: Path) -> bool:
        """Whether no process holds the lock on `path` (a missing file: no one does). A free
        lock file is removed: it belonged to a run that is gone."""
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
    """Advisory locks on one dedicated, autocommit PostgreSQL session kept for the run.

    `conn` is a psycopg (or psycopg2) DBAPI connection this object owns: closing it (or the
    process dying, or the network vanishing past the keepalives) drops every lock it holds.
    """

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

    def try_lock(self, namespace: int, key: int) -> bool:
        rows = self._execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)", (namespace, key))
        return bool(rows[0][0])

    def unlock(self, namespace: int, key: int) -> None:
        self._execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (namespace, key))

    def is_free(self, namespace: int, key: int) -> bool:
        """Whether no other session holds the lock (taken and given back at once if free)."""
        if not self.try_lock(namespace, key):
            return False
        self.unlock(namespace, key)
        return True

    def write_holder(self, stream: str, holder: LeaseHolder) -> None:
        self._execute(
            "INSERT INTO stream_leases (stream, run_id, host, pid, acquired_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream) DO UPDATE SET "
            "run_id = excluded.run_id, host = excluded.host, pid = excluded.pid, "
            "acquired_at = excluded.acquired_at",
            (stream, holder.run_id, holder.host, holder.pid, holder.acquired_at),
        )

    def read_holder(self, stream: str) -> LeaseHolder | None:
        rows = self._execute(
            "SELECT run_id, host, pid, acquired_at FROM stream_leases WHERE stream = %s",
            (stream,),
        )
        if not rows:
            return None
        run_id, host, pid, acquired_at = rows[0]
        return LeaseHolder(run_id, host, int(pid), acquired_at)

    def forget_holder(self, stream: str, run_id: str) -> None:
        self._execute(
            "DELETE FROM stream_leases WHERE stream = %s AND run_id = %s", (stream, run_id)
        )

    def close(self) -> None:
        self.conn.close()
