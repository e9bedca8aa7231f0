"""report_document.py: the run report as a typed document, stored as versioned JSON and read
back from the JSON of any earlier version (the shapes below are what earlier versions of
report.py and TargetPendo.finish wrote: `git log -p --follow target_pendo/observe/report.py`), and
`target-pendo report` and its HTML page rendering such an older report."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from target_pendo.observe import report_document
from target_pendo.observe.report import RunReport
from target_pendo.observe.report_document import (
    OPTIONAL_COUNTS,
    REPORT_VERSION,
    Pacing,
    RejectReason,
    ReportDocument,
    StreamCounts,
    read_report,
)
from target_pendo.observe.report_html import render_html
from target_pendo.observe.report_text import RunView, group_rejects, render_text
from target_pendo.observe.timeline import CallTimeline, TimelineDocument, TimelineRow
from target_pendo.run.outcomes import Outcome

# The first report a ledger kept (sync ledger, a74ccf4): no version, no per-stream HTTP counts
# or seconds, no dry_run / signal, no reject reasons, no timeline, no pacing.
LEDGER_FIRST: dict[str, Any] = {
    "run_id": "20260101T000000000-first",
    "started_at": "2026-01-01T00:00:00+00:00",
    "finished_at": "2026-01-01T00:00:09+00:00",
    "streams": {
        "events": {
            "sync": "events",
            "received": 12,
            "sent": 9,
            "already_sent": 2,
            "unchanged": 0,
            "in_doubt": 0,
            "rejected": 1,
            "skipped": 0,
            "skipped_unknown": 0,
            "cleared": 0,
            "deleted": 0,
            "old_events": 0,
        }
    },
    "unknown_ids": {},
    "status": "failed",
    "error": "Pendo answered HTTP 503 for 'events'",
    "http_calls": {"track": 11},
    "retries": 1,
    "calls_in_doubt": 0,
}

# The alert's version (f91b03f): reject reasons and the timeline, no pacing, no pending counts.
F91B03F_COUNTS = [
    "received", "sent", "already_sent", "unchanged", "superseded", "in_doubt", "rejected",
    "skipped", "skipped_unknown", "cleared", "deleted", "old_events", "large_properties",
    "fields_created", "deletes_withheld", "http_calls", "retries", "seconds",
]  # fmt: skip
WITH_REASONS: dict[str, Any] = {
    **LEDGER_FIRST,
    "streams": {
        "users": {
            "sync": "visitor",
            **dict.fromkeys(F91B03F_COUNTS, 0),
            "received": 4,
            "sent": 3,
            "rejected": 1,
            "skipped_unknown": 2,
            "fields_created": 1,
            "http_calls": 3,
            "seconds": 1.5,
        }
    },
    "unknown_ids": {"users": ["v-9", "v-10"]},
    "reject_reasons": {
        "users": [{"field": "plan", "pattern": "'plan' is …", "count": 1, "example": "'plan' is 7"}]
    },
    "status": "stopped",
    "dry_run": False,
    "error": None,
    "signal": "SIGTERM",
    "unsent_rows": 5,
    "retries_by_cause": {"users: HTTP 429": 1},
    "timeline": {
        "started_at": "2026-01-01T00:00:00+00:00",
        "bucket_seconds": 2,
        "rows": [[0, 3, 2, 0, 1, 0, 0, 1, [[20, 2], [25, 1]]]],
    },
}

# Pacing before calls in flight were paced (5bacca5): no in_flight_peak, no round_trip_ms.
WITH_PACING: dict[str, Any] = {
    **WITH_REASONS,
    "pacing": {"track": {"max_rate": 12.5, "rate": 10.0, "throttled": 1}},
}


def finished_report() -> ReportDocument:
    """A report as a run of this version ends with it: every part filled in."""
    report = RunReport("20261207T000000000-now", started_at="2026-12-07T00:00:00+00:00")
    report.tally("events", "events", {Outcome.SENT: 5, Outcome.REJECTED: 2, Outcome.IN_DOUBT: 1})
    report.add("users", "visitor", received=3, unchanged=2, pending_retried=1, pending_left=1)
    report.add_seconds("events", "events", 1.23456)
    report.set_http({"events": 4}, {"events": 1})
    report.list_unknown("users", ["v-1", "v-2"])
    report.add_reject_reason("events", "user_id", "'user_id' is missing or null")
    report.add_reject_reason("events", "user_id", "'user_id' is missing or null")
    report.add_reject_reason("events", None, "Pendo refused the event (HTTP 400): value 12")
    ticks = iter([0.0, 0.2, 1.4, 1.5, 2.6])
    timeline = CallTimeline(clock=lambda: next(ticks))
    timeline.attempt(200, 0.05)
    timeline.attempt(429, 0.2)
    timeline.retry()
    timeline.attempt(None, 3.0)
    return report.document(
        ReportDocument(
            status="failed",
            error="Pendo answered HTTP 503 for 'events'",
            signal=None,
            unsent_rows=3,
            http_calls={"track": 4},
            retries=1,
            retries_by_cause={"events: HTTP 429": 1},
            calls_in_doubt=1,
            pacing={"track": Pacing(3.2, 2.0, 1, 2, 41.5)},
            timeline=timeline.document(),
        )
    )


def view_of(stored: Any, **extra: Any) -> RunView:
    """The run view `target-pendo report` makes of a run whose ledger row holds `stored`."""
    report = read_report(json.dumps(stored) if isinstance(stored, dict) else stored)
    return RunView(
        run_id=stored["run_id"] if isinstance(stored, dict) else "20260101T000000000-none",
        status=(stored.get("status") if isinstance(stored, dict) else None) or "running",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:09+00:00",
        report=report,
        ledger="/tmp/ledger.sqlite3",
        rejects=group_rejects([], report),
        **extra,
    )


# --- write and read back ---------------------------------------------------------------------
def test_a_report_written_and_read_back_is_the_same_document(tmp_path):
    document = finished_report()
    report = RunReport(document.run_id)
    path = report.write(tmp_path, document)
    text = path.read_text()
    assert read_report(text) == document  # the report file
    assert read_report(json.dumps(document.as_dict())) == document  # the ledger's column
    assert read_report(json.loads(text)) == document  # the export's object
    assert read_report(document) is document


def test_the_stored_json_has_the_keys_earlier_versions_wrote_and_the_version():
    stored = finished_report().as_dict()
    assert stored["report_version"] == REPORT_VERSION
    assert list(stored)[1:] == [
        "run_id",
        "started_at",
        "finished_at",
        "streams",
        "unknown_ids",
        "reject_reasons",
        "status",
        "dry_run",
        "error",
        "signal",
        "unsent_rows",
        "http_calls",
        "retries",
        "retries_by_cause",
        "calls_in_doubt",
        "pacing",
        "timeline",
    ]
    for old in (LEDGER_FIRST, WITH_REASONS, WITH_PACING):
        assert set(old) <= set(stored)  # every key an earlier version wrote is still written
        for counts in old["streams"].values():
            assert set(counts) <= set(stored["streams"]["events"])
    assert stored["pacing"]["track"] == {
        "max_rate": 3.2,
        "rate": 2.0,
        "throttled": 1,
        "in_flight_peak": 2,
        "round_trip_ms": 41.5,
    }
    assert stored["reject_reasons"]["events"][0] == {
        "field": "user_id",
        "pattern": "'user_id' is missing or null",
        "count": 2,
        "example": "'user_id' is missing or null",
    }
    assert stored["reject_reasons"]["events"][1]["field"] is None
    timeline = stored["timeline"]
    assert timeline["columns"] == [
        "t", "calls", "ok", "refused", "throttled", "failed", "unanswered", "retries", "latency",
    ]  # fmt: skip
    assert [row[:8] for row in timeline["rows"]] == [
        [0, 1, 1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 1, 0, 0, 1],
        [2, 1, 0, 0, 0, 0, 1, 0],
    ]


# --- earlier versions ------------------------------------------------------------------------
def test_the_first_ledger_report_reads_with_defaults():
    document = read_report(json.dumps(LEDGER_FIRST))
    assert document is not None
    assert document.report_version == 0  # written before there were versions
    events = document.streams["events"]
    assert (events.received, events.sent, events.already_sent, events.rejected) == (12, 9, 2, 1)
    assert (events.http_calls, events.retries, events.seconds) == (0, 0, 0.0)  # not kept then
    assert events.pending_retried == 0
    assert document.status == "failed"
    assert document.error == "Pendo answered HTTP 503 for 'events'"
    assert (document.dry_run, document.signal, document.unsent_rows) == (False, None, 0)
    assert (document.http_calls, document.retries, document.calls_in_doubt) == ({"track": 11}, 1, 0)
    assert document.reject_reasons == {}
    assert document.retries_by_cause == {}
    assert document.pacing == {}
    assert document.timeline == TimelineDocument()


def test_reasons_timeline_and_pacing_of_earlier_versions_are_read():
    document = read_report(WITH_PACING)
    assert document is not None
    assert document.streams["users"] == StreamCounts(
        sync="visitor",
        received=4,
        sent=3,
        rejected=1,
        skipped_unknown=2,
        fields_created=1,
        http_calls=3,
        seconds=1.5,
    )
    assert document.unknown_ids == {"users": ["v-9", "v-10"]}
    assert document.reject_reasons == {
        "users": [RejectReason("plan", "'plan' is …", 1, "'plan' is 7")]
    }
    assert (document.signal, document.unsent_rows) == ("SIGTERM", 5)
    assert document.timeline.bucket_seconds == 2
    assert document.timeline.rows == (TimelineRow(0, 3, 2, 0, 1, 0, 0, 1, {20: 2, 25: 1}),)
    assert document.pacing == {"track": Pacing(max_rate=12.5, rate=10.0, throttled=1)}


@pytest.mark.parametrize("stored", [None, "", b"", "not json", "[1, 2]", "42", "null", [], 7])
def test_a_run_without_a_report_has_none(stored):
    assert read_report(stored) is None


def test_a_damaged_or_foreign_report_reads_what_it_can():
    document = read_report(
        {
            "error": "HTTP 403 for key ***",  # what a test plants in the ledger: that alone
            "streams": {
                "events": {"sync": 3, "sent": "7", "rejected": None, "seconds": "x"},
                "bad": 1,
            },
            "unknown_ids": {"users": "v-1", "objects": [1, "two"]},
            "reject_reasons": {"events": [{"pattern": "p", "count": "2"}, "not a reason"]},
            "pacing": {"track": [], "feature": {"max_rate": "fast"}},
            "timeline": {"rows": [[0, 1], [1, 1, 1, 0, 0, 0, 0, 0, [[3, 1]]]]},
            "retries": 1e400,  # Infinity
            "something_newer": {"kept": False},
            "report_version": 99,
        }
    )
    assert document is not None
    assert document.error == "HTTP 403 for key ***"
    assert document.run_id == ""
    assert document.streams == {"events": StreamCounts(sync="?", sent=7)}
    assert document.unknown_ids == {"objects": ["1", "two"]}
    assert document.reject_reasons == {"events": [RejectReason(None, "p", 2, "")]}
    assert document.pacing == {"feature": Pacing()}
    assert [r.t for r in document.timeline.rows] == [1]  # the row it cannot read is left out
    assert document.retries == 0
    assert document.report_version == 99


def test_a_count_renamed_is_read_under_its_new_name_from_older_reports(monkeypatch):
    monkeypatch.setattr(report_document, "RENAMED_COUNTS", {"delivered": "sent"})
    document = read_report({"streams": {"events": {"sync": "events", "delivered": 4}}})
    assert document is not None
    assert document.streams["events"].sent == 4
    newer = read_report({"streams": {"events": {"delivered": 4, "sent": 5}}})
    assert newer is not None
    assert newer.streams["events"].sent == 5  # a report that has the new name keeps its own


def test_every_optional_count_is_a_stream_count():
    names = {f.name for f in dataclasses.fields(StreamCounts)}
    assert {key for key, _ in OPTIONAL_COUNTS} <= names
    assert set(StreamCounts("events").numbers()) == names - {"sync"}


# --- rendering an older report -----------------------------------------------------------------
def table_row(text: str, stream: str) -> list[str]:
    (row,) = [line for line in text.splitlines() if line.startswith(f"{stream} ")]
    return row.split()


def table_header(text: str) -> str:
    (header,) = [line for line in text.splitlines() if line.startswith("stream ")]
    return header


def test_the_first_ledger_report_renders_as_a_table():
    text = render_text(view_of(LEDGER_FIRST))
    assert text.startswith("Run 20260101T000000000-first: failed\n")
    assert "  error: Pendo answered HTTP 503 for 'events'" in text
    assert "no run report" not in text
    header = table_header(text)
    assert re.split(r"\s{2,}", header) == [
        "stream",
        "sync",
        "received",
        "sent",
        "rejected",
        "already sent",
        "HTTP calls",
        "retries",
        "seconds",
    ]
    assert table_row(text, "events") == ["events", "events", "12", "9", "1", "2", "0", "0", "0.0"]
    assert "HTTP:" not in text  # no timeline was kept then
    assert "Retries by stream and cause" not in text


def test_the_first_ledger_report_renders_as_a_page():
    page = render_html(view_of(LEDGER_FIRST))
    assert "<code>20260101T000000000-first</code>" in page
    assert "Error: Pendo answered HTTP 503 for &#x27;events&#x27;" in page
    for key, value in (("received", "12"), ("sent", "9"), ("rejected", "1"), ("calls", "0")):
        assert f'data-k="{key}">{value}<' in page
    assert 'data-k="events:already_sent">2<' in page
    assert 'data-k="events:seconds">0.0<' in page
    assert "No HTTP call was recorded." in page
    assert "No row was rejected." in page


def test_a_stopped_run_of_an_earlier_version_renders_its_signal_reasons_and_calls():
    view = view_of(WITH_PACING)
    text = render_text(view)
    assert "  stopped by SIGTERM: 5 row(s) read stay unsent" in text
    assert table_row(text, "users")[:7] == ["users", "visitor", "4", "3", "1", "2", "1"]
    assert "HTTP: 3 attempts;" in text
    assert "  users: HTTP 429: 1" in text
    assert "'plan' is …" in text  # the reason only the report counted
    page = render_html(view)
    assert "Stopped by SIGTERM: 5 row(s) read stay unsent." in page
    assert 'id="calls-chart"' in page
    assert 'data-k="users:skipped_unknown">2<' in page
    assert "<code>7</code>" in page  # what the reason's pattern masked


def test_a_run_without_a_report_renders_from_its_rows():
    from collections import Counter

    view = view_of(None, outcomes={"events": Counter({"sent": 2, "rejected": 1})})
    assert view.report is None
    text = render_text(view)
    assert "no run report: the run did not finish" in text
    assert table_row(text, "events") == ["events", "?", "2", "1"]
    assert "No run report: the run did not finish" in render_html(view)
