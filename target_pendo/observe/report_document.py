"""The run report as a typed document: what a run stores (`state_dir/reports/run-<id>.json`,
`sync_runs.report`) and the report command, its page and the alert read back.

`read_report` reads the JSON of every version so far (0: no `report_version` and fewer keys; 1:
the same keys with it), a missing key taking its default; nothing else reads the JSON by its
keys. A count renamed here goes in `RENAMED_COUNTS` too, so older reports keep theirs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from target_pendo.observe.timeline import TimelineDocument
from target_pendo.pendo.api import MAX_PROPERTIES_BYTES
from target_pendo.run.outcomes import REPORTED, Outcome

REPORT_VERSION = 1
# stored name -> current name of a per-stream count renamed since (none has been yet)
RENAMED_COUNTS: dict[str, str] = {}

_OUTCOME_COUNTS = tuple((str(outcome), label) for outcome, label in REPORTED)
_AFTER_UNKNOWN = 1 + next(i for i, (o, _) in enumerate(REPORTED) if o is Outcome.SKIPPED_UNKNOWN)
OPTIONAL_COUNTS: tuple[tuple[str, str], ...] = (  # (count, label) shown only when not zero
    *_OUTCOME_COUNTS[:_AFTER_UNKNOWN],
    ("skipped", "skipped (unmapped)"),  # rows of streams no spec maps, beside the unknown ids
    *_OUTCOME_COUNTS[_AFTER_UNKNOWN:],
    ("old_events", "older than 7 days"),
    ("large_properties", f"properties over {MAX_PROPERTIES_BYTES} bytes"),
    ("fields_created", "fields created"),
    ("deletes_withheld", "deletes withheld (full-table sync not seen complete)"),
    ("pending_retried", "retried from pending"),
    ("pending_sent", "now sent"),
    ("pending_left", "still pending"),
    ("pending_refused", "refused from pending"),
    ("pending_expired", "expired from pending"),
    ("pending_invalidated", "pending dropped (mapping changed or left the source)"),
)


@dataclass
class StreamCounts:
    sync: str
    received: int = 0
    sent: int = 0
    already_sent: int = 0
    unchanged: int = 0
    superseded: int = 0
    in_doubt: int = 0
    rejected: int = 0
    skipped: int = 0
    skipped_unknown: int = 0
    cleared: int = 0
    deleted: int = 0
    old_events: int = 0
    large_properties: int = 0
    fields_created: int = 0
    deletes_withheld: int = 0
    pending_retried: int = 0  # rows sent again from the pending queue (no row from the tap)
    pending_sent: int = 0  # of those, the ones Pendo took this time
    pending_left: int = 0  # of those, the ones still waiting
    pending_refused: int = 0  # of those, the ones Pendo refused for good (out of the queue)
    pending_expired: int = 0  # dropped from the queue after retry_pending_days
    pending_invalidated: int = 0  # dropped: the stream is mapped differently now, or left
    http_calls: int = 0
    retries: int = 0
    seconds: float = 0.0

    def extra_counts(self) -> list[str]:
        """The non-zero counts a progress line or an alert adds to received, sent, rejected."""
        label = dict(OPTIONAL_COUNTS)
        keys = ("already_sent", "unchanged", "skipped_unknown", "pending_retried", "pending_sent")
        return [f"{label[key]} {n}" for key in keys if (n := getattr(self, key))]

    def numbers(self) -> dict[str, int | float]:
        return {name: n for name, n in dataclasses.asdict(self).items() if name != "sync"}

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> StreamCounts:
        """A stream's stored counts; one it lacks is 0, one under an older name is renamed."""
        data = {**{new: data[old] for old, new in RENAMED_COUNTS.items() if old in data}, **data}
        return _read_numbers(cls, data, sync=_text(data.get("sync"), "?"))


@dataclass(frozen=True)
class RejectReason:
    """Rows of a stream rejected for one reason pattern (report.reason_pattern)."""

    field: str | None  # the rejected column, when the reason names one
    pattern: str
    count: int
    example: str  # the first such reason, redacted, cut to report.MAX_EXAMPLE_CHARS

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> RejectReason:
        column = data.get("field")
        return cls(
            field=str(column) if column else None,
            pattern=_text(data.get("pattern"), ""),
            count=_number(data.get("count"), 0),
            example=_text(data.get("example"), ""),
        )


@dataclass(frozen=True)
class Pacing:
    """How one endpoint's calls were paced (pendo.ratelimit)."""

    max_rate: float = 0.0  # calls per second reached
    rate: float = 0.0  # calls per second allowed at the end
    throttled: int = 0  # calls answered 429
    in_flight_peak: int = 0  # (not in reports before calls in flight were paced)
    round_trip_ms: float = 0.0

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Pacing:
        return _read_numbers(cls, data)


@dataclass(frozen=True)
class ReportDocument:
    """One run's report: TargetPendo.finish gives the run's end, RunReport.document the counts."""

    run_id: str = ""
    started_at: str = ""
    finished_at: str = ""
    streams: dict[str, StreamCounts] = field(default_factory=dict)
    unknown_ids: dict[str, list[str]] = field(default_factory=dict)  # the first ones listed
    reject_reasons: dict[str, list[RejectReason]] = field(default_factory=dict)  # most first
    status: str = ""  # outcomes.RunStatus
    dry_run: bool = False
    error: str | None = None  # redacted
    signal: str | None = None  # the signal that stopped the run
    unsent_rows: int = 0  # rows read but not settled when it stopped
    http_calls: dict[str, int] = field(default_factory=dict)  # per endpoint
    retries: int = 0
    retries_by_cause: dict[str, int] = field(default_factory=dict)  # "<stream>: <cause>"
    calls_in_doubt: int = 0  # attempts that got no answer
    pacing: dict[str, Pacing] = field(default_factory=dict)  # per endpoint
    timeline: TimelineDocument = field(default_factory=TimelineDocument)
    report_version: int = REPORT_VERSION  # the version it was stored as (0: before versions)

    def as_dict(self) -> dict[str, Any]:
        """The stored object: `report_version` first, then every earlier version's keys in order."""
        stored = dataclasses.asdict(dataclasses.replace(self, timeline=TimelineDocument()))
        stored.update(report_version=REPORT_VERSION, timeline=self.timeline.as_dict())
        return {"report_version": REPORT_VERSION, **stored}

    def lines(self) -> list[str]:
        out = []
        prefix, sent, calls = (
            ("dry run, nothing sent: ", "would send", "calls recorded")
            if self.dry_run
            else ("", "sent", "HTTP calls")
        )
        for name, c in self.streams.items():
            always = f"received {c.received}, {sent} {c.sent}, rejected {c.rejected}"
            optional = [f"{label} {n}" for key, label in OPTIONAL_COUNTS if (n := getattr(c, key))]
            http = f"{c.http_calls} {calls}, {c.retries} retries, {c.seconds:.1f} s"
            out.append(
                f"{prefix}stream '{name}' ({c.sync}): " + ", ".join([always, *optional, http])
            )
        return out


def read_report(stored: object) -> ReportDocument | None:
    """A stored report from its JSON text, parsed object, or a document; a value of the wrong
    kind takes its default. None for a killed run or text that is not a JSON object."""
    if isinstance(stored, ReportDocument):
        return stored
    if isinstance(stored, str | bytes):
        try:
            stored = json.loads(stored) if stored else None
        except ValueError:
            return None
    if not isinstance(stored, Mapping):
        return None
    data: Mapping[str, Any] = stored
    return ReportDocument(
        run_id=_text(data.get("run_id"), ""),
        started_at=_text(data.get("started_at"), ""),
        finished_at=_text(data.get("finished_at"), ""),
        streams=_objects(data.get("streams"), StreamCounts.read),
        unknown_ids={
            name: [str(i) for i in ids]
            for name, ids in _entries(data.get("unknown_ids"), list).items()
        },
        reject_reasons={
            stream: [RejectReason.read(r) for r in reasons if isinstance(r, Mapping)]
            for stream, reasons in _entries(data.get("reject_reasons"), list).items()
        },
        status=_text(data.get("status"), ""),
        dry_run=bool(data.get("dry_run")),
        error=_optional_text(data.get("error")),
        signal=_optional_text(data.get("signal")),
        unsent_rows=_number(data.get("unsent_rows"), 0),
        http_calls=_numbers(data.get("http_calls")),
        retries=_number(data.get("retries"), 0),
        retries_by_cause=_numbers(data.get("retries_by_cause")),
        calls_in_doubt=_number(data.get("calls_in_doubt"), 0),
        pacing=_objects(data.get("pacing"), Pacing.read),
        timeline=TimelineDocument.read(data.get("timeline")),
        report_version=_number(data.get("report_version"), 0),
    )


_N = TypeVar("_N", int, float)
_T = TypeVar("_T")
_D = TypeVar("_D", StreamCounts, Pacing)


def _number(value: Any, default: _N) -> _N:
    if isinstance(value, bool | int | float | str):
        try:
            return type(default)(value)
        except (ValueError, OverflowError):
            pass
    return default


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _read_numbers(cls: type[_D], data: Mapping[str, Any], **given: Any) -> _D:
    numbers: dict[str, Any] = {
        f.name: _number(data.get(f.name), f.default)
        for f in dataclasses.fields(cls)
        if isinstance(f.default, int | float)
    }
    return cls(**given, **numbers)


def _entries(value: Any, kind: type[Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): entry for key, entry in value.items() if isinstance(entry, kind)}


def _objects(value: Any, read: Callable[[Mapping[str, Any]], _T]) -> dict[str, _T]:
    return {key: read(entry) for key, entry in _entries(value, Mapping).items()}


def _numbers(value: Any) -> dict[str, int]:
    return {key: _number(n, 0) for key, n in _entries(value, object).items()}
