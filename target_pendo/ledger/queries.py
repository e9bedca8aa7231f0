"""The ledger's read queries: the state of keys, the pending queue, the stored SCHEMAs, and
what `ledger status` and `target-pendo report` show. A read-only look at a ledger of an older
schema finds nothing where that schema had nothing (`Database.version_found`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

from target_pendo.ledger.engine import Database
from target_pendo.ledger.migrations import PENDING_QUEUE_VERSION, STREAM_SCHEMAS_VERSION
from target_pendo.ledger.tables import row_state, stream_schemas, sync_rows, sync_runs
from target_pendo.outcomes import Outcome, Status

_IN_CHUNK = 500


@dataclass(frozen=True)
class RowState:
    status: str
    value_hash: str | None
    attempts: int
    last_run: str


@dataclass(frozen=True)
class RunRow:
    """One run as `sync_runs` holds it (`report`: the run report's JSON text, or None)."""

    run_id: str
    started_at: str
    finished_at: str | None
    status: str
    report: str | None


# --- rows -------------------------------------------------------------------------------------
def states(db: Database, stream: str, keys: Iterable[str]) -> dict[str, RowState]:
    """Current state of these keys (absent: never seen)."""
    found: dict[str, RowState] = {}
    unique = list(dict.fromkeys(keys))
    t = row_state.c
    columns = sa.select(t.row_key, t.status, t.value_hash, t.attempts, t.last_run)
    with db.guard(f"looking up rows of stream '{stream}'"), db.engine.connect() as conn:
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            query = columns.where(t.stream == stream, t.row_key.in_(chunk))
            for row in conn.execute(query):
                found[row[0]] = RowState(row[1], row[2], int(row[3]), row[4])
    return found


def keys_with_status(db: Database, stream: str, statuses: Sequence[Status]) -> list[str]:
    t = row_state.c
    query = (
        sa.select(t.row_key)
        .where(t.stream == stream, t.status.in_([str(s) for s in statuses]))
        .order_by(t.row_key)
    )
    with db.guard(f"looking up rows of stream '{stream}'"), db.engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]


def unseen_since(db: Database, stream: str, run_id: str, statuses: Sequence[Status]) -> list[str]:
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
    with db.guard(f"looking up rows of stream '{stream}'"), db.engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]


def pending_rows(
    db: Database, stream: str, run_id: str, *, after: str | None = None, limit: int = 5000
) -> list[tuple[str, str, str]]:
    """(key, pending values, pending since) of the stream's rows waiting to be sent again,
    but those this run already handled (a newer row came: it replaced the pending one);
    a page of at most `limit` in key order, from after the key `after`."""
    if db.version_found < PENDING_QUEUE_VERSION:
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
    with db.guard(doing), db.engine.connect() as conn:
        return [(r[0], r[1], r[2] or "") for r in conn.execute(query)]


def stored_schema(db: Database, stream: str) -> dict[str, Any] | None:
    """The SCHEMA a stream was last synced with (None: never, or by an older version)."""
    if db.version_found < STREAM_SCHEMAS_VERSION:
        return None
    query = sa.select(stream_schemas.c.message).where(stream_schemas.c.stream == stream)
    doing = f"reading the SCHEMA of stream '{stream}'"
    with db.guard(doing), db.engine.connect() as conn:
        text = conn.execute(query).scalar()
    return None if text is None else cast(dict[str, Any], json.loads(text))


# --- what `ledger status` shows ---------------------------------------------------------------
def pending_counts(db: Database) -> list[tuple[str, str, int]]:
    """(stream, why it waits, number of keys) of the pending queue, for `ledger status`."""
    if db.version_found < PENDING_QUEUE_VERSION:
        return []
    t = row_state.c
    query = (
        sa.select(t.stream, t.reason, sa.func.count())
        .where(t.pending.is_not(None))
        .group_by(t.stream, t.reason)
        .order_by(t.stream, t.reason)
    )
    with db.guard("counting pending rows"), db.engine.connect() as conn:
        return [(r[0], r[1] or "", int(r[2])) for r in conn.execute(query)]


def status_counts(db: Database) -> list[tuple[str, str, int]]:
    """(stream, status, number of keys), ordered: what `target-pendo ledger status` shows."""
    t = row_state.c
    query = (
        sa.select(t.stream, t.status, sa.func.count())
        .group_by(t.stream, t.status)
        .order_by(t.stream, t.status)
    )
    with db.guard("counting rows"), db.engine.connect() as conn:
        return [(r[0], r[1], int(r[2])) for r in conn.execute(query)]


# --- what `target-pendo report` shows ---------------------------------------------------------
def runs(db: Database, *, prefix: str | None = None, limit: int = 50) -> list[RunRow]:
    """Runs whose id is `prefix` or starts with it (by id), else the latest `limit` runs,
    newest first: what `target-pendo report` picks from."""
    t = sync_runs.c
    columns = sa.select(t.run_id, t.started_at, t.finished_at, t.status, t.report)
    if prefix is not None:  # autoescape: a '_' or '%' in the prefix is itself
        query = columns.where(t.run_id.startswith(prefix, autoescape=True)).order_by(t.run_id)
    else:
        query = columns.order_by(t.started_at.desc(), t.run_id.desc()).limit(limit)
    with db.guard("reading its runs"), db.engine.connect() as conn:
        found = [RunRow(*row) for row in conn.execute(query)]
    if prefix is None:
        return found
    # LIKE ignores ASCII case on SQLite: run ids are matched exactly, case and all
    exact = [r for r in found if r.run_id == prefix]
    return exact or [r for r in found if r.run_id.startswith(prefix)]


def run_outcomes(db: Database, run_id: str) -> dict[str, Counter[str]]:
    """Per stream, how many of a run's rows had each outcome (from `sync_rows`)."""
    t = sync_rows.c
    query = (
        sa.select(t.stream, t.outcome, sa.func.count())
        .where(t.run_id == run_id)
        .group_by(t.stream, t.outcome)
    )
    counts: dict[str, Counter[str]] = {}
    with db.guard(f"reading run {run_id}"), db.engine.connect() as conn:
        for stream, outcome, n in conn.execute(query):
            counts.setdefault(stream, Counter())[outcome] = int(n)
    return counts


def run_reject_reasons(db: Database, run_id: str) -> list[tuple[str, str | None, int]]:
    """(stream, reason, rows) of a run's rejected rows, one line per distinct reason."""
    t = sync_rows.c
    query = (
        sa.select(t.stream, t.reason, sa.func.count())
        .where(t.run_id == run_id, t.outcome == str(Outcome.REJECTED))
        .group_by(t.stream, t.reason)
    )
    with db.guard(f"reading run {run_id}"), db.engine.connect() as conn:
        return [(r[0], r[1], int(r[2])) for r in conn.execute(query)]
