"""What became of a row, written in one place: the run's `OutcomeRecorder` is the only writer
of a row's fate (the ledger, the run report's counts, reject reasons and unknown ids, the
rejects and unknown-ids files); each sink records through its stream's `StreamRecorder`.

Every method writes in the same order: the row's line in its file (the file, not the ledger,
is where every rejected row is), then the ledger in one committed transaction, then the
report. So a crash between two steps may leave a line in a file for a row the ledger lacks
(STATE never passed it: it is read and written again), never the reverse.

The ledger keeps a key only when `key_problem` finds nothing wrong with it; a sink asks before
it relies on a row's key, and `StreamRecorder.reject` keeps any other key out of the ledger.
What the sinks count beside outcomes (rows received, old events...) goes to ``RunReport.add``.
"""

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
    """Why the ledger cannot keep `key` (a NUL, a lone surrogate, more than MAX_KEY_CHARS
    characters), or None when it can."""
    return unstorable_reason(key, max_chars=MAX_KEY_CHARS)


@dataclass(frozen=True)
class UnknownId:
    """An id Pendo does not have (skipped, never created): a line in the unknown-ids file."""

    kind: str  # visitor, account, parentAccount
    object_id: str
    row_key: Any  # the row's Singer key, as the file shows it


@dataclass(frozen=True, kw_only=True)
class OutcomeRecorder:
    """The run's writer of what became of each row (see the module). Thread-safe: the ledger,
    the report and the files each take their own lock."""

    run_id: str
    ledger: Ledger
    report: RunReport
    rejects: RowLog  # the run's rejects file, closed by `close`
    unknown: RowLog  # the run's unknown-ids file, closed by `close`
    redact: Callable[[str], str]
    # False (setting `rejects_include_values`): no row value in a rejected row's reason, in
    # the file, the report or the ledger
    include_values: bool

    def stream(self, name: str, sync: str) -> StreamRecorder:
        """The recorder of one stream (`sync`: how the report shows the stream synced)."""
        return StreamRecorder(self, name, sync)

    def close(self) -> None:
        self.rejects.close()
        self.unknown.close()


@dataclass(frozen=True)
class StreamRecorder:
    """What became of one stream's rows, written through the run's `OutcomeRecorder`."""

    run: OutcomeRecorder
    name: str
    sync: str

    def reject(
        self,
        record: Any,
        row_key: Any,
        field: str | None,
        reason: str,
        *,
        key: str | None = None,
        pending: str | None = None,
    ) -> None:
        """A row not sent, and why: `row_key` is its Singer key as the rejects file shows it.
        With a ledger `key` it can keep, the ledger has the row as rejected (reason, attempts)
        so that a later run that sees it again sends it again, and, with `pending` (what to
        send), later runs send it again by themselves."""
        run = self.run
        reason = run.redact(reason)  # a value quoted in a reason may hold a key
        if not run.include_values:
            # no row value anywhere: the rejects file, the report (and its page) and the
            # ledger get the reason with the values it quotes masked
            reason = mask_quoted_values(reason)
        run.report.add_reject_reason(self.name, field, reason)
        run.rejects.reject(self.name, row_key, field, reason, record)
        run.report.tally(self.name, self.sync, {Outcome.REJECTED: 1})
        if key is not None and key_problem(key) is None:
            outcome = RowOutcome(key, Outcome.REJECTED, reason, pending=pending)
            run.ledger.record(self.name, run.run_id, [outcome])

    def record(self, outcomes: Sequence[RowOutcome], unknown: Sequence[UnknownId] = ()) -> None:
        """What became of these rows, in one ledger transaction (committed when this returns,
        so before the stream's next call goes out); `unknown`: the ids among them Pendo does
        not have. The report counts the rows of the source (`from_source`): a row sent again
        from the pending queue is the sink's to count."""
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
        """The call of `key` is about to go on the wire: its in-flight mark, with `answered`
        (earlier calls' outcomes, in the same transaction), committed when this returns. The
        caller sends only then, and only after every wait (``sinks/track_calls.py``): a crash
        from here on leaves the key in flight, sent again and counted in doubt by the next
        run; a call that never left is never in doubt."""
        self.record([*answered, RowOutcome(key, Outcome.IN_FLIGHT)])

    def drop_pending(self, keys: Sequence[str]) -> None:
        """Take these keys out of the pending queue (expired, or no longer to send)."""
        self.run.ledger.drop_pending(self.name, keys)
