"""Every write: the group commit of what became of each row, on a raw DBAPI connection with its
statements compiled once (SQLAlchemy's per-statement work would cost more than the commit),
and the few other changes. Each `record` is committed before it returns: an accepted call is
on disk before the next STATE can pass it. A call is marked `in_flight` before it is sent, so
after a crash exactly the calls then in flight are left `in_flight`: the next run counts them
"in doubt" and sends them again (Pendo has no idempotency key); a definite "no" is `not_sent`."""

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
    pending: str | None = None  # JSON to send again while Pendo cannot take it (None: nothing)
    pending_since: str | None = None
    # False: sent again from the pending queue: not a sighting of the key in the source, and
    # no line in sync_rows (the run's rows are the tap's)
    from_source: bool = True


def _upsert_into(table: sa.Table, dialect: Dialect) -> postgresql.Insert | sqlite.Insert:
    return (sqlite.insert if dialect.name == "sqlite" else postgresql.insert)(table)


def write_statements(dialect: Dialect) -> tuple[str, str, str]:
    """(row_state upsert, sighting, sync_rows line) for the driver, parameters named by column."""
    if dialect.positional:  # sqlite3 takes named parameters too: compile for those
        dialect = type(dialect)(paramstyle="named")  # type: ignore[call-arg]
    insert = _upsert_into(row_state, dialect)
    new, old = insert.excluded, row_state.c
    sent: sa.ColumnElement[str] = sa.literal_column(f"'{Status.SENT.value}'")
    # the value hash only when sent; attempts reset by a send or counted up; the last sighting
    # kept when this is none (NULL)
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
    sql = [str(s.compile(dialect=dialect)) for s in (upsert, seen, sa.insert(sync_rows))]
    return sql[0], sql[1], sql[2]


# the parameters of the three write statements
_Rows = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


@dataclass
class _Work:
    rows: _Rows
    done: bool = False
    error: BaseException | None = None


class RowWriter:
    """Records outcomes through one raw DBAPI connection of its own; thread-safe."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[_Work] = []  # rows queued for the next group commit
        self._pending_lock = threading.Lock()
        with db.errors.guard("opening it", opening=True):
            self.raw: Any = db.engine.raw_connection()
            self._cursor: Any = self.raw.cursor()
            if not db.is_sqlite:
                # Marks survive a crash of target-pendo (their point) without waiting for the
                # server's disk; a crash of the server may lose the last few hundred ms of them.
                self._cursor.execute("SET synchronous_commit TO off")
                self.raw.commit()
        self._writes = write_statements(db.engine.dialect)

    def record(self, stream: str, run_id: str, outcomes: Sequence[RowOutcome]) -> None:
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
        """Group commit, with the write lock held: one transaction writes the rows every waiting
        record() queued (HTTP workers finishing at once share a commit); each returns once its
        rows are committed."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
        merged = [[row for item in batch for row in item.rows[i]] for i in range(3)]
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
    """Keep an object stream's SCHEMA, so that `ledger retry` can send its pending rows later."""
    insert = _upsert_into(stream_schemas, db.engine.dialect)
    values = {"message": json.dumps(message, sort_keys=True), "updated_at": now()}
    upsert = insert.values(stream=stream, **values).on_conflict_do_update(
        index_elements=[stream_schemas.c.stream], set_=values
    )
    with db.transaction(f"keeping the SCHEMA of stream '{stream}'") as conn:
        conn.execute(upsert)


def reset_stream(db: Database, stream: str) -> int:
    """Forget a stream's row state (its log stays): how many keys."""
    with db.transaction(f"resetting stream '{stream}'") as conn:
        result = conn.execute(sa.delete(row_state).where(row_state.c.stream == stream))
        return int(result.rowcount or 0)
