"""Every write of rows: the group commit that records what became of each row, on the raw
DBAPI connection, and the few other changes (pending rows dropped, a stream reset, a SCHEMA
kept), one transaction each through the engine.

Each `record` call is one transaction, committed before it returns: an accepted call is on
disk before the next STATE can pass it. A call is marked `in_flight` before it is sent, so
after a crash exactly the calls in flight at that moment are left `in_flight`: the next run
counts them as "in doubt" and sends them again (Pendo has no idempotency key). A call that got
a definite "no" (or never went out) is marked `not_sent`, so it is not counted in doubt.

The three statements every accepted call runs are compiled once per ledger with named
parameters, so the write path hands the DBAPI cursor plain dicts: per accepted Track call,
SQLAlchemy's per-statement machinery would cost more than the commit itself.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from target_pendo.ledger.engine import Database, in_chunks
from target_pendo.ledger.storable import escaped
from target_pendo.ledger.tables import now, row_state, stream_schemas, sync_rows
from target_pendo.run.outcomes import FACTS, Outcome, Status


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


def _upsert_into(table: sa.Table, dialect: Dialect) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can take ON CONFLICT, in `dialect`'s flavour."""
    return (sqlite.insert if dialect.name == "sqlite" else postgresql.insert)(table)


def write_statements(dialect: Dialect) -> tuple[str, str, str]:
    """(upsert of row_state, sighting, sync_rows line) as SQL for `dialect`'s DBAPI driver,
    with named parameters (`:stream` for sqlite3, `%(stream)s` for psycopg) named after the
    columns, so each row is a dict."""
    if dialect.positional:  # sqlite3 takes named parameters too: compile for those
        dialect = type(dialect)(paramstyle="named")  # type: ignore[call-arg]
    insert = _upsert_into(row_state, dialect)
    new, old = insert.excluded, row_state.c
    sent: sa.ColumnElement[str] = sa.literal_column(f"'{Status.SENT.value}'")
    # A key's new status; the value hash only when sent; the attempts reset by a send
    # (`reset`) or counted up; the last sighting kept when this one is not a sighting (NULL);
    # what is pending replaced (NULL: nothing any more).
    upsert = insert.on_conflict_do_update(
        index_elements=[old.stream, old.row_key],
        set_={
            "status": new.status,
            "value_hash": sa.case((new.status == sent, new.value_hash), else_=old.value_hash),
            "reason": new.reason,
            "attempts": sa.case(
                (sa.bindparam("reset") == sa.literal_column("1"), sa.literal_column("0")),
                else_=old.attempts + new.attempts,
            ),
            "last_run": new.last_run,
            "last_seen_run": sa.func.coalesce(new.last_seen_run, old.last_seen_run),
            "updated_at": new.updated_at,
            "pending": new.pending,
            "pending_since": new.pending_since,
        },
    )
    # a sighting of a key in the source that leaves its status as it is
    seen = (
        sa.update(row_state)
        .where(old.stream == sa.bindparam("stream"), old.row_key == sa.bindparam("row_key"))
        .values(last_seen_run=sa.bindparam("last_seen_run"))
    )
    statements = (upsert, seen, sa.insert(sync_rows))
    upsert_sql, seen_sql, logged_sql = (str(s.compile(dialect=dialect)) for s in statements)
    return upsert_sql, seen_sql, logged_sql


# the parameters of the three write statements: row_state upserts, sightings, sync_rows lines
_Rows = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


@dataclass
class _Work:
    """One record() call's rows in a group commit."""

    rows: _Rows
    done: bool = False
    error: BaseException | None = None


class RowWriter:
    """Records outcomes through one raw DBAPI connection of its own. Thread-safe: sinks drained
    in parallel and HTTP workers record through one instance."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[_Work] = []  # rows queued for the next group commit
        self._pending_lock = threading.Lock()
        with db.errors.guard("opening it", opening=True):
            self.raw: Any = db.engine.raw_connection()
            self._cursor: Any = self.raw.cursor()
            if not db.is_sqlite:
                # Marks survive a crash of target-pendo (the point of them) without waiting
                # for the server's disk on every call; a crash of the database server itself
                # may lose the last few hundred milliseconds of marks.
                self._cursor.execute("SET synchronous_commit TO off")
                self.raw.commit()
        self._writes = write_statements(db.engine.dialect)

    def record(self, stream: str, run_id: str, outcomes: Sequence[RowOutcome]) -> None:
        """Upsert row_state and append sync_rows for `outcomes`, in one committed transaction."""
        if not outcomes:
            return
        work = _Work(_rows(stream, run_id, outcomes))
        with self._pending_lock:
            self._pending.append(work)
        with self._db.errors.guard(f"recording rows of stream '{stream}'"):
            with self._db.write_lock:
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
        merged: _Rows = ([], [], [])
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
            self.raw.commit()
        except BaseException as exc:
            with contextlib.suppress(Exception):  # a dead connection: the original error
                self.raw.rollback()
            for item in batch:
                item.error = exc
            raise
        finally:
            for item in batch:
                item.done = True

    def close(self) -> None:
        self._cursor.close()
        self.raw.close()


def _rows(stream: str, run_id: str, outcomes: Sequence[RowOutcome]) -> _Rows:
    now_ = now()
    rows: _Rows = ([], [], [])
    state_rows, seen_rows, log_rows = rows
    for o in outcomes:
        facts = FACTS[o.outcome]
        seen = run_id if facts.seen and o.from_source else None
        reason = None if o.reason is None else escaped(o.reason)
        if facts.status is not None:
            state_rows.append(
                {
                    "stream": stream,
                    "row_key": o.key,
                    "status": str(facts.status),
                    "value_hash": o.value_hash,
                    "reason": reason,
                    "attempts": int(facts.attempt),
                    "reset": int(facts.status is Status.SENT),
                    "first_run": run_id,
                    "last_run": run_id,
                    "last_seen_run": seen,
                    "updated_at": now_,
                    "pending": o.pending,
                    "pending_since": (o.pending_since or now_) if o.pending is not None else None,
                }
            )
        elif seen is not None:
            seen_rows.append({"stream": stream, "row_key": o.key, "last_seen_run": run_id})
        if facts.logged and o.from_source:
            log_rows.append(
                {
                    "run_id": run_id,
                    "stream": stream,
                    "row_key": o.key,
                    "outcome": str(o.outcome),
                    "reason": reason,
                    "at": now_,
                }
            )
    return rows


# --- other writes: one transaction each, through the engine -----------------------------------
def drop_pending(db: Database, stream: str, keys: Sequence[str]) -> None:
    """Take these keys out of the pending queue (expired, or mapped differently now)."""
    t = row_state.c
    with db.transaction(f"dropping pending rows of stream '{stream}'") as conn:
        for chunk in in_chunks(keys):
            conn.execute(
                sa.update(row_state)
                .where(t.stream == stream, t.row_key.in_(chunk))
                .values(pending=None, pending_since=None)
            )


def remember_schema(db: Database, stream: str, message: dict[str, Any]) -> None:
    """Keep the SCHEMA (schema and key properties) an object stream is synced with, so
    `ledger retry` can map and send its pending rows later without a tap."""
    insert = _upsert_into(stream_schemas, db.engine.dialect)
    values = {"message": json.dumps(message, sort_keys=True), "updated_at": now()}
    upsert = insert.values(stream=stream, **values).on_conflict_do_update(
        index_elements=[stream_schemas.c.stream], set_=values
    )
    with db.transaction(f"keeping the SCHEMA of stream '{stream}'") as conn:
        conn.execute(upsert)


def reset_stream(db: Database, stream: str) -> int:
    """Forget a stream's row state (its log stays); returns how many keys were forgotten."""
    with db.transaction(f"resetting stream '{stream}'") as conn:
        result = conn.execute(sa.delete(row_state).where(row_state.c.stream == stream))
        return int(result.rowcount or 0)
