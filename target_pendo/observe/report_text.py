"""A run's report read back from the ledger, as text. A killed run has no report: its counts are
its rows in `sync_rows`. Rejects are grouped by reason from `sync_rows`, plus the rows the
ledger could not key, which only the report counted.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url

from target_pendo.errors import TargetPendoError
from target_pendo.ledger import Ledger
from target_pendo.observe.report import reason_pattern
from target_pendo.observe.report_document import OPTIONAL_COUNTS, ReportDocument, read_report
from target_pendo.observe.timeline import (
    COLUMNS,
    TimelineRow,
    merge_histograms,
    percentile,
    shown_ms,
)
from target_pendo.run.outcomes import RunStatus

MAX_REJECT_GROUPS = 50
LIST_RUNS = 20
_Key = tuple[str, str]  # (stream, reason pattern)


class ReportError(TargetPendoError):
    """The run asked for is not in the ledger (or the ledger has no run yet)."""


@dataclass(frozen=True)
class RejectGroup:
    stream: str
    pattern: str
    count: int
    example: str
    keyless: bool = False  # only in the report: rows the ledger could not key (or a dry run)


@dataclass(frozen=True)
class StreamLine:
    """A stream's sync and counts by name; for a run without a report, `sync_rows` by outcome."""

    sync: str
    counts: Mapping[str, int | float]

    def get(self, key: str) -> int | float:
        return self.counts.get(key, 0)


@dataclass
class RunView:
    run_id: str
    status: str
    started_at: str
    finished_at: str | None
    report: ReportDocument | None  # None: it has none (killed); stored JSON is read too
    ledger: str  # where it was read, password hidden
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)  # sync_rows per stream
    rejects: list[RejectGroup] = field(default_factory=list)
    newer_running: str | None = None

    def __post_init__(self) -> None:
        self.report = read_report(self.report)

    @property
    def document(self) -> ReportDocument:
        return self.report or ReportDocument()

    @property
    def streams(self) -> dict[str, StreamLine]:
        if self.report is not None and self.report.streams:
            return {
                name: StreamLine(c.sync, c.numbers()) for name, c in self.report.streams.items()
            }
        return {name: StreamLine("?", counts) for name, counts in sorted(self.outcomes.items())}

    def total(self, key: str) -> int:
        return sum(int(c.get(key)) for c in self.streams.values())

    def timeline(self) -> tuple[int, list[TimelineRow]]:
        timeline = self.document.timeline
        return timeline.bucket_seconds, list(timeline.rows)


def _ledger_where(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def load_run(ledger: Ledger, url: str, run_id: str | None) -> RunView:
    """The run `run_id` (an id or a unique prefix), or the latest finished run."""
    where = _ledger_where(url)
    newer_running = None
    if run_id:
        rows = ledger.runs(prefix=run_id)
        if not rows:
            raise ReportError(
                f"no run '{run_id}' in the ledger at {where}; `target-pendo report --list` "
                "lists the latest runs"
            )
        if len(rows) > 1:
            ids = ", ".join(r.run_id for r in rows[:5])
            raise ReportError(f"run id '{run_id}' matches {len(rows)} runs ({ids}); give more")
        row = rows[0]
    else:
        latest = ledger.runs(limit=50)
        if not latest:
            raise ReportError(
                f"the ledger at {where} has no run yet: run a sync first (or check "
                "'state_dir' / 'ledger_url' in the config given)"
            )
        row = next((r for r in latest if r.status != RunStatus.RUNNING), latest[0])
        if latest[0].status == RunStatus.RUNNING and latest[0].run_id != row.run_id:
            newer_running = latest[0].run_id
    report = read_report(row.report)
    return RunView(
        run_id=row.run_id,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        report=report,
        ledger=where,
        outcomes=ledger.run_outcomes(row.run_id),
        rejects=group_rejects(ledger.run_reject_reasons(row.run_id), report),
        newer_running=newer_running,
    )


def group_rejects(reasons: Sequence[Any], report: ReportDocument | None) -> list[RejectGroup]:
    """Rejected rows per stream and reason pattern, most first: from `sync_rows`, plus what only
    the report counted (rows without a key the ledger can store, dry runs)."""
    report = read_report(report)  # (its stored JSON is read too)
    counts, examples = _count(
        ((stream, reason_pattern(reason or "")), int(n), " ".join((reason or "").split())[:300])
        for stream, reason, n in reasons
    )
    groups = [RejectGroup(s, p, n, examples[(s, p)]) for (s, p), n in counts.items()]
    tallied, tally_examples = _count(
        ((stream, entry.pattern), entry.count, entry.example)
        for stream, entries in (report.reject_reasons if report else {}).items()
        for entry in entries
    )
    # Only rows beyond what sync_rows holds are "keyless": a report written by another
    # version may group a reason differently, which must not count its rows twice.
    left = Counter[str]()
    for (stream, _), n in [*tallied.items(), *((key, -n) for key, n in counts.items())]:
        left[stream] += n
    for key, n in sorted(tallied.items(), key=lambda item: -item[1]):
        extra = min(n - counts.get(key, 0), left[key[0]])
        if extra > 0:
            left[key[0]] -= extra
            groups.append(RejectGroup(*key, extra, tally_examples[key], keyless=True))
    groups.sort(key=lambda g: (-g.count, g.stream, g.pattern))
    return groups


def _count(rows: Iterable[tuple[_Key, int, str]]) -> tuple[Counter[_Key], dict[_Key, str]]:
    counts: Counter[_Key] = Counter()
    examples: dict[_Key, str] = {}
    for key, n, example in rows:
        counts[key] += n
        examples.setdefault(key, example)
    return counts, examples


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def stream_columns(view: RunView) -> list[tuple[str, str]]:
    """(key, label) of the stream table's columns: the main counts, the others some stream has."""
    if view.report is None:
        found = {o for c in view.outcomes.values() for o in c}
        first = [o for o in ("sent", "rejected") if o in found]
        return [(o, o.replace("_", " ")) for o in [*first, *sorted(found - set(first))]]
    streams = view.streams
    columns = [("received", "received"), ("sent", "sent"), ("rejected", "rejected")]
    for key, label in OPTIONAL_COUNTS:
        if key != "deletes_withheld" and any(c.get(key) for c in streams.values()):
            columns.append((key, label.split(" (")[0]))
    return [*columns, ("http_calls", "HTTP calls"), ("retries", "retries"), ("seconds", "seconds")]


def http_summary(view: RunView) -> dict[str, Any]:
    width, rows = view.timeline()
    totals = {name: sum(getattr(r, name) for r in rows) for name in COLUMNS[1:]}
    histogram = merge_histograms(r.latency for r in rows)
    busiest = max((r.calls for r in rows), default=0) / width
    percentiles = {f"p{q}": percentile(histogram, q) for q in (50, 90, 99)}
    return {**totals, **percentiles, "busiest_rate": busiest}


def _count_text(value: float) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value or 0)


def _ms(value: float | None) -> str:
    return "-" if value is None else shown_ms(value)


def duration(view: RunView) -> str:
    try:
        start = dt.datetime.fromisoformat(view.started_at)
        end = dt.datetime.fromisoformat(view.finished_at or "")
    except (TypeError, ValueError):
        return ""
    seconds = (end - start).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def render_text(view: RunView) -> str:
    report = view.document
    out = [f"Run {view.run_id}: {view.status}"]
    took = duration(view)
    out.append(
        f"  started {view.started_at}, finished {view.finished_at or '-'}"
        + (f" ({took})" if took else "")
        + (", dry run: nothing was sent" if report.dry_run else "")
    )
    if report.error:
        out.append(f"  error: {' '.join(report.error.split())}")
    if report.signal:
        out.append(f"  stopped by {report.signal}: {report.unsent_rows} row(s) read stay unsent")
    if view.report is None:
        out.append(
            "  no run report: the run did not finish (killed?); the counts are its rows in "
            "the ledger's sync_rows"
        )
    if view.newer_running:
        out.append(f"  (run {view.newer_running} is still running; this is the latest finished)")
    out.append("")
    columns = stream_columns(view)
    rows = [
        [name, c.sync, *(_count_text(c.get(key)) for key, _ in columns)]
        for name, c in view.streams.items()
    ]
    if rows:
        header = ["stream", "sync", *(label for _, label in columns)]
        out += _table(header, rows, set(range(2, len(header))))
    else:
        out.append("No stream had rows.")
    http = http_summary(view)
    if http["calls"]:
        out.append("")
        out.append(
            f"HTTP: {http['calls']} attempts; latency p50 {_ms(http['p50'])}, p90 "
            f"{_ms(http['p90'])}, p99 {_ms(http['p99'])}; answered 429: {http['throttled']}, "
            f"5xx: {http['failed']}, other 4xx: {http['refused']}, no answer: "
            f"{http['unanswered']}; retries: {http['retries']}; busiest: "
            f"{http['busiest_rate']:.0f} calls/s"
        )
    causes = report.retries_by_cause
    if causes:
        out.append("Retries by stream and cause:")
        out += [f"  {key}: {n}" for key, n in sorted(causes.items())]
    if view.rejects:
        out.append("")
        out.append(
            "Rejected rows by reason (values masked; each row with its values in "
            "state_dir/rejects/<stream>/<day>.jsonl, and its key in the ledger's sync_rows):"
        )
        groups = view.rejects[:MAX_REJECT_GROUPS]
        table = [[g.stream, str(g.count), g.pattern + (" *" if g.keyless else "")] for g in groups]
        out += ["  " + line for line in _table(["stream", "rows", "reason"], table, {1})]
        if any(g.keyless for g in groups):
            out.append(
                "  * rows without a key the ledger can keep (or a dry run): only in the "
                "rejects files"
            )
        if len(view.rejects) > MAX_REJECT_GROUPS:
            out.append(f"  ... and {len(view.rejects) - MAX_REJECT_GROUPS} more reasons")
    return "\n".join(out) + "\n"


def render_list(ledger: Ledger, url: str) -> str:
    rows = ledger.runs(limit=LIST_RUNS)
    if not rows:
        return f"the ledger at {_ledger_where(url)} has no run yet\n"
    table = [[r.run_id, r.status, r.started_at, r.finished_at or ""] for r in rows]
    return "\n".join(_table(["run", "status", "started", "finished"], table, set())) + "\n"
