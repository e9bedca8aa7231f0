"""The sync ledger: what Pendo accepted, row by row, so events go once and unchanged objects
are not re-sent. SQLite under `state_dir` by default; any SQLAlchemy URL (PostgreSQL) by
`ledger_url`.

Tables (a versioned schema, migrated forward on open, one transaction per open):
- `row_state`: one row per (stream, key): the last status (in_flight, sent, rejected,
  unknown, not_sent, cleared, deleted), the hash of the values Pendo holds, reason, attempts,
  and the run that last saw the key in the source.
- `sync_runs`: one row per run, with its status (running, succeeded, failed, abandoned) and
  report.
- `sync_rows`: one row per row and run: the outcome (sent, already_sent, unchanged,
  skipped_unknown, rejected + reason, not_sent + reason, in_doubt, cleared, deleted): "which
  rows failed and why" is a SQL query.
- `stream_leases` (version 2): which run holds each stream's lease, for a waiting run to name.

Each `record` call is one transaction, committed before it returns: an accepted call is on
disk before the next STATE can pass it. A call is marked `in_flight` before it is sent, so
after a crash exactly the calls in flight at that moment are left `in_flight`: the next run
counts them as "in doubt" and sends them again (Pendo has no idempotency key). A call that got
a definite "no" (or never went out) is marked `not_sent`, so it is not counted in doubt.

One writer per stream: `lease_stream` gives a run the stream until `close()`, and a run's
own lock (taken by `start_run`) tells a live run from one that was killed; both free
themselves when their holder dies (see `lease.py`). `read_only=True` (dry runs, `ledger
status`) writes nothing at all: no file, no migration, no lease.

Database problems surface as `LedgerError`s whose one-line message names the file, URL
(password hidden) or table and says what to do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import json
import logging
import re
import sqlite3
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from target_pendo import private
from target_pendo.errors import ConfigError, TargetPendoError
from target_pendo.lease import (
    FILE_LOCKS_AVAILABLE,
    PG_KEEPALIVE_CONNECT_ARGS,
    PG_NAMESPACE_MIGRATION,
    PG_NAMESPACE_RUN,
    PG_NAMESPACE_STREAM,
    FileLease,
    LeaseHolder,
    PgLeases,
    lock_file_name,
    pg_key,
)
from target_pendo.ledger_tables import (
    ledger_meta,
    row_state,
    stream_schemas,
    sync_rows,
    sync_runs,
    write_statements,
)
from target_pendo.outcomes import FACTS, Outcome, RunStatus, Status

logger = logging.getLogger("target_pendo.ledger")

SCHEMA_VERSION = 4
# The oldest schema the lookups of this version can read unmigrated (a read-only ledger is
# never migrated): row_state, sync_runs and sync_rows kept every column of version 1 (version 3
# added row_state's pending queue, which the lookups of an older ledger leave out).
READABLE_FROM_VERSION = 1
PENDING_QUEUE_VERSION = 3  # the schema version that added row_state.pending
STREAM_SCHEMAS_VERSION = 4  # the schema version that added stream_schemas
LEASE_POLL_SECONDS = 0.2
MAX_KEY_CHARS = 2048  # row_state.row_key VARCHAR(2048): PostgreSQL enforces it


P = ParamSpec("P")
R = TypeVar("R")


def _write(
    read_only_gives: Callable[[], Any] = lambda: None, *, refuse: str | None = None
) -> Callable[[Callable[Concatenate[Ledger, P], R]], Callable[Concatenate[Ledger, P], R]]:
    """A method that writes the ledger: the one place where a read-only ledger (a dry run,
    `ledger status`, `report`) decides what a write does. It does nothing and returns
    `read_only_gives()`. With `refuse` it raises LedgerReadOnlyError instead, because the
    caller asked for the change itself: `refuse` says what cannot be done and what to do, with
    the method's arguments filled in (`{stream}`)."""

    def wrap(method: Callable[Concatenate[Ledger, P], R]) -> Callable[Concatenate[Ledger, P], R]:
        @functools.wraps(method)
        def guarded(self: Ledger, /, *args: P.args, **kwargs: P.kwargs) -> R:
            if not self.read_only:
                return method(self, *args, **kwargs)
            if refuse is not None:
                named = inspect.signature(method).bind(self, *args, **kwargs).arguments
                raise LedgerReadOnlyError(
                    f"the ledger at {self._where} was opened read-only (a dry run): it cannot "
                    + refuse.format(**named)
                )
            return cast(R, read_only_gives())

        return guarded

    return wrap


class LedgerError(TargetPendoError):
    """The ledger cannot be used as it is; the message names it and says what to do."""


class LedgerOpenError(LedgerError, ConfigError):
    """The ledger cannot be opened at all (unreachable server, unusable URL or file): a
    configuration problem, found before any data is read or sent."""


class LedgerBusyError(LedgerError):
    """Another live run holds the lease on a stream (or the run id) this run asked for."""

    def __init__(
        self, message: str, *, stream: str | None = None, holder: LeaseHolder | None = None
    ) -> None:
        super().__init__(message)
        self.stream = stream
        self.holder = holder


class LedgerCorruptError(LedgerError):
    """The ledger's file or tables are damaged: not a database, or an expected table gone."""


class LedgerStorageError(LedgerError):
    """The ledger cannot be written where it is: folder not creatable, read-only, disk full,
    disk I/O error."""


class LedgerReadOnlyError(LedgerError):
    """A change was asked of a ledger opened read-only (a dry run, `ledger status`)."""


_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE ledger_meta (
            name VARCHAR(64) PRIMARY KEY,
            value VARCHAR(256) NOT NULL)""",
        """CREATE TABLE sync_runs (
            run_id VARCHAR(64) PRIMARY KEY,
            started_at VARCHAR(40) NOT NULL,
            finished_at VARCHAR(40),
            status VARCHAR(16) NOT NULL,
            full_resync INTEGER NOT NULL DEFAULT 0,
            report TEXT)""",
        """CREATE TABLE row_state (
            stream VARCHAR(512) NOT NULL,
            row_key VARCHAR(2048) NOT NULL,
            status VARCHAR(16) NOT NULL,
            value_hash VARCHAR(64),
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_run VARCHAR(64) NOT NULL,
            last_run VARCHAR(64) NOT NULL,
            last_seen_run VARCHAR(64),
            updated_at VARCHAR(40) NOT NULL,
            PRIMARY KEY (stream, row_key))""",
        "CREATE INDEX row_state_status ON row_state (stream, status)",
        """CREATE TABLE sync_rows (
            run_id VARCHAR(64) NOT NULL,
            stream VARCHAR(512) NOT NULL,
            row_key VARCHAR(2048) NOT NULL,
            outcome VARCHAR(20) NOT NULL,
            reason TEXT,
            at VARCHAR(40) NOT NULL)""",
        "CREATE INDEX sync_rows_run ON sync_rows (run_id, stream, outcome)",
    ],
    # 2: who holds each stream's lease, for a waiting run to name it (PostgreSQL; SQLite keeps
    # the holder in the lock file, but the schema is the same on both backends).
    2: [
        """CREATE TABLE stream_leases (
            stream VARCHAR(512) PRIMARY KEY,
            run_id VARCHAR(64) NOT NULL,
            host VARCHAR(255) NOT NULL,
            pid INTEGER NOT NULL,
            acquired_at VARCHAR(40) NOT NULL)""",
    ],
    # 3: the pending queue: an object row Pendo could not take yet (an unknown id, a failure
    # that may pass) keeps the values it would send, retried by later runs by themselves.
    3: [
        "ALTER TABLE row_state ADD COLUMN pending TEXT",
        "ALTER TABLE row_state ADD COLUMN pending_since VARCHAR(40)",
    ],
    # 4: the SCHEMA each object stream was last synced with, so `ledger retry` can send its
    # pending rows without a tap; runs found by age, for the retention window's prune.
    4: [
        """CREATE TABLE stream_schemas (
            stream VARCHAR(512) PRIMARY KEY,
            message TEXT NOT NULL,
            updated_at VARCHAR(40) NOT NULL)""",
        "CREATE INDEX sync_runs_started ON sync_runs (started_at)",
    ],
}


def _tables_of(version: int) -> set[str]:
    """The tables a ledger of `version` must have."""
    names: set[str] = set()
    for v in range(1, version + 1):
        for statement in _MIGRATIONS[v]:
            match = re.match(r"\s*CREATE TABLE (\w+)", statement)
            if match:
                names.add(match.group(1))
    return names


_IN_CHUNK = 500
_PRUNE_CHUNK = 20_000  # sync_rows lines per delete: a few tens of ms of a writer's time
_PRUNE_RUNS_PER_LOOK = 100
_INCREMENTAL_VACUUM = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class RunRow:
    """One run as `sync_runs` holds it (`report`: the run report's JSON text, or None)."""

    run_id: str
    started_at: str
    finished_at: str | None
    status: str
    report: str | None


@dataclass(frozen=True)
class RowState:
    status: str
    value_hash: str | None
    attempts: int
    last_run: str


@dataclass
class _Work:
    """One record() call's rows (row_state upserts, sightings, log lines) in a group commit."""

    rows: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]
    done: bool = False
    error: BaseException | None = None


@dataclass(frozen=True)
class RowOutcome:
    key: str
    outcome: Outcome
    reason: str | None = None
    value_hash: str | None = None
    # what to send again, as JSON, while Pendo cannot take the row yet (None: nothing pending
    # for this key any more), and since when it waits
    pending: str | None = None
    pending_since: str | None = None
    # False for a row sent again from the pending queue: not a sighting of the key in the
    # source, and no line in sync_rows (the run's rows are the tap's; row_state has the rest)
    from_source: bool = True


@dataclass(frozen=True)
class HistoryPruned:
    """What one prune of the retention window did: runs forgotten, sync_rows lines deleted,
    and whether older history is left (the prune stopped at its bounds)."""

    runs: int
    rows: int
    more: bool


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def default_url(state_dir: str | Path) -> str:
    path = Path(state_dir).resolve() / "ledger.sqlite3"
    return f"sqlite:///{path}"


def url_secret(url: str) -> str | None:
    """The password inside a ledger URL, so that it can be redacted from every output."""
    try:
        return make_url(url).password
    except sa.exc.ArgumentError:
        return None


def unstorable_reason(text: str, *, max_chars: int | None = None) -> str | None:
    """Why `text` (a row key, stream name or reason) cannot be stored in the ledger, or None.

    PostgreSQL text cannot hold NUL, and no driver can encode a lone surrogate: the sinks
    reject such rows before they reach the ledger, on both backends alike, so that a ledger
    moved from SQLite to PostgreSQL keeps working. Keys: pass `max_chars=MAX_KEY_CHARS`
    (PostgreSQL enforces the column's length).
    """
    if "\x00" in text:
        return "it contains a NUL character (\\x00), which the ledger's database cannot store"
    if not text.isascii():
        match = _SURROGATE.search(text)
        if match:
            return (
                f"it contains a lone surrogate (U+{ord(match.group()):04X}), which is not "
                "valid Unicode text and cannot be stored"
            )
    if max_chars is not None and len(text) > max_chars:
        return f"it is {len(text)} characters long, more than the {max_chars} the ledger stores"
    return None


def _storable(text: str | None) -> str | None:
    """A reason as the database can store it: see `_escaped`."""
    return None if text is None else _escaped(text)


def _escaped(text: str) -> str:
    """`text` with NUL and lone surrogates written as escapes (`\\x00`, `\\ud800`): a reason
    (or a lease holder's stream name) is for people to read, and must not crash the commit
    that records a row's outcome."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii() and _SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _one_line(text: str, secret: str | None) -> str:
    line = " ".join(str(text).split())
    return line.replace(secret, "***") if secret else line


class Ledger:
    """Thread-safe: sinks drained in parallel and HTTP workers record through one instance."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        try:
            parsed = make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigError(
                "setting 'ledger_url' is not a SQLAlchemy URL (e.g. "
                "postgresql+psycopg://user@host/db)"
            ) from None
        self.read_only = read_only  # dry run: look up, never write
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._url_for_errors = parsed.render_as_string(hide_password=True)
        self._password: str | None = parsed.password
        # The SQLite file (None: in memory, or not SQLite); absolute, so a chdir later does
        # not move the lock files away from the database.
        self.path: Path | None = _sqlite_file(parsed) if self.is_sqlite else None
        self._where = str(self.path) if self.path is not None else self._url_for_errors
        self._lock = threading.Lock()  # one write transaction at a time
        self._pending: list[_Work] = []  # rows queued for the next group commit
        self._pending_lock = threading.Lock()
        self._lease_lock = threading.RLock()  # the lease state and the lease session
        # stream -> (its lock file, None on PostgreSQL or without files; the run holding it)
        self._leases: dict[str, tuple[FileLease | None, str]] = {}
        self._run_locks: dict[str, FileLease | None] = {}
        self._pg: PgLeases | None = None
        self._raw: Any = None
        self._cursor: Any = None
        self._view_version: int | None = None  # read-only, shown as empty: the version found
        self._version_found = SCHEMA_VERSION  # read-only: an older ledger is read as it is
        self._closed = False
        self._no_flock_warned = False
        try:
            if read_only:
                self._open_read_only(parsed)
            else:
                self._open_read_write(parsed)
        except BaseException:
            if hasattr(self, "engine"):
                self.engine.dispose()  # a ledger that could not open keeps no file open
            raise

    @property
    def where(self) -> str:
        """The ledger for a message: its file, or its URL with the password hidden."""
        return self._where

    # --- opening ----------------------------------------------------------------------------
    def _create_engine(self, parsed: sa.URL, **kwargs: Any) -> sa.Engine:
        kwargs.setdefault("future", True)
        try:
            return sa.create_engine(parsed, **kwargs)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"setting 'ledger_url' needs the database driver '{exc.name}': install "
                "target-pendo[postgres] for PostgreSQL"
            ) from None

    def _open_read_write(self, parsed: sa.URL) -> None:
        if self.path is not None:
            self._make_folder(self.path.parent)
            # 0600 before SQLite opens it: its -wal and -shm files take the file's mode
            with self._errors("opening it", opening=True):
                private.make_file(self.path)
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["connect_args"] = _pg_connect_args(parsed)
        self.engine = self._create_engine(parsed, **kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._migrate()
        # Writes go through one raw DBAPI connection: `record` runs once per accepted Track
        # call, and SQLAlchemy's per-statement machinery cost more than the commit itself.
        with self._errors("opening it", opening=True):
            self._raw = self.engine.raw_connection()
            self._cursor = self._raw.cursor()
            if not self.is_sqlite:
                # Marks survive a crash of target-pendo (the point of them) without waiting
                # for the server's disk on every call; a crash of the database server itself
                # may lose the last few hundred milliseconds of marks.
                cursor = self._raw.cursor()
                cursor.execute("SET synchronous_commit TO off")
                cursor.close()
                self._raw.commit()
        self._writes = write_statements(self.engine.dialect)

    def _make_folder(self, folder: Path) -> None:
        try:
            private.make_dir(folder)
        except OSError as exc:
            if isinstance(exc, FileExistsError):
                why = f"{exc.filename or folder} is a file, not a folder"
            elif isinstance(exc, NotADirectoryError):
                why = "a part of that path is a file, not a folder"
            else:
                why = exc.strerror or str(exc)
            raise LedgerStorageError(
                f"cannot create the ledger's folder {folder}: {why}; set 'state_dir' (or "
                "'ledger_url') to a folder this user can create and write"
            ) from exc

    def _open_read_only(self, parsed: sa.URL) -> None:
        """Look, never touch: no file, folder, migration, write or lease. A ledger that is not
        there (or not readable by this version) is shown as an empty one."""
        if self.is_sqlite and self.path is None:
            self._show_empty(0)  # in memory: nothing to read
            return
        if self.path is not None:
            if not self.path.exists():
                logger.info(
                    "No ledger at %s yet: every row is treated as new (nothing is created in a "
                    "read-only run).",
                    self.path,
                )
                self._show_empty(0)
                return
            uri = self.path.as_uri() + "?mode=ro"

            def connect() -> sqlite3.Connection:
                return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)

            self.engine = self._create_engine(
                sa.make_url("sqlite://"), creator=connect, poolclass=sa.pool.QueuePool
            )
        else:
            self.engine = self._create_engine(parsed, connect_args=_pg_connect_args(parsed))
            sa.event.listen(self.engine, "connect", _pg_read_only)
        with self._errors("opening it", opening=True), self.engine.connect() as conn:
            version = self._version(conn)
            if version > SCHEMA_VERSION:
                raise self._newer_error(version)
            if version == 0:
                logger.info(
                    "The ledger at %s has no tables yet: every row is treated as new.",
                    self._where,
                )
                empty = True
            elif version < READABLE_FROM_VERSION:
                logger.warning(
                    "The ledger at %s has schema version %d, too old for this target-pendo to "
                    "read without migrating it, and a read-only run never migrates: every row "
                    "is treated as new. A run that is not read-only migrates it.",
                    self._where,
                    version,
                )
                empty = True
            else:
                self._check_tables(conn, version)
                self._version_found = version
                empty = False
        if empty:
            self.engine.dispose()
            self._show_empty(version)

    def _show_empty(self, version: int) -> None:
        """Serve lookups from an empty, current-schema ledger in memory: every query works and
        finds nothing, and the real ledger (if any) is left exactly as it was."""
        self._view_version = version
        self.engine = sa.create_engine(
            "sqlite://",
            poolclass=sa.pool.StaticPool,
            connect_args={"check_same_thread": False},
            future=True,
        )
        with self.engine.begin() as conn:
            for target in range(1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.exec_driver_sql(statement)
            conn.execute(_INSERT_VERSION, {"v": str(SCHEMA_VERSION)})

    # --- schema -----------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Forward-only, in one transaction that also serialises concurrent openers (SQLite:
        BEGIN IMMEDIATE; PostgreSQL: a transaction advisory lock), so two runs upgrading one
        ledger at once do not both create its tables. The transaction ends with a no-op write,
        so a read-only file or server fails here, before any data is read or sent."""
        with self._errors("opening it", opening=True), self._lock, self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(CAST(:ns AS INTEGER), 0)"),
                    {"ns": PG_NAMESPACE_MIGRATION},
                )
            version = self._version(conn)
            if version > SCHEMA_VERSION:
                raise self._newer_error(version)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.exec_driver_sql(statement)
                conn.execute(_SET_VERSION if target > 1 else _INSERT_VERSION, {"v": str(target)})
            if 0 < version < SCHEMA_VERSION:
                logger.info(
                    "Migrated the ledger at %s from schema version %d to %d.",
                    self._where,
                    version,
                    SCHEMA_VERSION,
                )
            self._check_tables(conn, SCHEMA_VERSION)
            conn.execute(_TOUCH_VERSION)
            conn.commit()

    def _newer_error(self, version: int) -> ConfigError:
        return ConfigError(
            f"the ledger at {self._url_for_errors} has schema version {version}, "
            f"newer than this target-pendo ({SCHEMA_VERSION}); upgrade target-pendo"
        )

    def _check_tables(self, conn: sa.Connection, version: int) -> None:
        missing = sorted(_tables_of(version) - set(sa.inspect(conn).get_table_names()))
        if missing:
            names = ", ".join(f"'{t}'" for t in missing)
            raise LedgerCorruptError(
                f"the ledger at {self._where} says schema version {version} but has no table "
                f"{names}: it was damaged or changed by hand; restore it from a backup, or "
                f"{self._fresh_advice()}"
            )

    @staticmethod
    def _version(conn: sa.Connection) -> int:
        if not sa.inspect(conn).has_table("ledger_meta"):
            return 0
        value = conn.execute(
            sa.select(ledger_meta.c.value).where(ledger_meta.c.name == _VERSION_NAME)
        ).scalar()
        return int(value or 0)

    def schema_version(self) -> int:
        """The schema version of the ledger on disk (0: none; read-only and shown as empty:
        the version that was found)."""
        if self._view_version is not None:
            return self._view_version
        with self._errors("reading its schema version"), self.engine.connect() as conn:
            return self._version(conn)

    # --- errors -----------------------------------------------------------------------------
    def _fresh_advice(self) -> str:
        then = "(the next run then sends every event again and every object once)"
        if self.path is not None:
            return f"move {self.path} aside to start an empty ledger {then}"
        tables = ", ".join(sorted(_tables_of(SCHEMA_VERSION)))
        return f"drop its tables ({tables}) to start an empty ledger {then}"

    def reading(self, doing: str) -> contextlib.AbstractContextManager[None]:
        """For a reader of the tables outside this class (the sync-log export): a database
        error while `doing` becomes a LedgerError whose one line names the ledger."""
        return self._errors(doing)

    @contextlib.contextmanager
    def _errors(self, doing: str, *, opening: bool = False) -> Iterator[None]:
        """Turn the database's errors into one-line `LedgerError`s naming the ledger."""
        try:
            yield
        except TargetPendoError:
            raise
        except Exception as exc:
            error = self._translate(exc, doing, opening)
            if error is None:
                raise
            raise error from exc

    def _translate(self, exc: Exception, doing: str, opening: bool) -> LedgerError | None:
        """The LedgerError for a database error (None: not one, or a bug to show as is)."""
        orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        # psycopg has `sqlstate`, psycopg2 `pgcode`; the drivers need not be importable here
        sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
        classes = {c.__name__ for c in type(orig).__mro__}
        if not (isinstance(orig, sqlite3.Error) or sqlstate or "OperationalError" in classes):
            return None
        text = _one_line(str(orig), self._password)
        low = text.lower()
        where = self._where
        table = re.search(r'no such table: (\w+)|relation "(\w+)" does not exist', text)
        if table:
            name = table.group(1) or table.group(2)
            return LedgerCorruptError(
                f"the ledger at {where} has no table '{name}' (found while {doing}): it was "
                f"damaged or changed by hand; restore it from a backup, or {self._fresh_advice()}"
            )
        if "not a database" in low or "malformed" in low or sqlstate in ("XX001", "XX002"):
            return LedgerCorruptError(
                f"the ledger at {where} is damaged or is not a SQLite database ({text}; found "
                f"while {doing}): restore it from a backup, or {self._fresh_advice()}"
            )
        if "readonly" in low or "read-only" in low or sqlstate == "25006":
            return LedgerStorageError(
                f"cannot write the ledger at {where} while {doing} ({text}): it is read-only "
                "for this user; make the database (for SQLite: the file and its folder) "
                "writable, or set 'state_dir' (or 'ledger_url') to a writable place"
            )
        if "disk is full" in low or "no space left" in low or sqlstate == "53100":
            return LedgerStorageError(
                f"cannot write the ledger at {where} while {doing}: the disk is full ({text}); "
                "free space on the disk that holds it and run again (what was recorded so far "
                "is kept)"
            )
        if "disk i/o error" in low or sqlstate == "58030":
            return LedgerStorageError(
                f"cannot write the ledger at {where} while {doing}: disk I/O error ({text}); "
                "check the disk that holds it (full, read-only, removed or failing?) and run "
                "again (what was recorded so far is kept)"
            )
        if "unable to open database file" in low:
            return LedgerStorageError(
                f"cannot open the ledger file {where} ({text}): check that its folder exists "
                "and that this user may read and write both, or set 'state_dir' (or "
                "'ledger_url')"
            )
        if "database is locked" in low:
            return LedgerError(
                f"the ledger file {where} stayed locked by another process for 30 s while "
                f"{doing}: find the process holding it (another target-pendo, or a tool with "
                "the file open in a write transaction) and run again"
            )
        if opening:
            return LedgerOpenError(
                f"cannot open the ledger at {where}: {text}; check 'ledger_url' (or 'state_dir')"
            )
        if "OperationalError" in classes or sqlstate[:2] in ("08", "53", "57", "58"):
            return LedgerError(
                f"the ledger at {where} failed while {doing}: {text}; check that the database "
                "is reachable and healthy, then run again (what was recorded so far is kept)"
            )
        return None

    # --- leases -----------------------------------------------------------------------------
    def _lock_dir(self) -> Path:
        assert self.path is not None
        return self.path.with_name(self.path.name + ".locks")

    def _file_locks(self) -> bool:
        """Whether locks for this ledger are files (SQLite on disk, on a POSIX system)."""
        if self.path is None:
            return False
        if not FILE_LOCKS_AVAILABLE:
            if not self._no_flock_warned:
                self._no_flock_warned = True
                logger.warning(
                    "This system has no flock: runs sharing the SQLite ledger at %s cannot be "
                    "kept apart. Use a PostgreSQL 'ledger_url' to run several at once.",
                    self.path,
                )
            return False
        return True

    def _pg_session(self) -> PgLeases:
        """The session that holds this Ledger's advisory locks: kept out of the pool (a pooled
        connection would carry its session locks into other uses) and in autocommit, so it
        idles between calls instead of sitting in an open transaction."""
        if self._pg is None:
            fairy = self.engine.raw_connection()
            conn = fairy.driver_connection
            assert conn is not None  # a fresh checkout always has its DBAPI connection
            fairy.detach()  # the pool forgets it: closing `conn` really closes it
            conn.rollback()
            conn.autocommit = True
            self._pg = PgLeases(conn)
        return self._pg

    def _file_lease(self, path: Path, holder: LeaseHolder) -> tuple[FileLease, bool]:
        lease = FileLease(path)
        try:
            return lease, lease.try_acquire(holder)
        except OSError as exc:
            raise LedgerStorageError(
                f"cannot create or lock {path} ({exc.strerror or exc}): the folder beside the "
                f"ledger file {self.path} must be writable by this user"
            ) from exc

    def _try_lease(self, stream: str, run_id: str) -> tuple[bool, LeaseHolder | None]:
        with self._lease_lock:
            if stream in self._leases:
                return True, None
            holder = LeaseHolder.this_process(run_id)
            if self.is_sqlite:
                if not self._file_locks():
                    self._leases[stream] = (None, run_id)
                    return True, None
                lease, taken = self._file_lease(self._lock_dir() / lock_file_name(stream), holder)
                if taken:
                    self._leases[stream] = (lease, run_id)
                    return True, None
                return False, lease.holder()
            session = self._pg_session()
            if session.try_lock(PG_NAMESPACE_STREAM, pg_key(stream)):
                self._leases[stream] = (None, run_id)
                session.write_holder(_escaped(stream), holder)
                return True, None
            return False, session.read_holder(_escaped(stream))

    @_write()
    def lease_stream(self, stream: str, run_id: str, wait_seconds: float) -> None:
        """Make this run the only writer of `stream` until `close()` (or `release_leases()`).

        Waits up to `wait_seconds` (polling every 0.2 s) while another run holds it, then
        raises `LedgerBusyError` naming that run. Call it before the stream's first lookup or
        send. Taking a lease this Ledger holds already does nothing; a read-only Ledger takes
        none. A holder that dies frees the lease by itself: at once on SQLite (flock), within
        about a minute on PostgreSQL for a machine that vanished (TCP keepalives), at once for
        a process that was killed.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            with self._errors(f"taking the lease on stream '{stream}'"):
                taken, holder = self._try_lease(stream, run_id)
            if taken:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(LEASE_POLL_SECONDS, left))
        raise self._busy_error(stream, holder, wait_seconds)

    def _busy_error(
        self, stream: str, holder: LeaseHolder | None, wait_seconds: float
    ) -> LedgerBusyError:
        who = holder.describe() if holder is not None else "a run whose details could not be read"
        frees = "at once" if self.is_sqlite else "within about a minute"
        return LedgerBusyError(
            f"stream '{stream}' is being synced by another run on the ledger at {self._where}: "
            f"{who}; waited {wait_seconds:g} s. Two runs on one stream would send its events "
            "twice, so this run does not sync it. Let the other run finish (a run that died "
            f"frees its lease by itself, {frees}), or raise 'ledger_wait_seconds' (now "
            f"{wait_seconds:g}) to wait longer.",
            stream=stream,
            holder=holder,
        )

    def release_leases(self) -> None:
        """Give back every stream lease of this Ledger (done by `close()` too)."""
        with self._lease_lock:
            leases, self._leases = self._leases, {}
            for stream, (lease, run_id) in leases.items():
                try:
                    if lease is not None:
                        lease.release(remove=False)
                    elif self._pg is not None and not self.is_sqlite:
                        self._pg.forget_holder(_escaped(stream), run_id)
                        self._pg.unlock(PG_NAMESPACE_STREAM, pg_key(stream))
                except Exception as exc:  # the session is gone, and its locks with it
                    logger.debug("Could not release the lease on stream '%s': %s", stream, exc)

    # --- runs -------------------------------------------------------------------------------
    @_write(read_only_gives=list)
    def start_run(self, run_id: str, full_resync: bool) -> list[str]:
        """Record the run as running, holding its lock for the life of the run; mark every
        other `running` run whose lock is free (killed, or closed without finishing) as
        `abandoned`. Returns the run ids so marked (none when read-only)."""
        with self._errors("starting the run"):
            self._lock_run(run_id)  # before the row: a running row always has a held lock
            with self._lock, self.engine.begin() as conn:
                conn.execute(
                    sa.insert(sync_runs).values(
                        run_id=run_id,
                        started_at=_now(),
                        status=str(RunStatus.RUNNING),
                        full_resync=int(full_resync),
                    )
                )
            return self._mark_abandoned(run_id)

    def _lock_run(self, run_id: str) -> None:
        with self._lease_lock:
            if run_id in self._run_locks:
                return
            holder = LeaseHolder.this_process(run_id)
            if self.is_sqlite:
                if not self._file_locks():
                    self._run_locks[run_id] = None
                    return
                path = self._lock_dir() / f"run-{lock_file_name(run_id)}"
                lease, taken = self._file_lease(path, holder)
                other = None if taken else lease.holder()
            else:
                lease, other = None, None
                taken = self._pg_session().try_lock(PG_NAMESPACE_RUN, pg_key(run_id))
            if not taken:
                who = f" ({other.describe()})" if other is not None else ""
                raise LedgerBusyError(
                    f"run id '{run_id}' is already in use by a live run{who} on the ledger at "
                    f"{self._where}: give each run its own id"
                )
            self._run_locks[run_id] = lease

    def _run_lock_free(self, run_id: str) -> bool:
        if self.is_sqlite:
            if not self._file_locks():
                return False  # in memory, or no flock: cannot tell, so never mark
            return FileLease.is_free(self._lock_dir() / f"run-{lock_file_name(run_id)}")
        return self._pg_session().is_free(PG_NAMESPACE_RUN, pg_key(run_id))

    def _mark_abandoned(self, run_id: str) -> list[str]:
        with self.engine.connect() as conn:
            query = (
                sa.select(sync_runs.c.run_id)
                .where(sync_runs.c.status == str(RunStatus.RUNNING))
                .order_by(sync_runs.c.run_id)
            )
            running = [r[0] for r in conn.execute(query) if r[0] != run_id]
        with self._lease_lock:
            gone = [r for r in running if self._run_lock_free(r)]
        if not gone:
            return []
        with self._lock, self.engine.begin() as conn:
            for start in range(0, len(gone), _IN_CHUNK):
                conn.execute(
                    sa.update(sync_runs)
                    .where(
                        sync_runs.c.run_id.in_(gone[start : start + _IN_CHUNK]),
                        sync_runs.c.status == str(RunStatus.RUNNING),
                    )
                    .values(status=str(RunStatus.ABANDONED), finished_at=_now())
                )
        logger.warning(
            "Marked %d earlier run(s) of the ledger at %s as abandoned: they stopped without "
            "finishing (killed, or their machine vanished): %s",
            len(gone),
            self._where,
            ", ".join(gone[:10]) + (" ..." if len(gone) > 10 else ""),
        )
        return gone

    def _unlock_run(self, run_id: str) -> None:
        with self._lease_lock:
            if run_id not in self._run_locks:
                return
            lease = self._run_locks.pop(run_id)
            try:
                if lease is not None:
                    lease.release(remove=True)  # a finished run's lock file goes
                elif self._pg is not None and not self.is_sqlite:
                    self._pg.unlock(PG_NAMESPACE_RUN, pg_key(run_id))
            except Exception as exc:  # the session is gone, and its locks with it
                logger.debug("Could not release the lock of run '%s': %s", run_id, exc)

    @_write()
    def finish_run(self, run_id: str, status: str, report: dict[str, Any]) -> None:
        with self._errors("finishing the run"), self._lock, self.engine.begin() as conn:
            conn.execute(
                sa.update(sync_runs)
                .where(sync_runs.c.run_id == run_id)
                .values(finished_at=_now(), status=str(status), report=json.dumps(report))
            )
        self._unlock_run(run_id)

    # --- rows -------------------------------------------------------------------------------
    def states(self, stream: str, keys: Iterable[str]) -> dict[str, RowState]:
        """Current state of these keys (absent: never seen)."""
        found: dict[str, RowState] = {}
        unique = list(dict.fromkeys(keys))
        t = row_state.c
        columns = sa.select(t.row_key, t.status, t.value_hash, t.attempts, t.last_run)
        with self._errors(f"looking up rows of stream '{stream}'"), self.engine.connect() as conn:
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                query = columns.where(t.stream == stream, t.row_key.in_(chunk))
                for row in conn.execute(query):
                    found[row[0]] = RowState(row[1], row[2], int(row[3]), row[4])
        return found

    @_write()
    def record(self, stream: str, run_id: str, outcomes: Sequence[RowOutcome]) -> None:
        """Upsert row_state and append sync_rows for `outcomes`, in one committed transaction."""
        if not outcomes:
            return
        now = _now()
        state_rows = []
        seen_rows = []
        log_rows = []
        for o in outcomes:
            facts = FACTS[o.outcome]
            seen = run_id if facts.seen and o.from_source else None
            reason = _storable(o.reason)
            if facts.status is not None:
                state_rows.append(
                    {
                        "s": stream,
                        "k": o.key,
                        "st": str(facts.status),
                        "h": o.value_hash,
                        "reason": reason,
                        "a": int(facts.attempt),
                        "reset": int(facts.status is Status.SENT),
                        "r": run_id,
                        "seen": seen,
                        "t": now,
                        "pv": o.pending,
                        "ps": (o.pending_since or now) if o.pending is not None else None,
                    }
                )
            elif seen is not None:
                seen_rows.append({"s": stream, "k": o.key, "r": run_id})
            if facts.logged and o.from_source:
                log_rows.append(
                    {
                        "r": run_id,
                        "s": stream,
                        "k": o.key,
                        "o": str(o.outcome),
                        "reason": reason,
                        "t": now,
                    }
                )
        work = _Work((state_rows, seen_rows, log_rows))
        with self._pending_lock:
            self._pending.append(work)
        with self._errors(f"recording rows of stream '{stream}'"):
            with self._lock:
                if not work.done:
                    self._commit_pending()
            if work.error is not None:
                raise work.error  # another thread's commit carried these rows, and failed

    def _commit_pending(self) -> None:
        """Group commit, called with the write lock held: every record() waiting for the lock
        has queued its rows; the holder writes all of them in one transaction. Each caller
        still returns only once its own rows are committed, and one commit serves several
        HTTP workers when they finish calls at the same moment."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
        merged: tuple[list[dict[str, Any]], ...] = ([], [], [])
        for item in batch:
            for target, rows in zip(merged, item.rows, strict=True):
                target.extend(rows)
        cursor = self._cursor
        try:
            for sql, params in zip(self._writes, merged, strict=True):
                if len(params) == 1:  # a lone per-call mark: skip executemany's setup
                    cursor.execute(sql, params[0])
                elif params:
                    cursor.executemany(sql, params)
            self._raw.commit()
        except BaseException as exc:
            with contextlib.suppress(Exception):  # a dead connection: the original error
                self._raw.rollback()
            for item in batch:
                item.error = exc
            raise
        finally:
            for item in batch:
                item.done = True

    def pending_rows(
        self, stream: str, run_id: str, *, after: str | None = None, limit: int = 5000
    ) -> list[tuple[str, str, str]]:
        """(key, pending values, pending since) of the stream's rows waiting to be sent again,
        but those this run already handled (a newer row came: it replaced the pending one);
        a page of at most `limit` in key order, from after the key `after`."""
        if self._version_found < PENDING_QUEUE_VERSION:
            return []  # a read-only look at a ledger from before the queue
        t = row_state.c
        query = (
            sa.select(t.row_key, t.pending, t.pending_since)
            .where(t.stream == stream, t.pending.is_not(None), t.last_run != run_id)
            .order_by(t.row_key)
            .limit(limit)
        )
        if after is not None:
            query = query.where(t.row_key > after)
        doing = f"looking up pending rows of stream '{stream}'"
        with self._errors(doing), self.engine.connect() as conn:
            return [(r[0], r[1], r[2] or "") for r in conn.execute(query)]

    @_write()
    def drop_pending(self, stream: str, keys: Sequence[str]) -> None:
        """Take these keys out of the pending queue (expired, or mapped differently now)."""
        t = row_state.c
        doing = f"dropping pending rows of stream '{stream}'"
        with self._errors(doing), self._lock, self.engine.begin() as conn:
            for start in range(0, len(keys), _IN_CHUNK):
                chunk = keys[start : start + _IN_CHUNK]
                conn.execute(
                    sa.update(row_state)
                    .where(t.stream == stream, t.row_key.in_(chunk))
                    .values(pending=None, pending_since=None)
                )

    @_write()
    def remember_schema(self, stream: str, message: dict[str, Any]) -> None:
        """Keep the SCHEMA (schema and key properties) an object stream is synced with, so
        `ledger retry` can map and send its pending rows later without a tap."""
        insert = (sqlite.insert if self.is_sqlite else postgresql.insert)(stream_schemas)
        values = {"message": json.dumps(message, sort_keys=True), "updated_at": _now()}
        upsert = insert.values(stream=stream, **values).on_conflict_do_update(
            index_elements=[stream_schemas.c.stream], set_=values
        )
        doing = f"keeping the SCHEMA of stream '{stream}'"
        with self._errors(doing), self._lock, self.engine.begin() as conn:
            conn.execute(upsert)

    def stored_schema(self, stream: str) -> dict[str, Any] | None:
        """The SCHEMA a stream was last synced with (None: never, or by an older version)."""
        if self._version_found < STREAM_SCHEMAS_VERSION:
            return None
        query = sa.select(stream_schemas.c.message).where(stream_schemas.c.stream == stream)
        doing = f"reading the SCHEMA of stream '{stream}'"
        with self._errors(doing), self.engine.connect() as conn:
            text = conn.execute(query).scalar()
        return None if text is None else cast(dict[str, Any], json.loads(text))

    def keys_with_status(self, stream: str, statuses: Sequence[Status]) -> list[str]:
        t = row_state.c
        query = (
            sa.select(t.row_key)
            .where(t.stream == stream, t.status.in_([str(s) for s in statuses]))
            .order_by(t.row_key)
        )
        with self._errors(f"looking up rows of stream '{stream}'"), self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def unseen_since(self, stream: str, run_id: str, statuses: Sequence[Status]) -> list[str]:
        """Keys in `statuses` that this run has not seen in the source."""
        t = row_state.c
        query = (
            sa.select(t.row_key)
            .where(
                t.stream == stream,
                t.status.in_([str(s) for s in statuses]),
                sa.or_(t.last_seen_run.is_(None), t.last_seen_run != run_id),
            )
            .order_by(t.row_key)
        )
        with self._errors(f"looking up rows of stream '{stream}'"), self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def runs(self, *, prefix: str | None = None, limit: int = 50) -> list[RunRow]:
        """Runs whose id is `prefix` or starts with it (by id), else the latest `limit` runs,
        newest first: what `target-pendo report` picks from."""
        t = sync_runs.c
        columns = sa.select(t.run_id, t.started_at, t.finished_at, t.status, t.report)
        if prefix is not None:  # autoescape: a '_' or '%' in the prefix is itself
            query = columns.where(t.run_id.startswith(prefix, autoescape=True)).order_by(t.run_id)
        else:
            query = columns.order_by(t.started_at.desc(), t.run_id.desc()).limit(limit)
        with self._errors("reading its runs"), self.engine.connect() as conn:
            found = [RunRow(*row) for row in conn.execute(query)]
        if prefix is None:
            return found
        # LIKE ignores ASCII case on SQLite: run ids are matched exactly, case and all
        exact = [r for r in found if r.run_id == prefix]
        return exact or [r for r in found if r.run_id.startswith(prefix)]

    def run_outcomes(self, run_id: str) -> dict[str, Counter[str]]:
        """Per stream, how many of a run's rows had each outcome (from `sync_rows`)."""
        t = sync_rows.c
        query = (
            sa.select(t.stream, t.outcome, sa.func.count())
            .where(t.run_id == run_id)
            .group_by(t.stream, t.outcome)
        )
        counts: dict[str, Counter[str]] = {}
        with self._errors(f"reading run {run_id}"), self.engine.connect() as conn:
            for stream, outcome, n in conn.execute(query):
                counts.setdefault(stream, Counter())[outcome] = int(n)
        return counts

    def run_reject_reasons(self, run_id: str) -> list[tuple[str, str | None, int]]:
        """(stream, reason, rows) of a run's rejected rows, one line per distinct reason."""
        t = sync_rows.c
        query = (
            sa.select(t.stream, t.reason, sa.func.count())
            .where(t.run_id == run_id, t.outcome == str(Outcome.REJECTED))
            .group_by(t.stream, t.reason)
        )
        with self._errors(f"reading run {run_id}"), self.engine.connect() as conn:
            return [(r[0], r[1], int(r[2])) for r in conn.execute(query)]

    def pending_counts(self) -> list[tuple[str, str, int]]:
        """(stream, why it waits, number of keys) of the pending queue, for `ledger status`."""
        if self._version_found < PENDING_QUEUE_VERSION:
            return []
        t = row_state.c
        query = (
            sa.select(t.stream, t.reason, sa.func.count())
            .where(t.pending.is_not(None))
            .group_by(t.stream, t.reason)
            .order_by(t.stream, t.reason)
        )
        with self._errors("counting pending rows"), self.engine.connect() as conn:
            return [(r[0], r[1] or "", int(r[2])) for r in conn.execute(query)]

    def status_counts(self) -> list[tuple[str, str, int]]:
        """(stream, status, number of keys), ordered: what `target-pendo ledger status` shows."""
        t = row_state.c
        query = (
            sa.select(t.stream, t.status, sa.func.count())
            .group_by(t.stream, t.status)
            .order_by(t.stream, t.status)
        )
        with self._errors("counting rows"), self.engine.connect() as conn:
            return [(r[0], r[1], int(r[2])) for r in conn.execute(query)]

    @_write(
        refuse="reset stream '{stream}'; run 'target-pendo ledger reset' with a config "
        "without 'dry_run'"
    )
    def reset_stream(self, stream: str) -> int:
        """Forget a stream's row state (its log stays); returns how many keys were forgotten."""
        with (
            self._errors(f"resetting stream '{stream}'"),
            self._lock,
            self.engine.begin() as conn,
        ):
            result = conn.execute(sa.delete(row_state).where(row_state.c.stream == stream))
            return int(result.rowcount or 0)

    # --- retention ----------------------------------------------------------------------------
    @_write(read_only_gives=lambda: HistoryPruned(0, 0, False))
    def prune_history(
        self, before: str, *, max_rows: int | None = None, max_seconds: float | None = None
    ) -> HistoryPruned:
        """Forget the runs that started before `before` (an ISO time): their `sync_rows` lines,
        then their `sync_runs` row (report included). `row_state` (what Pendo holds, what is
        pending) is never pruned by age, nor a run still marked running. Oldest runs first,
        in short transactions, so runs writing at the same time wait milliseconds; bounded by
        `max_rows` and `max_seconds` (None: until done) so that the first run on a large old
        ledger does not stall: `more` says older history is left for the next prune."""
        started = time.monotonic()
        runs = rows = 0
        t = sync_runs.c
        old_runs = (
            sa.select(t.run_id)
            .where(t.started_at < before, t.status != str(RunStatus.RUNNING))
            .order_by(t.started_at, t.run_id)
            .limit(_PRUNE_RUNS_PER_LOOK)
        )

        def spent() -> bool:
            return (max_rows is not None and rows >= max_rows) or (
                max_seconds is not None and time.monotonic() - started >= max_seconds
            )

        with self._errors("pruning runs older than the retention window"):
            while True:
                with self.engine.connect() as conn:
                    found = [r[0] for r in conn.execute(old_runs)]
                if not found:
                    return HistoryPruned(runs, rows, False)
                for run_id in found:
                    while True:
                        if spent():
                            return HistoryPruned(runs, rows, True)
                        with self._lock, self.engine.begin() as conn:
                            deleted = conn.execute(
                                self._delete_run_rows, {"r": run_id, "n": _PRUNE_CHUNK}
                            )
                        rows += int(deleted.rowcount or 0)
                        if (deleted.rowcount or 0) < _PRUNE_CHUNK:
                            break
                    with self._lock, self.engine.begin() as conn:
                        conn.execute(sa.delete(sync_runs).where(t.run_id == run_id))
                    runs += 1

    @functools.cached_property
    def _delete_run_rows(self) -> sa.TextClause:
        """At most _PRUNE_CHUNK of a run's sync_rows lines (`:r`), by the row's physical id:
        neither SQLite (as built) nor PostgreSQL takes DELETE ... LIMIT."""
        if self.is_sqlite:
            sql = (
                "DELETE FROM sync_rows WHERE rowid IN "
                "(SELECT rowid FROM sync_rows WHERE run_id = :r LIMIT :n)"
            )
        else:
            sql = (
                "DELETE FROM sync_rows WHERE ctid = ANY(ARRAY("
                "SELECT ctid FROM sync_rows WHERE run_id = :r LIMIT :n))"
            )
        return sa.text(sql)

    @_write(read_only_gives=lambda: False)
    def give_space_back(self, *, convert: bool = False) -> bool:
        """SQLite: return the pages pruning freed to the disk (PostgreSQL's autovacuum makes
        them reusable by itself). A ledger made before version 4 keeps freed pages for reuse
        (it never grows because of them) until `convert` runs one full VACUUM, which switches
        it to incremental vacuum for good; that rewrites the file, so only `ledger prune`,
        asked for by a person, does it. Returns whether space could be given back."""
        if not self.is_sqlite or self.path is None:
            return False
        with self._errors("giving freed space back to the disk"), self._lock:
            with self.engine.connect() as conn:
                mode = int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() or 0)
            if mode != _INCREMENTAL_VACUUM and not convert:
                return False
            steps = (
                "PRAGMA incremental_vacuum;"
                if mode == _INCREMENTAL_VACUUM
                else f"PRAGMA auto_vacuum={_INCREMENTAL_VACUUM}; VACUUM;"
            )
            raw = self.engine.raw_connection()
            try:
                # executescript runs each statement to its end: through execute(),
                # incremental_vacuum frees one page per call. The file shrinks when the
                # write-ahead log is written back into it.
                raw.driver_connection.executescript(  # type: ignore[union-attr]
                    steps + " PRAGMA wal_checkpoint(TRUNCATE);"
                )
            finally:
                raw.close()
            return True

    def close(self) -> None:
        """Release every lease and lock of this Ledger and its connections (idempotent). A run
        closed without `finish_run` stays `running` until the next run marks it abandoned."""
        if self._closed:
            return
        self._closed = True
        try:
            self.release_leases()
            for run_id in list(self._run_locks):
                self._unlock_run(run_id)
        finally:
            with contextlib.suppress(Exception):
                if self._pg is not None:
                    self._pg.close()
            if self._cursor is not None:
                self._cursor.close()
            if self._raw is not None:
                self._raw.close()
            self.engine.dispose()


_VERSION_NAME = "schema_version"
_INSERT_VERSION = sa.insert(ledger_meta).values(name=_VERSION_NAME, value=sa.bindparam("v"))
_SET_VERSION = (
    sa.update(ledger_meta)
    .where(ledger_meta.c.name == _VERSION_NAME)
    .values(value=sa.bindparam("v"))
)
# A write that changes nothing: opening fails here, not at the first accepted call, when the
# ledger cannot be written.
_TOUCH_VERSION = (
    sa.update(ledger_meta)
    .where(ledger_meta.c.name == _VERSION_NAME)
    .values(value=ledger_meta.c.value)
)


def _sqlite_file(parsed: sa.URL) -> Path | None:
    """The database file of a SQLite URL, also in URI form (`sqlite:///file:x.db?uri=true`);
    None in memory."""
    database = parsed.database or ""
    if parsed.query.get("uri") in ("true", "1") and database.startswith("file:"):
        database = urllib.parse.unquote(urllib.parse.urlparse(database).path)
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    return Path(database).resolve()


def _pg_connect_args(parsed: sa.URL) -> dict[str, Any]:
    """libpq TCP keepalives (unless the URL sets its own): a server that vanished is noticed
    in about a minute instead of hanging the run. Only libpq drivers know these."""
    if parsed.get_driver_name() not in ("psycopg", "psycopg2"):
        return {}
    return {k: v for k, v in PG_KEEPALIVE_CONNECT_ARGS.items() if k not in parsed.query}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL + synchronous=NORMAL: a commit per accepted call costs microseconds, not a fsync.

    WAL is a property of the file, set once. Switching to it needs the file to itself, and
    SQLite answers "database is locked" at once, without waiting its busy timeout, when
    another connection is opening the same new ledger at that moment: so the mode is only
    set when it is not WAL yet, and retried for a few seconds."""
    cursor = dbapi_conn.cursor()
    try:
        # Before WAL, which fixes the file's layout: a new ledger gives pages freed by the
        # retention window's prune back to the disk (`incremental_vacuum`); on an older file
        # this only names the mode its next VACUUM switches to (`ledger prune` runs one).
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        deadline = time.monotonic() + _WAL_SWITCH_SECONDS
        while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                # Answers the mode now in force: "wal", or "memory" for an in-memory ledger,
                # which has no WAL to switch to. Either way the switch is settled.
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


_WAL_SWITCH_SECONDS = 10.0


def _pg_read_only(dbapi_conn: Any, _record: Any) -> None:
    """A read-only view's sessions refuse writes on the server too, whatever a caller runs."""
    cursor = dbapi_conn.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_conn.commit()
