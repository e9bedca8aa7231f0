"""What became of a row, named once, and what each outcome means to the ledger and the report.
The values are the strings stored in the ledger and shown in the report (readable in SQL)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    """A key's status in `row_state`: where it stands in Pendo as far as the ledger knows."""

    IN_FLIGHT = "in_flight"  # its call went on the wire and no answer was recorded yet
    SENT = "sent"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # Pendo has no such visitor / account: skipped, never created
    NOT_SENT = "not_sent"  # the run ended before Pendo had it
    CLEARED = "cleared"
    DELETED = "deleted"


class Outcome(enum.StrEnum):
    """What one run did with one row. Declared in the order the report lists them."""

    SENT = "sent"
    REJECTED = "rejected"
    ALREADY_SENT = "already_sent"
    UNCHANGED = "unchanged"
    SUPERSEDED = "superseded"
    SKIPPED_UNKNOWN = "skipped_unknown"
    CLEARED = "cleared"
    DELETED = "deleted"
    IN_DOUBT = "in_doubt"
    NOT_SENT = "not_sent"
    IN_FLIGHT = "in_flight"  # the mark before a call goes on the wire, not a result


@dataclass(frozen=True)
class OutcomeFacts:
    status: Status | None  # what it leaves in row_state; None: the status stays as it was
    seen: bool  # a sighting of the key in the source (what absent-row deletes go by)
    attempt: bool  # one more failed attempt: the row is tried again next run
    logged: bool  # gets a line in sync_rows
    counted: bool  # the run report counts it (a field of report.StreamCounts by its value)
    label: str | None  # its words in the report's optional counts (shown only when not 0)


FACTS: dict[Outcome, OutcomeFacts] = {
    # outcome: status, seen, attempt, logged, counted, label
    Outcome.SENT: OutcomeFacts(Status.SENT, True, False, True, True, None),
    Outcome.REJECTED: OutcomeFacts(Status.REJECTED, True, True, True, True, None),
    # A replayed event or an unchanged object (the bulk of a full-table sync) gets no sync_rows
    # line, so the ledger grows with changes, not with every run.
    Outcome.ALREADY_SENT: OutcomeFacts(None, True, False, False, True, "already sent"),
    Outcome.UNCHANGED: OutcomeFacts(None, True, False, False, True, "unchanged"),
    Outcome.SUPERSEDED: OutcomeFacts(None, True, False, True, True, "superseded in the batch"),
    Outcome.SKIPPED_UNKNOWN: OutcomeFacts(Status.UNKNOWN, True, True, True, True, "unknown ids"),
    # Clears and deletes, and the failures of their calls, are about keys that left the source:
    # none of them may make the key look present.
    Outcome.CLEARED: OutcomeFacts(Status.CLEARED, False, False, True, True, "cleared"),
    Outcome.DELETED: OutcomeFacts(Status.DELETED, False, False, True, True, "deleted"),
    Outcome.IN_DOUBT: OutcomeFacts(
        None, True, False, True, True, "in doubt (resent after a crash)"
    ),
    Outcome.NOT_SENT: OutcomeFacts(Status.NOT_SENT, False, False, True, False, None),
    Outcome.IN_FLIGHT: OutcomeFacts(Status.IN_FLIGHT, False, False, False, False, None),
}

# The outcomes the report counts only when not zero, in order, with their words.
REPORTED: tuple[tuple[Outcome, str], ...] = tuple(
    (o, facts.label) for o, facts in FACTS.items() if facts.label is not None
)


class RunStatus(enum.StrEnum):
    """A run's status in `sync_runs` and its report."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"  # by SIGTERM / SIGINT
    ABANDONED = "abandoned"  # found `running` with its lock free: killed, or never finished
