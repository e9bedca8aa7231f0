"""One writer per stream, and a lock per run: the leases of one ledger behind one interface.

`Leases` keeps what this ledger holds, waits for a stream another run holds and says who
holds it; a backend, chosen once when the ledger opens (`for_database`), takes and gives back
the locks (`locks.py`):

- `FileLeases` (a SQLite file): `flock` files in a folder beside the database;
- `PgLeases` (PostgreSQL): advisory locks on one session kept for the run, and the
  `stream_leases` table naming who holds each stream;
- `Unguarded` (SQLite in memory, or a system without flock): takes every lease at once, and
  never tells a run that died from one still going.

A holder that dies frees its leases by itself: at once on SQLite (flock), within about a
minute on PostgreSQL for a machine that vanished (TCP keepalives), at once for a process that
was killed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import sqlalchemy as sa

from target_pendo.ledger.engine import Database
from target_pendo.ledger.errors import Errors, LedgerBusyError, LedgerStorageError
from target_pendo.ledger.locks import (
    FILE_LOCKS_AVAILABLE,
    PG_NAMESPACE_RUN,
    PG_NAMESPACE_STREAM,
    FileLease,
    LeaseHolder,
    PgLockSession,
    lock_file_name,
    pg_key,
)
from target_pendo.ledger.storable import escaped

logger = logging.getLogger("target_pendo.ledger")

LEASE_POLL_SECONDS = 0.2


class Leases(ABC):
    """The stream leases and run locks of one ledger. Thread-safe: sinks drained in parallel
    lease their streams through one instance."""

    # how soon the lease of a holder that died frees itself, for a waiting run to read
    frees: ClassVar[str] = "at once"

    def __init__(self, errors: Errors) -> None:
        self._errors = errors
        self._lock = threading.RLock()
        self._streams: dict[str, str] = {}  # stream -> the run holding it
        self._runs: set[str] = set()

    # --- what a backend does ----------------------------------------------------------------
    @abstractmethod
    def _take_stream(self, stream: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        """Take the stream's lock without waiting: (taken, who holds it when not taken)."""

    @abstractmethod
    def _name_holder(self, stream: str, holder: LeaseHolder) -> None:
        """Once the stream is taken: let a waiting run find who holds it."""

    @abstractmethod
    def _give_back_stream(self, stream: str, run_id: str) -> None: ...

    @abstractmethod
    def _take_run(self, run_id: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        """Take the run's own lock without waiting: (taken, who holds it when not taken)."""

    @abstractmethod
    def _give_back_run(self, run_id: str) -> None: ...

    @abstractmethod
    def _run_is_free(self, run_id: str) -> bool:
        """Whether no live process holds the run's lock (False: cannot tell)."""

    @abstractmethod
    def _close(self) -> None:
        """Close what holds the locks (dropping any left)."""

    # --- streams ----------------------------------------------------------------------------
    def lease_stream(self, stream: str, run_id: str, wait_seconds: float) -> None:
        """Make `run_id` the only writer of `stream` until `release_streams()` or `close()`.

        Waits up to `wait_seconds` (polling every 0.2 s) while another run holds it, then
        raises `LedgerBusyError` naming that run. Taking a lease held already does nothing.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            with self._errors.guard(f"taking the lease on stream '{stream}'"):
                taken, holder = self._try_stream(stream, run_id)
            if taken:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(LEASE_POLL_SECONDS, left))
        raise self._busy_error(stream, holder, wait_seconds)

    def _try_stream(self, stream: str, run_id: str) -> tuple[bool, LeaseHolder | None]:
        with self._lock:
            if stream in self._streams:
                return True, None
            holder = LeaseHolder.this_process(run_id)
            taken, other = self._take_stream(stream, holder)
            if taken:
                self._streams[stream] = run_id
                self._name_holder(stream, holder)
            return taken, other

    def _busy_error(
        self, stream: str, holder: LeaseHolder | None, wait_seconds: float
    ) -> LedgerBusyError:
        who = holder.describe() if holder is not None else "a run whose details could not be read"
        return LedgerBusyError(
            f"stream '{stream}' is being synced by another run on the ledger at "
            f"{self._errors.where}: {who}; waited {wait_seconds:g} s. Two runs on one stream "
            "would send its events twice, so this run does not sync it. Let the other run "
            f"finish (a run that died frees its lease by itself, {self.frees}), or raise "
            f"'ledger_wait_seconds' (now {wait_seconds:g}) to wait longer.",
            stream=stream,
            holder=holder,
        )

    def release_streams(self) -> None:
        """Give back every stream lease held."""
        with self._lock:
            streams, self._streams = self._streams, {}
            for stream, run_id in streams.items():
                try:
                    self._give_back_stream(stream, run_id)
                except Exception as exc:  # the session is gone, and its locks with it
                    logger.debug("Could not release the lease on stream '%s': %s", stream, exc)

    # --- runs -------------------------------------------------------------------------------
    def lock_run(self, run_id: str) -> None:
        """Hold the run's own lock until `unlock_run` (or `close()`): while it is held, no
        other run takes the id, and no run marks this one abandoned."""
        with self._lock:
            if run_id in self._runs:
                return
            taken, other = self._take_run(run_id, LeaseHolder.this_process(run_id))
            if not taken:
                who = f" ({other.describe()})" if other is not None else ""
                raise LedgerBusyError(
                    f"run id '{run_id}' is already in use by a live run{who} on the ledger at "
                    f"{self._errors.where}: give each run its own id"
                )
            self._runs.add(run_id)

    def unlock_run(self, run_id: str) -> None:
        with self._lock:
            if run_id not in self._runs:
                return
            self._runs.discard(run_id)
            try:
                self._give_back_run(run_id)
            except Exception as exc:  # the session is gone, and its locks with it
                logger.debug("Could not release the lock of run '%s': %s", run_id, exc)

    def gone(self, run_ids: list[str]) -> list[str]:
        """Those of `run_ids` whose lock no live process holds: they stopped without
        finishing (killed, or their machine vanished)."""
        with self._lock:
            return [r for r in run_ids if self._run_is_free(r)]

    def close(self) -> None:
        """Give back every lease and lock, and close what held them."""
        try:
            self.release_streams()
            for run_id in list(self._runs):
                self.unlock_run(run_id)
        finally:
            with contextlib.suppress(Exception):
                self._close()


class FileLeases(Leases):
    """`flock` files in `<ledger file>.locks/`: one per stream, named by its hash, and one per
    live run (`run-<hash>`), removed when the run finishes."""

    def __init__(self, errors: Errors, path: Path) -> None:
        super().__init__(errors)
        self._path = path
        self._folder = path.with_name(path.name + ".locks")
        self._held: dict[Path, FileLease] = {}

    def _stream_file(self, stream: str) -> Path:
        return self._folder / lock_file_name(stream)

    def _run_file(self, run_id: str) -> Path:
        return self._folder / f"run-{lock_file_name(run_id)}"

    def _take(self, path: Path, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        lease = FileLease(path)
        try:
            taken = lease.try_acquire(holder)
        except OSError as exc:
            raise LedgerStorageError(
                f"cannot create or lock {path} ({exc.strerror or exc}): the folder beside the "
                f"ledger file {self._path} must be writable by this user"
            ) from exc
        if not taken:
            return False, lease.holder()
        self._held[path] = lease
        return True, None

    def _take_stream(self, stream: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        return self._take(self._stream_file(stream), holder)

    def _name_holder(self, stream: str, holder: LeaseHolder) -> None:
        pass  # the lock file named the holder as it was taken

    def _give_back_stream(self, stream: str, run_id: str) -> None:
        # emptied, not removed: another run may be waiting on the same file
        self._held.pop(self._stream_file(stream)).release(remove=False)

    def _take_run(self, run_id: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        return self._take(self._run_file(run_id), holder)

    def _give_back_run(self, run_id: str) -> None:
        self._held.pop(self._run_file(run_id)).release(remove=True)  # a finished run's goes

    def _run_is_free(self, run_id: str) -> bool:
        return FileLease.is_free(self._run_file(run_id))

    def _close(self) -> None:
        pass  # each lock file was closed as its lease was given back


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

    def _take_stream(self, stream: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        session = self._session()
        if session.try_lock(PG_NAMESPACE_STREAM, pg_key(stream)):
            return True, None
        return False, session.read_holder(escaped(stream))

    def _name_holder(self, stream: str, holder: LeaseHolder) -> None:
        self._session().write_holder(escaped(stream), holder)

    def _give_back_stream(self, stream: str, run_id: str) -> None:
        if self.session is not None:
            self.session.forget_holder(escaped(stream), run_id)
            self.session.unlock(PG_NAMESPACE_STREAM, pg_key(stream))

    def _take_run(self, run_id: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        return self._session().try_lock(PG_NAMESPACE_RUN, pg_key(run_id)), None

    def _give_back_run(self, run_id: str) -> None:
        if self.session is not None:
            self.session.unlock(PG_NAMESPACE_RUN, pg_key(run_id))

    def _run_is_free(self, run_id: str) -> bool:
        return self._session().is_free(PG_NAMESPACE_RUN, pg_key(run_id))

    def _close(self) -> None:
        if self.session is not None:
            self.session.close()


class Unguarded(Leases):
    """No locks to take: every lease is granted, and no run is ever found gone (it cannot be
    told from a live one). `warning`: said once, at the first lease, when runs sharing the
    ledger should have been kept apart."""

    def __init__(self, errors: Errors, warning: str | None = None) -> None:
        super().__init__(errors)
        self._warning = warning

    def _warn_once(self) -> None:
        if self._warning is not None:
            logger.warning(self._warning)
            self._warning = None

    def _take_stream(self, stream: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        self._warn_once()
        return True, None

    def _name_holder(self, stream: str, holder: LeaseHolder) -> None:
        pass

    def _give_back_stream(self, stream: str, run_id: str) -> None:
        pass

    def _take_run(self, run_id: str, holder: LeaseHolder) -> tuple[bool, LeaseHolder | None]:
        self._warn_once()
        return True, None

    def _give_back_run(self, run_id: str) -> None:
        pass

    def _run_is_free(self, run_id: str) -> bool:
        self._warn_once()
        return False

    def _close(self) -> None:
        pass


def for_database(db: Database) -> Leases:
    """The leases of the ledger `db`: by its backend, chosen once."""
    errors = db.errors
    if not db.is_sqlite:
        return PgLeases(errors, db.engine)
    if errors.path is None:
        return Unguarded(errors)  # in memory: no other process can share it
    if not FILE_LOCKS_AVAILABLE:  # pragma: no cover - not POSIX
        return Unguarded(
            errors,
            f"This system has no flock: runs sharing the SQLite ledger at {errors.path} "
            "cannot be kept apart. Use a PostgreSQL 'ledger_url' to run several at once.",
        )
    return FileLeases(errors, errors.path)
