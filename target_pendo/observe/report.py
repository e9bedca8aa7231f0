"""The run's counts as they happen (stored as a ReportDocument), and its reject reasons grouped
by pattern: reasons quote row values, so `reason_pattern` masks quoted text that is not a plain
name and numbers (not HTTP statuses), and rows of one cause share one pattern.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from target_pendo import private
from target_pendo.observe.report_document import RejectReason, ReportDocument, read_report
from target_pendo.observe.report_document import StreamCounts as StreamCounts
from target_pendo.run.outcomes import Outcome

MAX_LISTED = 1000
MAX_PATTERNS = 50  # reject reason patterns kept per stream (the rest are counted as "other")
MAX_PATTERN_CHARS = 200
MAX_EXAMPLE_CHARS = 300
OTHER_REASONS = "(other reasons)"
MASK = "…"

# a quote opens after a non-word character and closes before one: "stream's" is not a quote
_QUOTED = re.compile(r"(?<!\w)(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")(?!\w)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# numbers that are part of the words, not values: an HTTP status, ISO 8601
_NUMBER = re.compile(r"(?<![\w.,:])(?<!HTTP )(?<!ISO )-?\d+(?:[.,:]\d+)*")
_DIGITS = re.compile(r"(HTTP \d{3}|ISO 8601)|\d+")
_PENDO_WORDS = re.compile(r"^((?:Pendo\b.*?|.*?)\bHTTP \d{3}\)?|Pendo\b[^:]*?):\s.*$", re.S)


def reason_pattern(reason: str) -> str:
    """`reason` with quoted values masked as `'…'` and numbers (not `HTTP 400`) as `…`."""
    text = mask_quoted_values(" ".join(reason.split()))
    text = _NUMBER.sub(MASK, text)
    if len(text) > MAX_PATTERN_CHARS:
        text = text[: MAX_PATTERN_CHARS - 1] + MASK
    return text


def mask_quoted_values(text: str) -> str:
    """`text` with quoted text other than a plain name masked (an error may quote a value)."""
    return _mask_quoted(text, _NAME.fullmatch)


def _mask_quoted(text: str, kept: Callable[[str], object]) -> str:
    return _QUOTED.sub(lambda m: m.group() if kept(m.group()[1:-1]) else f"'{MASK}'", text)


def alert_reason(pattern: str, field_name: str | None) -> str:
    """A reason pattern as it may leave the machine: only the rejected column's name stays
    quoted, and Pendo's words after its status (which can hold row values) are left out."""
    text = _PENDO_WORDS.sub(lambda m: m.group(1), pattern)
    text = _mask_quoted(text, lambda name: bool(field_name) and name == field_name)
    # every digit run but an HTTP status: dates and ids written without quotes too
    return _DIGITS.sub(lambda m: m.group(1) or MASK, text)[:120]


@dataclass
class RunReport:
    """Counters are bumped from sink threads; one lock keeps them exact."""

    run_id: str
    started_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    streams: dict[str, StreamCounts] = field(default_factory=dict)
    unknown_ids: dict[str, list[str]] = field(default_factory=dict)
    # stream -> (field or "", reason pattern) -> its count and the first reason seen
    reject_patterns: dict[str, dict[tuple[str, str], RejectReason]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, sync: str, **increments: int) -> None:
        with self._lock:
            counts = self.streams.setdefault(name, StreamCounts(sync))
            for key, value in increments.items():
                setattr(counts, key, getattr(counts, key) + value)

    def tally(self, name: str, sync: str, outcomes: Mapping[Outcome, int]) -> None:
        self.add(name, sync, **{outcome.value: n for outcome, n in outcomes.items()})

    def set_http(self, calls: dict[str, int], retries: dict[str, int]) -> None:
        with self._lock:
            for name, counts in self.streams.items():
                counts.http_calls = calls.get(name, 0)
                counts.retries = retries.get(name, 0)

    def over_rejected(self, fraction: float) -> list[str]:
        with self._lock:
            return [
                f"'{name}' ({c.rejected} of {c.received})"
                for name, c in sorted(self.streams.items())
                if c.received and c.rejected / c.received > fraction
            ]

    def rejected(self) -> dict[str, int]:
        with self._lock:
            return {name: c.rejected for name, c in sorted(self.streams.items()) if c.rejected}

    def add_seconds(self, name: str, sync: str, seconds: float) -> None:
        with self._lock:
            counts = self.streams.setdefault(name, StreamCounts(sync))
            counts.seconds = round(counts.seconds + seconds, 3)

    def counts(self, name: str) -> StreamCounts:
        with self._lock:
            return dataclasses.replace(self.streams.get(name) or StreamCounts(sync=""))

    def list_unknown(self, name: str, ids: list[str]) -> None:
        """List the first MAX_LISTED per stream (all are in `state_dir/unknown/`)."""
        with self._lock:
            listed = self.unknown_ids.setdefault(name, [])
            listed.extend(ids[: max(0, MAX_LISTED - len(listed))])

    def add_reject_reason(self, stream: str, field_name: str | None, reason: str) -> None:
        """Count a rejected row under its reason's pattern (`reason` already redacted)."""
        key = (field_name or "", reason_pattern(reason))
        example = " ".join(reason.split())[:MAX_EXAMPLE_CHARS]
        with self._lock:
            patterns = self.reject_patterns.setdefault(stream, {})
            if key not in patterns and len(patterns) >= MAX_PATTERNS:
                key = ("", OTHER_REASONS)
            seen = patterns.get(key) or RejectReason(key[0] or None, key[1], 0, example)
            patterns[key] = dataclasses.replace(seen, count=seen.count + 1)

    def reject_reasons(self) -> dict[str, list[RejectReason]]:
        with self._lock:
            return {
                stream: [r for _, r in sorted(patterns.items(), key=lambda i: (-i[1].count, i[0]))]
                for stream, patterns in sorted(self.reject_patterns.items())
            }

    def document(self, end: ReportDocument) -> ReportDocument:
        """`end` (what TargetPendo.finish knows) with this report's ids, times and counts."""
        reasons = self.reject_reasons()
        with self._lock:
            return dataclasses.replace(
                end,
                run_id=self.run_id,
                started_at=self.started_at,
                finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                streams={name: dataclasses.replace(c) for name, c in sorted(self.streams.items())},
                unknown_ids={name: list(ids) for name, ids in sorted(self.unknown_ids.items())},
                reject_reasons=reasons,
            )

    def as_dict(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        """The stored JSON object now, the run's end read from `extra`."""
        return self.document(read_report(extra) or ReportDocument()).as_dict()

    def path(self, state_dir: str | Path) -> Path:
        return Path(state_dir) / "reports" / f"run-{self.run_id}.json"

    def write(
        self, state_dir: str | Path, document: ReportDocument, redact: Callable[[str], str] = str
    ) -> Path:
        path = self.path(state_dir)
        private.write_text(path, redact(json.dumps(document.as_dict(), indent=2)) + "\n")
        return path
