"""A run's life in the ledger: started, earlier ones that died marked abandoned, finished."""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa

from target_pendo.ledger.engine import Database, in_chunks
from target_pendo.ledger.leases import Leases
from target_pendo.ledger.tables import now, sync_runs
from target_pendo.run.outcomes import RunStatus

logger = logging.getLogger("target_pendo.ledger")


def start_run(db: Database, leases: Leases, run_id: str, full_resync: bool) -> list[str]:
    """Record the run as running, holding its lock for its life; mark every other `running` run
    whose lock is free (killed, or closed without finishing) `abandoned`, returning their ids."""
    doing = "starting the run"
    t = sync_runs.c
    with db.errors.guard(doing):
        leases.lock_run(run_id)  # before the row: a running row always has a held lock
        with db.transaction(doing) as conn:
            conn.execute(
                sa.insert(sync_runs).values(
                    run_id=run_id,
                    started_at=now(),
                    status=str(RunStatus.RUNNING),
                    full_resync=int(full_resync),
                )
            )
        running = sa.select(t.run_id).where(t.status == str(RunStatus.RUNNING)).order_by(t.run_id)
        gone = leases.gone([r[0] for r in db.read(doing, running) if r[0] != run_id])
    if not gone:
        return []
    with db.transaction(doing) as conn:
        for chunk in in_chunks(gone):
            conn.execute(
                sa.update(sync_runs)
                .where(t.run_id.in_(chunk), t.status == str(RunStatus.RUNNING))
                .values(status=str(RunStatus.ABANDONED), finished_at=now())
            )
    logger.warning(
        "Marked %d earlier run(s) of the ledger at %s as abandoned: they stopped without "
        "finishing (killed, or their machine vanished): %s",
        len(gone),
        db.errors.where,
        ", ".join(gone[:10]) + (" ..." if len(gone) > 10 else ""),
    )
    return gone


def finish_run(
    db: Database, leases: Leases, run_id: str, status: str, report: dict[str, Any]
) -> None:
    with db.transaction("finishing the run") as conn:
        conn.execute(
            sa.update(sync_runs)
            .where(sync_runs.c.run_id == run_id)
            .values(finished_at=now(), status=str(status), report=json.dumps(report))
        )
    leases.release("run", run_id)
