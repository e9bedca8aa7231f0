"""The outcome table: complete, consistent with the report, and stable on disk."""

from __future__ import annotations

import dataclasses

from target_pendo.observe.report import RunReport, StreamCounts
from target_pendo.run.outcomes import FACTS, REPORTED, Outcome, RunStatus, Status


def test_every_outcome_has_its_facts() -> None:
    assert set(FACTS) == set(Outcome)


def test_each_counted_outcome_is_a_report_count_of_its_name() -> None:
    fields = {f.name for f in dataclasses.fields(StreamCounts)}
    counted = {o.value for o, facts in FACTS.items() if facts.counted}
    assert counted <= fields
    report = RunReport("r")
    report.tally("s", "events", {o: 1 for o, facts in FACTS.items() if facts.counted})
    assert all(getattr(report.counts("s"), name) == 1 for name in counted)


def test_only_counted_outcomes_are_labelled_in_the_report() -> None:
    assert all(FACTS[o].counted for o, _ in REPORTED)


def test_the_names_stored_in_existing_ledgers_do_not_change() -> None:
    # row_state.status and sync_rows.outcome hold these strings: renaming one would make
    # every ledger written before misread its rows.
    assert {s.value for s in Status} == {
        "in_flight",
        "sent",
        "rejected",
        "unknown",
        "not_sent",
        "cleared",
        "deleted",
    }
    assert {s.value for s in RunStatus} == {
        "running", "succeeded", "failed", "stopped", "abandoned"
    }  # fmt: skip
    assert {o.value for o in Outcome} == {
        "sent", "rejected", "already_sent", "unchanged", "superseded", "skipped_unknown",
        "cleared", "deleted", "in_doubt", "not_sent", "in_flight",
    }  # fmt: skip


def test_what_leaves_the_source_never_counts_as_seen_in_it() -> None:
    # absent-row deletes go by sightings: a clear, a delete or a failed call for a key that
    # left the source must not make it look present again
    for outcome in (Outcome.CLEARED, Outcome.DELETED, Outcome.NOT_SENT, Outcome.IN_FLIGHT):
        assert not FACTS[outcome].seen
