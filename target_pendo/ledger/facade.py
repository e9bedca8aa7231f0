"""`Ledger`, each method the part that does it; what the facade decides is what a read-only
ledger does when asked to write: nothing, or refuse (`reset_stream`, asked for by a person)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import target_pendo.ledger.history as history
import target_pendo.ledger.leases as leases
import target_pendo.ledger.queries as queries
import target_pendo.ledger.runs as runs
import target_pendo.ledger.writes as writes
from target_pendo.ledger.engine import Database, disposed_on_failure, open_database
from target_pendo.ledger.errors import LedgerReadOnlyError
from target_pendo.ledger.history import HistoryPruned
from target_pendo.ledger.writes import RowOutcome, RowWriter

P = ParamSpec("P")
R = TypeVar("R")


def _on_db(
    part: Callable[Concatenate[Database, P], R], read_only_gives: Callable[[], R] | None = None
) -> Callable[Concatenate[Ledger, P], R]:
    """`part` on the ledger's database; `read_only_gives`: a write a read-only ledger skips."""

    def method(self: Ledger, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if read_only_gives is not None and self.read_only:
            return read_only_gives()
        return part(self._db, *args, **kwargs)

    return method


class Ledger:
    """The sync ledger at `url`. Thread-safe: sinks drained in parallel and HTTP workers record
    through one instance. `read_only`: look up, never write: no file, no migration, no lease."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.read_only = read_only
        self._db = open_database(url, read_only=read_only)
        self.engine = self._db.engine  # for the sync-log export, which reads under `reading`
        self.where = self._db.errors.where
        self.reading = self._db.errors.guard
        self._writer: RowWriter | None = None
        if not read_only:
            with disposed_on_failure(self._db.engine):
                self._writer = RowWriter(self._db)
        self._leases = leases.for_database(self._db)
        self._closed = False

    schema_version = _on_db(Database.schema_version)

    def lease_stream(self, stream: str, run_id: str, wait_seconds: float) -> None:
        """Make this run the only writer of `stream` until `close()` or `release_leases()`:
        call it before the stream's first lookup or send."""
        if not self.read_only:
            self._leases.lease_stream(stream, run_id, wait_seconds)

    def release_leases(self) -> None:
        self._leases.release_streams()

    def start_run(self, run_id: str, full_resync: bool) -> list[str]:
        if self.read_only:
            return []
        return runs.start_run(self._db, self._leases, run_id, full_resync)

    def finish_run(self, run_id: str, status: str, report: dict[str, Any]) -> None:
        if not self.read_only:
            runs.finish_run(self._db, self._leases, run_id, status, report)

    def record(self, stream: str, run_id: str, outcomes: Sequence[RowOutcome]) -> None:
        if self._writer is not None:  # None: read-only
            self._writer.record(stream, run_id, outcomes)

    drop_pending = _on_db(writes.drop_pending, lambda: None)
    remember_schema = _on_db(writes.remember_schema, lambda: None)

    def reset_stream(self, stream: str) -> int:
        if self.read_only:
            raise LedgerReadOnlyError(
                f"the ledger at {self.where} was opened read-only (a dry run): it cannot reset "
                f"stream '{stream}'; run 'target-pendo ledger reset' with a config without "
                "'dry_run'"
            )
        return writes.reset_stream(self._db, stream)

    states = _on_db(queries.states)
    keys_with_status = _on_db(queries.keys_with_status)
    unseen_since = _on_db(queries.unseen_since)
    pending_rows = _on_db(queries.pending_rows)
    stored_schema = _on_db(queries.stored_schema)
    pending_counts = _on_db(queries.pending_counts)
    status_counts = _on_db(queries.status_counts)
    runs = _on_db(queries.runs)
    run_outcomes = _on_db(queries.run_outcomes)
    run_reject_reasons = _on_db(queries.run_reject_reasons)

    prune_history = _on_db(history.prune_history, lambda: HistoryPruned(0, 0, False))
    give_space_back = _on_db(history.give_space_back, lambda: False)

    def close(self) -> None:
        """Release every lease, lock and connection (idempotent). A run closed without
        `finish_run` stays `running` until the next run marks it abandoned."""
        if self._closed:
            return
        self._closed = True
        try:
            self._leases.close()
        finally:
            if self._writer is not None:
                self._writer.close()
            self._db.engine.dispose()
