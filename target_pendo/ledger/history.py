"""The retention window's part in the ledger (`run/retention.py` decides when): old runs'
`sync_rows` lines, then their `sync_runs` row, forgotten, and the space given back to the disk.
`row_state` (what Pendo holds, what is pending) is state, not history: never pruned by age."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import sqlalchemy as sa

from target_pendo.ledger.engine import Database
from target_pendo.ledger.tables import sync_runs
from target_pendo.run.outcomes import RunStatus

_PRUNE_CHUNK = 20_000  # sync_rows lines per delete: a few tens of ms of a writer's time
_PRUNE_RUNS_PER_LOOK = 100
_INCREMENTAL_VACUUM = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


@dataclass(frozen=True)
class HistoryPruned:
    """`more`: older history is left (the prune stopped at its bounds)."""

    runs: int
    rows: int
    more: bool


def prune_history(
    db: Database, before: str, *, max_rows: int | None = None, max_seconds: float | None = None
) -> HistoryPruned:
    """Forget the runs that started before `before` but running ones, oldest first, in short
    transactions (a concurrent run waits milliseconds), within the bounds (None: unbounded)."""
    started = time.monotonic()
    runs = rows = 0
    t = sync_runs.c
    old_runs = (
        sa.select(t.run_id)
        .where(t.started_at < before, t.status != str(RunStatus.RUNNING))
        .order_by(t.started_at, t.run_id)
        .limit(_PRUNE_RUNS_PER_LOOK)
    )
    # by the row's physical id: neither SQLite (as built) nor PostgreSQL takes DELETE ... LIMIT
    delete_run_rows = sa.text(
        "DELETE FROM sync_rows WHERE rowid IN "
        "(SELECT rowid FROM sync_rows WHERE run_id = :r LIMIT :n)"
        if db.is_sqlite
        else "DELETE FROM sync_rows WHERE ctid = ANY(ARRAY("
        "SELECT ctid FROM sync_rows WHERE run_id = :r LIMIT :n))"
    )

    doing = "pruning runs older than the retention window"
    while found := [r[0] for r in db.read(doing, old_runs)]:
        for run_id in found:
            while True:
                if (max_rows is not None and rows >= max_rows) or (
                    max_seconds is not None and time.monotonic() - started >= max_seconds
                ):
                    return HistoryPruned(runs, rows, True)
                with db.transaction(doing) as conn:
                    result = conn.execute(delete_run_rows, {"r": run_id, "n": _PRUNE_CHUNK})
                deleted = int(result.rowcount or 0)
                rows += deleted
                if deleted < _PRUNE_CHUNK:
                    break
            with db.transaction(doing) as conn:
                conn.execute(sa.delete(sync_runs).where(t.run_id == run_id))
            runs += 1
    return HistoryPruned(runs, rows, False)


def give_space_back(db: Database, *, convert: bool = False) -> bool:
    """SQLite: give the pages pruning freed back to the disk (PostgreSQL's autovacuum reuses
    them). A ledger made before version 4 only reuses them until `convert` runs one full VACUUM
    to switch it: that rewrites the file, so only `ledger prune` does it."""
    if not db.is_sqlite or db.errors.path is None:
        return False
    with db.errors.guard("giving freed space back to the disk"), db.write_lock:
        with db.engine.connect() as conn:
            mode = int(conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() or 0)
        if mode != _INCREMENTAL_VACUUM and not convert:
            return False
        steps = (
            "PRAGMA incremental_vacuum;"
            if mode == _INCREMENTAL_VACUUM
            else f"PRAGMA auto_vacuum={_INCREMENTAL_VACUUM}; VACUUM;"
        )
        with contextlib.closing(db.engine.raw_connection()) as raw:
            # executescript runs each statement to its end (execute() frees one page per
            # call); the file shrinks when the write-ahead log is written back into it.
            raw.driver_connection.executescript(  # type: ignore[union-attr]
                steps + " PRAGMA wal_checkpoint(TRUNCATE);"
            )
        return True
