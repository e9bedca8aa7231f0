"""One writer per stream, and a lock per run: the leases of one ledger behind one interface.

`Leases` keeps what this ledger holds, waits for a stream another run holds and says who
holds it. By itself it takes no lock (SQLite in memory, or a system without flock): every
lease is granted, and a run that died is never told from one still going. Its backends, chosen
once when the ledger opens (`for_database`), take the locks of `locks.py`:

- `FileLeases` (a SQLite file): `flock` files in a folder beside the database;
- `PgLeases` (PostgreSQL): advisory locks on one session kept for the run, and the
  `stream_leases` table naming who holds each stream.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import ClassVar

import sqlalchemy as sa

from target_pendo.ledger.engine import Database
from target_pendo.ledger.errors import Errors, LedgerBusyError, LedgerStorageError
from target_pendo.ledger.locks import (
    FILE_LOCKS_AVAILABLE,
    Kind,
    LeaseHolder,
    PgLockSession,
    flock_is_free,
    lock_file_name,
    release_flock,
    try_flock,
)

logger = logging.getLogger("target_pendo.ledger")

LEASE_POLL_SECONDS = 0.2


class Leases:
    """The stream leases and run locks of one ledger. Thread-safe: sinks drained in parallel
    lease their streams through one instance. `warning`: said once, at the first lease, when
    runs sharing the ledger should have been kept apart but cannot be."""

    # how soon the lease of a holder that died frees itself, for a waiting run to read
    frees: ClassVar[str] = "at once"

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

    def _name_holder(self, stream: str, holder: LeaseHolder) -> None:
        """Once the stream is taken: let a waiting run find who holds it."""

    def _give_back(self, kind: Kind, name: str, run_id: str) -> None:
        """Drop the lock `_take` took."""

    def _run_is_free(self, run_id: str) -> bool:
        """Whether no live process holds the run's lock (False: cannot tell)."""
        self._warn_once()
        return False

    def _close(self) -> None:
        """Close what holds the locks (dropping any left)."""

    def _warn_once(self) -> None:
        if self._warning is not None:
            logger.warning(self._warning)
            self._warning = None

    # --- what the ledger asks ---------------------------------------------------------------
    def lease_stream(self, stream: str, run_id: str, wait_seconds: float) -> None:
        """Make `run_id` the only writer of `stream` until `release_streams()` or `close()`.

        Waits up to `wait_seconds` (polling every 0.2 s) while another run holds it, then
        raises `LedgerBusyError` naming that run. Taking a lease held already does nothing.
        """
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
            stream=stream,
            holder=holder,
        )

    def lock_run(self, run_id: str) -> None:
        """Hold the run's own lock until `unlock_run` (or `close()`): while it is held, no
        other run takes the id, and no run marks this one abandoned."""
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
        """Give back every stream lease held."""
        with self._lock:
            for kind, name in [key for key in self._held if key[0] == "stream"]:
                self._give_back_quietly(kind, name)

    def unlock_run(self, run_id: str) -> None:
        self._give_back_quietly("run", run_id)

    def _give_back_quietly(self, kind: Kind, name: str) -> None:
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
        """Those of `run_ids` whose lock no live process holds: they stopped without
        finishing (killed, or their machine vanished)."""
        with self._lock:
            return [r for r in run_ids if self._run_is_free(r)]

    def close(self) -> None:
        """Give back every lease and lock, and close what held them."""
        try:
            self.release_streams()
            for kind, name in list(self._held):
                self._give_back_quietly(kind, name)
        finally:
            with contextlib.suppress(Exception):
                self._close()


class FileLeases(Leases):
    """`flock` files in `<ledger file>.locks/`: one per stream, named by its hash, and one per
    live run (`run-<hash>`), removed when the run finishes."""

    def __init__(self, errors: Errors, path: Path) -> None:
        super().__init__(errors)
        self._folder = path.with_name(path.name + ".locks")
        self._files: dict[Path, int] = {}  # the open lock files

    def _file(self, kind: Kind, name: str) -> Path:
        return self._folder / (("run-" if kind == "run" else "") + lock_file_name(name))

    def _take(self, kind: Kind, name: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        path = self._file(kind, name)
        try:
            fd = try_flock(path, holder)
        except OSError as exc:
            raise LedgerStorageError(
                f"cannot create or lock {path} ({exc.strerror or exc}): the folder beside the "
                f"ledger file {self._errors.path} must be writable by this user"
            ) from exc
        if fd is None:
            return False, LeaseHolder.from_file(path)
        self._files[path] = fd
        return True, None

    def _give_back(self, kind: Kind, name: str, run_id: str) -> None:
        # A finished run's file goes; a stream's is emptied, not removed: another run may be
        # waiting on the same file.
        path = self._file(kind, name)
        release_flock(self._files.pop(path), path, remove=kind == "run")

    def _run_is_free(self, run_id: str) -> bool:
        return flock_is_free(self._file("run", run_id))


class PgLeases(Leases):
    """Session-level advisory locks on one session opened at the first lease, kept out of the
    pool (a pooled connection would carry its session locks into other uses) and in
    autocommit, so it idles between calls instead of sitting in an open transaction."""

    frees = "within about a minute"

    def __init__(self, errors: Errors, engine: sa.Engine) -> None:
        super().__init__(errors)
        self._engine = engine
        self.session: PgLockSession | None = None

    def _session(self) -> PgLockSession:
        if self.session is None:
            fairy = self._engine.raw_connection()
            conn = fairy.driver_connection
            assert conn is not None  # a fresh checkout always has its DBAPI connection
            fairy.detach()  # the pool forgets it: closing `conn` really closes it
            conn.rollback()
            conn.autocommit = True
            self.session = PgLockSession(conn)
        return self.session

    def _take(self, kind: Kind, name: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        session = self._session()
        taken = session.try_lock(kind, name)
        if taken or kind == "run":  # a run's lock names no holder
            return taken, None
        return False, session.read_holder(name)

    def _name_holder(self, stream: str, holder: LeaseHolder) -> None:
        self._session().write_holder(stream, holder)

    def _give_back(self, kind: Kind, name: str, run_id: str) -> None:
        if kind == "stream":
            self._session().forget_holder(name, run_id)
        self._session().unlock(kind, name)

    def _run_is_free(self, run_id: str) -> bool:
        session = self._session()
        if not session.try_lock("run", run_id):
            return False
        session.unlock("run", run_id)  # free: given back at once
        return True

    def _close(self) -> None:
        if self.session is not None:
            self.session.close()


def for_database(db: Database) -> Leases:
    """The leases of the ledger `db`: by its backend, chosen once."""
    errors = db.errors
    if not db.is_sqlite:
        return PgLeases(errors, db.engine)
    if errors.path is None:
        return Leases(errors)  # in memory: no other process can share it
    if not FILE_LOCKS_AVAILABLE:  # pragma: no cover - not POSIX
        return Leases(
            errors,
            f"This system has no flock: runs sharing the SQLite ledger at {errors.path} "
            "cannot be kept apart. Use a PostgreSQL 'ledger_url' to run several at once.",
        )
    return FileLeases(errors, errors.path)
