"""The ledger's read queries; an older ledger read as it is finds nothing where it has nothing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

from target_pendo.ledger.engine import Database, in_chunks
from target_pendo.ledger.migrations import PENDING_QUEUE_VERSION, STREAM_SCHEMAS_VERSION
from target_pendo.ledger.tables import row_state, stream_schemas, sync_rows, sync_runs
from target_pendo.run.outcomes import Outcome, Status


@dataclass(frozen=True)
class RowState:
    status: str
    value_hash: str | None
    attempts: int
    last_run: str


@dataclass(frozen=True)
class RunRow:
    run_id: str
    started_at: str
    finished_at: str | None
    status: str
    report: str | None


def states(db: Database, stream: str, keys: Iterable[str]) -> dict[str, RowState]:
    """Current state of these keys (absent: never seen)."""
    found: dict[str, RowState] = {}
    t = row_state.c
    columns = sa.select(t.row_key, t.status, t.value_hash, t.attempts, t.last_run)
    with db.errors.guard(f"looking up rows of stream '{stream}'"), db.engine.connect() as conn:
        for chunk in in_chunks(list(dict.fromkeys(keys))):
            for row in conn.execute(columns.where(t.stream == stream, t.row_key.in_(chunk))):
                found[row[0]] = RowState(row[1], row[2], int(row[3]), row[4])
    return found


def unseen_since(db: Database, stream: str, run_id: str, statuses: Sequence[Status]) -> list[str]:
    """Keys in `statuses` that this run has not seen in the source."""
    seen = row_state.c.last_seen_run
    return keys_with_status(db, stream, statuses, sa.or_(seen.is_(None), seen != run_id))


def keys_with_status(
    db: Database, stream: str, statuses: Sequence[Status], *where: sa.ColumnElement[bool]
) -> list[str]:
    t = row_state.c
    wanted = (t.stream == stream, t.status.in_([str(s) for s in statuses]), *where)
    query = sa.select(t.row_key).where(*wanted).order_by(t.row_key)
    return [r[0] for r in db.read(f"looking up rows of stream '{stream}'", query)]


def pending_rows(
    db: Database, stream: str, run_id: str, *, after: str | None = None, limit: int = 5000
) -> list[tuple[str, str, str]]:
    """(key, pending values, since) of the rows waiting to be sent again, but those this run
    handled already (a newer row replaced the pending one): a page in key order after `after`."""
    if db.version_found < PENDING_QUEUE_VERSION:
        return []
    t = row_state.c
    query = (
        sa.select(t.row_key, t.pending, t.pending_since)
        .where(t.stream == stream, t.pending.is_not(None), t.last_run != run_id)
        .order_by(t.row_key)
        .limit(limit)
    )
    if after is not None:
        query = query.where(t.row_key > after)
    found = db.read(f"looking up pending rows of stream '{stream}'", query)
    return [(r[0], r[1], r[2] or "") for r in found]


def stored_schema(db: Database, stream: str) -> dict[str, Any] | None:
    """The SCHEMA a stream was last synced with (None: never, or by an older version)."""
    if db.version_found < STREAM_SCHEMAS_VERSION:
        return None
    query = sa.select(stream_schemas.c.message).where(stream_schemas.c.stream == stream)
    found = db.read(f"reading the SCHEMA of stream '{stream}'", query)
    return cast(dict[str, Any], json.loads(found[0][0])) if found else None


def _count(
    db: Database, doing: str, by: sa.Column[Any], *where: sa.ColumnElement[bool], ordered: bool
) -> list[tuple[str, Any, int]]:
    stream = by.table.c.stream
    query = sa.select(stream, by, sa.func.count()).where(*where).group_by(stream, by)
    if ordered:
        query = query.order_by(stream, by)
    return [(r[0], r[1], int(r[2])) for r in db.read(doing, query)]


def pending_counts(db: Database) -> list[tuple[str, str, int]]:
    """(stream, why it waits, keys) of the pending queue."""
    if db.version_found < PENDING_QUEUE_VERSION:
        return []
    t = row_state.c
    found = _count(db, "counting pending rows", t.reason, t.pending.is_not(None), ordered=True)
    return [(stream, reason or "", n) for stream, reason, n in found]


def status_counts(db: Database) -> list[tuple[str, str, int]]:
    return _count(db, "counting rows", row_state.c.status, ordered=True)


def runs(db: Database, *, prefix: str | None = None, limit: int = 50) -> list[RunRow]:
    """Runs whose id is `prefix` or starts with it (by id), else the latest `limit` runs."""
    t = sync_runs.c
    columns = sa.select(t.run_id, t.started_at, t.finished_at, t.status, t.report)
    if prefix is None:
        query = columns.order_by(t.started_at.desc(), t.run_id.desc()).limit(limit)
        return [RunRow(*row) for row in db.read("reading its runs", query)]
    # autoescape: a '_' or '%' in the prefix is itself
    query = columns.where(t.run_id.startswith(prefix, autoescape=True)).order_by(t.run_id)
    found = [RunRow(*row) for row in db.read("reading its runs", query)]
    # LIKE ignores ASCII case on SQLite: run ids are matched exactly, case and all
    exact = [r for r in found if r.run_id == prefix]
    return exact or [r for r in found if r.run_id.startswith(prefix)]


def run_outcomes(db: Database, run_id: str) -> dict[str, Counter[str]]:
    t = sync_rows.c
    found = _count(db, f"reading run {run_id}", t.outcome, t.run_id == run_id, ordered=False)
    counts: dict[str, Counter[str]] = {}
    for stream, outcome, n in found:
        counts.setdefault(stream, Counter())[outcome] = n
    return counts


def run_reject_reasons(db: Database, run_id: str) -> list[tuple[str, str | None, int]]:
    t = sync_rows.c
    rejected = (t.run_id == run_id, t.outcome == str(Outcome.REJECTED))
    return _count(db, f"reading run {run_id}", t.reason, *rejected, ordered=False)
