"""One writer per stream, and a lock per run, on locks that free themselves when their holder
dies, so a new run tells a killed run from a live one: `flock` beside a SQLite file, dropped
however the process ends (SIGKILL included), or PostgreSQL session advisory locks. `Leases`
itself (SQLite in memory, or no flock) takes no lock: it grants every lease."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa

from target_pendo import private
from target_pendo.ledger.engine import Database
from target_pendo.ledger.errors import Errors, LedgerBusyError, LedgerStorageError
from target_pendo.ledger.locks import (
    PG_LEASE_SESSION_SETTINGS,
    Kind,
    LeaseHolder,
    lock_file_name,
    pg_keys,
)
from target_pendo.ledger.storable import escaped

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: file leases are unavailable
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("target_pendo.ledger")

LEASE_POLL_SECONDS = 0.2


class Leases:
    """The leases of one ledger; thread-safe. `warning`: said once, at the first lease, when
    runs sharing the ledger should be kept apart but cannot be."""

    frees: ClassVar[str] = "at once"  # how soon a dead holder's lease frees itself

    def __init__(self, errors: Errors, warning: str | None = None) -> None:
        self._errors = errors
        self._warning = warning
        self._lock = threading.RLock()
        self._held: dict[tuple[Kind, str], str] = {}  # (kind, stream or run id) -> its run

    # --- what a backend does (here: no lock at all) -----------------------------------------
    def _take(self, kind: Kind, name: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        """Take the lock without waiting: (taken, who holds it when not taken)."""
        self._warn_once()
        return True, None

    def _name_holder(self, stream: str, holder: LeaseHolder) -> None: ...

    def _give_back(self, kind: Kind, name: str, run_id: str) -> None: ...

    def _run_is_free(self, run_id: str) -> bool:
        """Whether no live process holds the run's lock (False: cannot tell)."""
        self._warn_once()
        return False

    def _close(self) -> None: ...

    def _warn_once(self) -> None:
        if self._warning is not None:
            logger.warning(self._warning)
            self._warning = None

    def lease_stream(self, stream: str, run_id: str, wait_seconds: float) -> None:
        """Make `run_id` the only writer of `stream` until `release_streams()` or `close()`;
        waits up to `wait_seconds` while another run holds it, then names that run."""
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            with self._errors.guard(f"taking the lease on stream '{stream}'"):
                taken, holder = self._try("stream", stream, run_id)
            if taken:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(LEASE_POLL_SECONDS, left))
        who = holder.describe() if holder is not None else "a run whose details could not be read"
        raise LedgerBusyError(
            f"stream '{stream}' is being synced by another run on the ledger at "
            f"{self._errors.where}: {who}; waited {wait_seconds:g} s. Two runs on one stream "
            "would send its events twice, so this run does not sync it. Let the other run "
            f"finish (a run that died frees its lease by itself, {self.frees}), or raise "
            f"'ledger_wait_seconds' (now {wait_seconds:g}) to wait longer.",
            holder=holder,
        )

    def lock_run(self, run_id: str) -> None:
        """Hold the run's own lock until released or `close()`: no other run takes the id
        meanwhile, and none marks this one abandoned."""
        taken, other = self._try("run", run_id, run_id)
        if not taken:
            who = f" ({other.describe()})" if other is not None else ""
            raise LedgerBusyError(
                f"run id '{run_id}' is already in use by a live run{who} on the ledger at "
                f"{self._errors.where}: give each run its own id"
            )

    def _try(self, kind: Kind, name: str, run_id: str) -> tuple[bool, LeaseHolder | None]:
        with self._lock:
            if (kind, name) in self._held:
                return True, None
            holder = LeaseHolder.this_process(run_id)
            taken, other = self._take(kind, name, holder)
            if taken:
                self._held[kind, name] = run_id
                if kind == "stream":
                    self._name_holder(name, holder)
            return taken, other

    def release_streams(self) -> None:
        with self._lock:
            for kind, name in [key for key in self._held if key[0] == "stream"]:
                self.release(kind, name)

    def release(self, kind: Kind, name: str) -> None:
        with self._lock:
            run_id = self._held.pop((kind, name), None)
            if run_id is None:
                return
            try:
                self._give_back(kind, name, run_id)
            except Exception as exc:  # the session is gone, and its locks with it
                what = f"lease on stream '{name}'" if kind == "stream" else f"lock of run '{name}'"
                logger.debug("Could not release the %s: %s", what, exc)

    def gone(self, run_ids: list[str]) -> list[str]:
        """Those of `run_ids` whose lock no live process holds: they stopped without finishing."""
        with self._lock:
            return [r for r in run_ids if self._run_is_free(r)]

    def close(self) -> None:
        try:
            for kind, name in sorted(self._held, key=lambda key: key[0] == "run"):  # streams first
                self.release(kind, name)
        finally:
            with contextlib.suppress(Exception):
                self._close()


class FileLeases(Leases):
    """`flock` files in `<ledger file>.locks/`: one per stream (by its hash), one per live run.
    flock locks belong to the open file, not the process: two Ledgers in one process exclude
    each other too. The holder writes who it is into the file for a waiter to name."""

    def __init__(self, errors: Errors, path: Path) -> None:
        super().__init__(errors)
        self._folder = path.with_name(path.name + ".locks")
        self._files: dict[Path, int] = {}  # the open lock files

    def _file(self, kind: Kind, name: str) -> Path:
        return self._folder / (("run-" if kind == "run" else "") + lock_file_name(name))

    def _take(self, kind: Kind, name: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        path = self._file(kind, name)
        try:
            private.make_file(path)  # 0600 when new
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, private.FILE_MODE)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(asdict(holder), ensure_ascii=True).encode(), 0)
            except BaseException:
                os.close(fd)  # closing the file drops the lock
                raise
        except BlockingIOError:
            return False, LeaseHolder.from_file(path)
        except OSError as exc:
            raise LedgerStorageError(
                f"cannot create or lock {path} ({exc.strerror or exc}): the folder beside the "
                f"ledger file {self._errors.path} must be writable by this user"
            ) from exc
        self._files[path] = fd
        return True, None

    def _give_back(self, kind: Kind, name: str, run_id: str) -> None:
        path = self._file(kind, name)
        fd = self._files.pop(path)
        try:
            if kind == "run":
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            else:  # emptied, not removed: another run may be waiting on it
                os.ftruncate(fd, 0)  # a waiter never names a holder that has left
        finally:
            os.close(fd)

    def _run_is_free(self, run_id: str) -> bool:
        path = self._file("run", run_id)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # free: its run is gone
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)


class PgLeases(Leases):
    """Advisory locks on one session opened at the first lease, kept out of the pool (a pooled
    connection would carry its locks into other uses), in autocommit (idle between calls, not in
    an open transaction); closed, dead or cut off past the keepalives, it drops them all."""

    frees = "within about a minute"

    def __init__(self, errors: Errors, engine: sa.Engine) -> None:
        super().__init__(errors)
        self._engine = engine
        self.conn: Any = None  # the session's psycopg (or psycopg2) connection, once opened

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.conn is None:
            fairy = self._engine.raw_connection()
            conn: Any = fairy.driver_connection  # a fresh checkout always has one
            fairy.detach()  # the pool forgets it: closing `conn` really closes it
            conn.rollback()
            conn.autocommit = True
            for statement in PG_LEASE_SESSION_SETTINGS:
                try:
                    _fetch(conn, statement, ())
                except Exception as exc:  # an older server without the setting: not needed
                    if getattr(exc, "sqlstate", None) != "42704":  # undefined_object
                        raise
            self.conn = conn
        return _fetch(self.conn, sql, params)

    def _try_lock(self, kind: Kind, name: str) -> bool:
        sql = "SELECT pg_try_advisory_lock(%s::int4, %s::int4)"
        return bool(self._execute(sql, pg_keys(kind, name))[0][0])

    def _unlock(self, kind: Kind, name: str) -> None:
        self._execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", pg_keys(kind, name))

    def _take(self, kind: Kind, name: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        taken = self._try_lock(kind, name)
        if taken or kind == "run":  # a run's lock names no holder
            return taken, None
        found = self._execute(
            "SELECT run_id, host, pid, acquired_at FROM stream_leases WHERE stream = %s",
            (escaped(name),),
        )
        return False, next((LeaseHolder(r, h, int(p), at) for r, h, p, at in found), None)

    def _name_holder(self, stream: str, holder: LeaseHolder) -> None:
        self._execute(
            "INSERT INTO stream_leases (stream, run_id, host, pid, acquired_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream) DO UPDATE SET "
            "run_id = excluded.run_id, host = excluded.host, pid = excluded.pid, "
            "acquired_at = excluded.acquired_at",
            (escaped(stream), holder.run_id, holder.host, holder.pid, holder.acquired_at),
        )

    def _give_back(self, kind: Kind, name: str, run_id: str) -> None:
        if kind == "stream":
            sql = "DELETE FROM stream_leases WHERE stream = %s AND run_id = %s"
            self._execute(sql, (escaped(name), run_id))
        self._unlock(kind, name)

    def _run_is_free(self, run_id: str) -> bool:
        if not self._try_lock("run", run_id):
            return False
        self._unlock("run", run_id)  # free: given back at once
        return True

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _fetch(conn: Any, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with contextlib.closing(conn.cursor()) as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def for_database(db: Database) -> Leases:
    errors = db.errors
    if not db.is_sqlite:
        return PgLeases(errors, db.engine)
    if errors.path is None:
        return Leases(errors)  # in memory: no other process can share it
    if fcntl is None:  # pragma: no cover - not POSIX
        return Leases(
            errors,
            f"This system has no flock: runs sharing the SQLite ledger at {errors.path} "
            "cannot be kept apart. Use a PostgreSQL 'ledger_url' to run several at once.",
        )
    return FileLeases(errors, errors.path)
