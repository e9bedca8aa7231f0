"""Opening a ledger: the engine for its backend, and its schema made current (read-write) or
read as it is (read-only). `Database` is the opened ledger every other part works on."""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.engine import make_url

import target_pendo.ledger.migrations as migrations
from target_pendo import private
from target_pendo.errors import ConfigError
from target_pendo.ledger.errors import Errors, LedgerStorageError
from target_pendo.ledger.locks import PG_KEEPALIVE_CONNECT_ARGS
from target_pendo.ledger.migrations import SCHEMA_VERSION

logger = logging.getLogger("target_pendo.ledger")

_WAL_SWITCH_SECONDS = 10.0
_IN_CHUNK = 500  # values per SQL `IN (...)`: well under every backend's bound-parameter limit

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def in_chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    return (items[start : start + _IN_CHUNK] for start in range(0, len(items), _IN_CHUNK))


@dataclass(eq=False)
class Database:
    """An opened ledger; every part that writes takes `write_lock`: one write at a time."""

    engine: sa.Engine  # shown as empty: an empty ledger in memory
    errors: Errors
    is_sqlite: bool  # the ledger's own backend, by its URL
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    version_found: int = SCHEMA_VERSION  # read-only: lookups leave out what an older one lacks
    view_version: int | None = None  # shown as empty: the version found (0: no ledger)

    @contextlib.contextmanager
    def transaction(self, doing: str) -> Iterator[sa.Connection]:
        with self.errors.guard(doing), self.write_lock, self.engine.begin() as conn:
            yield conn

    def read(self, doing: str, query: sa.Select[*Ts]) -> list[sa.Row[*Ts]]:
        with self.errors.guard(doing), self.engine.connect() as conn:
            return list(conn.execute(query))

    def schema_version(self) -> int:
        """The schema version of the ledger on disk (0: none)."""
        if self.view_version is not None:
            return self.view_version
        with self.errors.guard("reading its schema version"), self.engine.connect() as conn:
            return migrations.read_version(conn)


def default_url(state_dir: str | Path) -> str:
    return f"sqlite:///{Path(state_dir).resolve() / 'ledger.sqlite3'}"


def url_secret(url: str) -> str | None:
    """The password inside a ledger URL, so that it can be redacted from every output."""
    try:
        return make_url(url).password
    except sa.exc.ArgumentError:
        return None


def open_database(url: str, *, read_only: bool) -> Database:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(
            "setting 'ledger_url' is not a SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db)"
        ) from None
    is_sqlite = parsed.get_backend_name() == "sqlite"
    hidden = parsed.render_as_string(hide_password=True)
    # absolute: a chdir later does not move the lock files away from the database
    path = _sqlite_file(parsed) if is_sqlite else None
    errors = Errors(hidden, str(path) if path is not None else hidden, path, parsed.password)
    return (_open_read_only if read_only else _open_read_write)(parsed, errors, is_sqlite)


def _create_engine(parsed: sa.URL, **kwargs: Any) -> sa.Engine:
    if parsed.get_driver_name() in ("psycopg", "psycopg2"):  # libpq: it knows keepalives
        # a vanished server is noticed in about a minute, not hanging the run (unless the URL says)
        keepalives = PG_KEEPALIVE_CONNECT_ARGS.items()
        kwargs["connect_args"] = {k: v for k, v in keepalives if k not in parsed.query}
    try:
        return sa.create_engine(parsed, **kwargs)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"setting 'ledger_url' needs the database driver '{exc.name}': install "
            "target-pendo[postgres] for PostgreSQL"
        ) from None


@contextlib.contextmanager
def disposed_on_failure(engine: sa.Engine) -> Iterator[None]:
    """A ledger that could not open keeps no file or connection open."""
    try:
        yield
    except BaseException:
        engine.dispose()
        raise


def _open_read_write(parsed: sa.URL, errors: Errors, is_sqlite: bool) -> Database:
    if errors.path is not None:
        _make_folder(errors.path.parent)
        # 0600 before SQLite opens it: its -wal and -shm files take the file's mode
        with errors.guard("opening it", opening=True):
            private.make_file(errors.path)
    if is_sqlite:
        engine = _create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = _create_engine(parsed)
    db = Database(engine, errors, is_sqlite)
    with (
        disposed_on_failure(engine),
        errors.guard("opening it", opening=True),
        db.write_lock,
        engine.connect() as conn,
    ):
        migrations.migrate(conn, errors)
    return db


def _make_folder(folder: Path) -> None:
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


def _open_read_only(parsed: sa.URL, errors: Errors, is_sqlite: bool) -> Database:
    """Look, never touch; a ledger not there (or not readable by this version) shows empty."""
    path = errors.path
    if is_sqlite and path is None:
        return _empty_view(errors, is_sqlite, 0)  # in memory: nothing to read
    if path is not None:
        if not path.exists():
            logger.info(
                "No ledger at %s yet: every row is treated as new (nothing is created in a "
                "read-only run).",
                path,
            )
            return _empty_view(errors, is_sqlite, 0)
        uri = path.as_uri() + "?mode=ro"
        connect = functools.partial(
            sqlite3.connect, uri, uri=True, check_same_thread=False, timeout=30
        )
        engine = _create_engine(
            sa.make_url("sqlite://"), creator=connect, poolclass=sa.pool.QueuePool
        )
    else:
        engine = _create_engine(parsed)
        sa.event.listen(engine, "connect", _pg_read_only)
    with (
        disposed_on_failure(engine),
        errors.guard("opening it", opening=True),
        engine.connect() as conn,
    ):
        version = migrations.read_version(conn)
        if version > SCHEMA_VERSION:
            raise migrations.newer_error(version, errors)
        if version == 0:
            logger.info(
                "The ledger at %s has no tables yet: every row is treated as new.", errors.where
            )
        elif version < migrations.READABLE_FROM_VERSION:
            logger.warning(
                "The ledger at %s has schema version %d, too old for this target-pendo to "
                "read without migrating it, and a read-only run never migrates: every row "
                "is treated as new. A run that is not read-only migrates it.",
                errors.where,
                version,
            )
        else:
            migrations.check_tables(conn, version, errors)
            return Database(engine, errors, is_sqlite, version_found=version)
    engine.dispose()
    return _empty_view(errors, is_sqlite, version)


def _empty_view(errors: Errors, is_sqlite: bool, version: int) -> Database:
    """An empty current-schema ledger in memory: every query works and finds nothing."""
    engine = sa.create_engine(
        "sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
    )
    with engine.begin() as conn:
        migrations.run_ddl(conn)
    return Database(engine, errors, is_sqlite, view_version=version)


def _sqlite_file(parsed: sa.URL) -> Path | None:
    """The file of a SQLite URL, also in URI form (`sqlite:///file:x.db?uri=true`)."""
    database = parsed.database or ""
    if parsed.query.get("uri") in ("true", "1") and database.startswith("file:"):
        database = urllib.parse.unquote(urllib.parse.urlparse(database).path)
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    return Path(database).resolve()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL + synchronous=NORMAL: a commit per accepted call costs microseconds, not a fsync.
    Switching a file to WAL needs it to itself: SQLite answers "database is locked" at once
    while another connection opens the same new ledger, so the switch is retried a while."""
    with contextlib.closing(dbapi_conn.cursor()) as cursor:
        # Before WAL fixes the layout: a new file gives pruned pages back to the disk; an older
        # one switches at its next VACUUM (`ledger prune`).
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        deadline = time.monotonic() + _WAL_SWITCH_SECONDS
        while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                # settled either way: "wal", or "memory" for an in-memory ledger (no WAL)
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA synchronous=NORMAL")


def _pg_read_only(dbapi_conn: Any, _record: Any) -> None:
    """A read-only view's sessions refuse writes on the server too."""
    cursor = dbapi_conn.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_conn.commit()
