"""The only writer of a row's fate (ledger, report counts, rejects and unknown-ids files). Every
method writes the row's file line first, then the ledger in one committed transaction, then the
report: a crash in between may leave a file line for a row the ledger lacks (STATE never passed
it), never the reverse. The ledger keeps only keys `key_problem` accepts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from target_pendo.ledger import MAX_KEY_CHARS, Ledger, RowOutcome, unstorable_reason
from target_pendo.observe.report import RunReport, mask_quoted_values
from target_pendo.run.outcomes import FACTS, Outcome
from target_pendo.run.rejects import RowLog


def key_problem(key: str) -> str | None:
    """Why the ledger cannot keep `key` (NUL, lone surrogate, too long), or None."""
    return unstorable_reason(key, max_chars=MAX_KEY_CHARS)


@dataclass(frozen=True)
class UnknownId:
    """An id Pendo does not have (skipped, never created): a line in the unknown-ids file."""

    kind: str  # visitor, account, parentAccount
    object_id: str
    row_key: Any  # the row's Singer key, as the file shows it


@dataclass(frozen=True, kw_only=True)
class OutcomeRecorder:
    """Thread-safe: the ledger, the report and the files each take their own lock."""

    run_id: str
    ledger: Ledger
    report: RunReport
    rejects: RowLog  # the run's rejects file, closed by `close`
    unknown: RowLog  # the run's unknown-ids file, closed by `close`
    redact: Callable[[str], str]
    include_values: bool

    def close(self) -> None:
        self.rejects.close()
        self.unknown.close()


@dataclass(frozen=True)
class StreamRecorder:
    run: OutcomeRecorder
    name: str
    sync: str
    row_key: Callable[[Any], Any]  # a row's Singer key, as the rejects file shows it

    def reject(
        self,
        record: Any,
        field: str | None,
        reason: str,
        *,
        key: str | None = None,
        pending: str | None = None,
    ) -> None:
        """A row not sent, and why. With a storable ledger `key`, the ledger has it rejected so a
        later run that sees it sends it again; with `pending`, later runs send it by themselves."""
        run = self.run
        reason = run.redact(reason)  # a value quoted in a reason may hold a key
        if not run.include_values:  # no row value in the file, the report or the ledger
            reason = mask_quoted_values(reason)
        run.report.add_reject_reason(self.name, field, reason)
        run.rejects.reject(self.name, self.row_key(record), field, reason, record)
        run.report.tally(self.name, self.sync, {Outcome.REJECTED: 1})
        if key is not None and key_problem(key) is None:
            outcome = RowOutcome(key, Outcome.REJECTED, reason, pending=pending)
            run.ledger.record(self.name, run.run_id, [outcome])

    def record(self, outcomes: Sequence[RowOutcome], unknown: Sequence[UnknownId] = ()) -> None:
        """These rows' outcomes, in one ledger transaction committed before this returns (so
        before the stream's next call); the report counts only rows `from_source`."""
        run = self.run
        for entry in unknown:
            line = {"kind": entry.kind, "id": entry.object_id, "key": entry.row_key}
            run.unknown.append(self.name, line)
        run.ledger.record(self.name, run.run_id, outcomes)
        counted = Counter(o.outcome for o in outcomes if o.from_source and FACTS[o.outcome].counted)
        if counted:
            run.report.tally(self.name, self.sync, counted)
        if unknown:
            run.report.list_unknown(self.name, [entry.object_id for entry in unknown])

    def mark_in_flight(self, key: str, answered: Sequence[RowOutcome] = ()) -> None:
        """`key`'s in-flight mark, with `answered` in the same transaction, committed before
        this returns; the caller sends only then, after every wait (``sinks/track_calls.py``)."""
        self.record([*answered, RowOutcome(key, Outcome.IN_FLIGHT)])

    def drop_pending(self, keys: Sequence[str]) -> None:
        self.run.ledger.drop_pending(self.name, keys)
