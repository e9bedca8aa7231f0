"""The retention window's part in the ledger: runs older than the window forgotten (their
`sync_rows` lines, then their `sync_runs` row), and the space that freed given back to the
disk. `row_state` (what Pendo holds, what is pending) is state, not history: never pruned by
age. `target_pendo/run/retention.py` decides when, and prunes the files under `state_dir`."""

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
    """What one prune of the retention window did: runs forgotten, sync_rows lines deleted,
    and whether older history is left (the prune stopped at its bounds)."""

    runs: int
    rows: int
    more: bool


def prune_history(
    db: Database, before: str, *, max_rows: int | None = None, max_seconds: float | None = None
) -> HistoryPruned:
    """Forget the runs that started before `before` (an ISO time), but any still running.
    Oldest runs first, in short transactions, so runs writing at the same time wait
    milliseconds; bounded by `max_rows` and `max_seconds` (None: until done) so that the first
    run on a large old ledger does not stall."""
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

    def spent() -> bool:
        return (max_rows is not None and rows >= max_rows) or (
            max_seconds is not None and time.monotonic() - started >= max_seconds
        )

    doing = "pruning runs older than the retention window"
    while found := [r[0] for r in db.read(doing, old_runs)]:
        for run_id in found:
            while True:
                if spent():
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
    """SQLite: return the pages pruning freed to the disk (PostgreSQL's autovacuum makes
    them reusable by itself). A ledger made before version 4 keeps freed pages for reuse
    (it never grows because of them) until `convert` runs one full VACUUM, which switches
    it to incremental vacuum for good; that rewrites the file, so only `ledger prune`,
    asked for by a person, does it. Returns whether space could be given back."""
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
            # executescript runs each statement to its end: through execute(),
            # incremental_vacuum frees one page per call. The file shrinks when the
            # write-ahead log is written back into it.
            raw.driver_connection.executescript(  # type: ignore[union-attr]
                steps + " PRAGMA wal_checkpoint(TRUNCATE);"
            )
        return True
