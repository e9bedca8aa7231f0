"""`Ledger`: the object the rest of target-pendo holds, made of the ledger's parts.

Each method hands its work to the part that does it (`queries`, `writes`, `runs`, `leases`,
`history`); what the facade itself decides is what a read-only ledger does when asked to
write (`_write`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import sqlalchemy as sa

import target_pendo.ledger.history as history
import target_pendo.ledger.leases as leases
import target_pendo.ledger.queries as queries
import target_pendo.ledger.runs as runs
import target_pendo.ledger.writes as writes
from target_pendo.ledger.engine import open_database
from target_pendo.ledger.errors import LedgerReadOnlyError
from target_pendo.ledger.history import HistoryPruned
from target_pendo.ledger.queries import RowState, RunRow
from target_pendo.ledger.writes import RowOutcome, RowWriter
from target_pendo.outcomes import Status

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
                    f"the ledger at {self.where} was opened read-only (a dry run): it cannot "
                    + refuse.format(**named)
                )
            return cast(R, read_only_gives())

        return guarded

    return wrap


class Ledger:
    """The sync ledger at `url` (see the package's docstring). Thread-safe: sinks drained in
    parallel and HTTP workers record through one instance. `read_only` (dry runs, `ledger
    status`, `report`): look up, never write: no file, no migration, no lease."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.read_only = read_only
        self._db = open_database(url, read_only=read_only)
        self._writer: RowWriter | None = None
        if not read_only:
            try:
                self._writer = RowWriter(self._db)
            except BaseException:
                self._db.engine.dispose()  # a ledger that could not open keeps no file open
                raise
        # chosen once, by the backend: flock files (SQLite) or advisory locks (PostgreSQL)
        self._leases = leases.for_database(self._db)
        self._closed = False

    @property
    def engine(self) -> sa.Engine:
        """For readers of the tables outside the ledger (the sync-log export), with `reading`."""
        return self._db.engine

    @property
    def is_sqlite(self) -> bool:
        return self._db.is_sqlite

    @property
    def path(self) -> Path | None:
        """The SQLite file (None: in memory, or not SQLite)."""
        return self._db.errors.path

    @property
    def where(self) -> str:
        """The ledger for a message: its file, or its URL with the password hidden."""
        return self._db.where

    def reading(self, doing: str) -> contextlib.AbstractContextManager[None]:
        """For a reader of the tables outside this class (the sync-log export): a database
        error while `doing` becomes a LedgerError whose one line names the ledger."""
        return self._db.guard(doing)

    def schema_version(self) -> int:
        return self._db.schema_version()

    # --- leases -----------------------------------------------------------------------------
    @_write()
    def lease_stream(self, stream: str, run_id: str, wait_seconds: float) -> None:
        """Make this run the only writer of `stream` until `close()` (or `release_leases()`);
        see `Leases.lease_stream`. Call it before the stream's first lookup or send. A
        read-only Ledger takes none."""
        self._leases.lease_stream(stream, run_id, wait_seconds)

    def release_leases(self) -> None:
        """Give back every stream lease of this Ledger (done by `close()` too)."""
        self._leases.release_streams()

    # --- runs -------------------------------------------------------------------------------
    @_write(read_only_gives=list)
    def start_run(self, run_id: str, full_resync: bool) -> list[str]:
        return runs.start_run(self._db, self._leases, run_id, full_resync)

    @_write()
    def finish_run(self, run_id: str, status: str, report: dict[str, Any]) -> None:
        runs.finish_run(self._db, self._leases, run_id, status, report)

    # --- rows -------------------------------------------------------------------------------
    @_write()
    def record(self, stream: str, run_id: str, outcomes: Sequence[RowOutcome]) -> None:
        assert self._writer is not None  # opened with every read-write ledger
        self._writer.record(stream, run_id, outcomes)

    @_write()
    def drop_pending(self, stream: str, keys: Sequence[str]) -> None:
        writes.drop_pending(self._db, stream, keys)

    @_write()
    def remember_schema(self, stream: str, message: dict[str, Any]) -> None:
        writes.remember_schema(self._db, stream, message)

    @_write(
        refuse="reset stream '{stream}'; run 'target-pendo ledger reset' with a config "
        "without 'dry_run'"
    )
    def reset_stream(self, stream: str) -> int:
        return writes.reset_stream(self._db, stream)

    def states(self, stream: str, keys: Iterable[str]) -> dict[str, RowState]:
        return queries.states(self._db, stream, keys)

    def keys_with_status(self, stream: str, statuses: Sequence[Status]) -> list[str]:
        return queries.keys_with_status(self._db, stream, statuses)

    def unseen_since(self, stream: str, run_id: str, statuses: Sequence[Status]) -> list[str]:
        return queries.unseen_since(self._db, stream, run_id, statuses)

    def pending_rows(
        self, stream: str, run_id: str, *, after: str | None = None, limit: int = 5000
    ) -> list[tuple[str, str, str]]:
        return queries.pending_rows(self._db, stream, run_id, after=after, limit=limit)

    def stored_schema(self, stream: str) -> dict[str, Any] | None:
        return queries.stored_schema(self._db, stream)

    def pending_counts(self) -> list[tuple[str, str, int]]:
        return queries.pending_counts(self._db)

    def status_counts(self) -> list[tuple[str, str, int]]:
        return queries.status_counts(self._db)

    def runs(self, *, prefix: str | None = None, limit: int = 50) -> list[RunRow]:
        return queries.runs(self._db, prefix=prefix, limit=limit)

    def run_outcomes(self, run_id: str) -> dict[str, Counter[str]]:
        return queries.run_outcomes(self._db, run_id)

    def run_reject_reasons(self, run_id: str) -> list[tuple[str, str | None, int]]:
        return queries.run_reject_reasons(self._db, run_id)

    # --- retention ----------------------------------------------------------------------------
    @_write(read_only_gives=lambda: HistoryPruned(0, 0, False))
    def prune_history(
        self, before: str, *, max_rows: int | None = None, max_seconds: float | None = None
    ) -> HistoryPruned:
        return history.prune_history(self._db, before, max_rows=max_rows, max_seconds=max_seconds)

    @_write(read_only_gives=lambda: False)
    def give_space_back(self, *, convert: bool = False) -> bool:
        return history.give_space_back(self._db, convert=convert)

    def close(self) -> None:
        """Release every lease and lock of this Ledger and its connections (idempotent). A run
        closed without `finish_run` stays `running` until the next run marks it abandoned."""
        if self._closed:
            return
        self._closed = True
        try:
            self._leases.close()
        finally:
            if self._writer is not None:
                self._writer.close()
            self._db.engine.dispose()
