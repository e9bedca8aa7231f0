"""Per-stream counts for the end-of-run summary (stderr and `state_dir/reports/`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_LISTED = 1000
_OPTIONAL_COUNTS = (
    ("already_sent", "already sent"),
    ("unchanged", "unchanged"),
    ("superseded", "superseded in the batch"),
    ("skipped_unknown", "unknown ids"),
    ("skipped", "skipped (unmapped)"),
    ("cleared", "cleared"),
    ("deleted", "deleted"),
    ("in_doubt", "in doubt (resent after a crash)"),
    ("old_events", "older than 7 days"),
    ("large_properties", "properties over 512 bytes"),
    ("fields_created", "fields created"),
    ("deletes_withheld", "deletes withheld (full-table sync not seen complete)"),
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
    http_calls: int = 0
    retries: int = 0
    seconds: float = 0.0


@dataclass
class RunReport:
    """Counters are bumped from sink threads; one lock keeps them exact."""

    run_id: str
    started_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    streams: dict[str, StreamCounts] = field(default_factory=dict)
    unknown_ids: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _stream(self, name: str, sync: str) -> StreamCounts:
        """The stream's counts, created on first use; call with the lock held."""
        counts = self.streams.get(name)
        if counts is None:
            counts = self.streams[name] = StreamCounts(sync)
        return counts

    def add(self, name: str, sync: str, **increments: int) -> None:
        with self._lock:
            counts = self._stream(name, sync)
            for key, value in increments.items():
                setattr(counts, key, getattr(counts, key) + value)

    def set_http(self, calls: dict[str, int], retries: dict[str, int]) -> None:
        """Per-stream HTTP counts, from the client's stats at the end of the run."""
        with self._lock:
            for name, counts in self.streams.items():
                counts.http_calls = calls.get(name, 0)
                counts.retries = retries.get(name, 0)

    def over_rejected(self, fraction: float) -> list[str]:
        """Streams whose rejected rows are more than `fraction` of the rows they received."""
        with self._lock:
            return [
                f"'{name}' ({c.rejected} of {c.received})"
                for name, c in sorted(self.streams.items())
                if c.received and c.rejected / c.received > fraction
            ]

    def add_seconds(self, name: str, sync: str, seconds: float) -> None:
        with self._lock:
            counts = self._stream(name, sync)
            counts.seconds = round(counts.seconds + seconds, 3)

    def counts(self, name: str) -> StreamCounts:
        """A copy of one stream's counts."""
        with self._lock:
            return dataclasses.replace(self.streams.get(name) or StreamCounts(sync=""))

    def add_unknown(self, name: str, sync: str, ids: list[str]) -> None:
        """Unknown ids are counted; the first MAX_LISTED per stream are listed in the report
        (all of them are in `state_dir/unknown/<stream>.jsonl`)."""
        with self._lock:
            counts = self._stream(name, sync)
            counts.skipped_unknown += len(ids)
            listed = self.unknown_ids.setdefault(name, [])
            listed.extend(ids[: max(0, MAX_LISTED - len(listed))])

    def as_dict(self, extra: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {
                "run_id": self.run_id,
                "started_at": self.started_at,
                "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "streams": {name: asdict(c) for name, c in sorted(self.streams.items())},
                "unknown_ids": {name: list(ids) for name, ids in sorted(self.unknown_ids.items())},
                **extra,
            }

    def write(
        self, state_dir: str | Path, extra: dict[str, Any], redact: Callable[[str], str] = str
    ) -> Path:
        data = self.as_dict(extra)
        path = Path(state_dir) / "reports" / f"run-{self.run_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(json.dumps(data, indent=2)) + "\n")
        return path

    def lines(self, extra: dict[str, Any]) -> list[str]:
        data = self.as_dict(extra)
        out = []
        dry = bool(extra.get("dry_run"))
        sent = "would send" if dry else "sent"
        for name, c in data["streams"].items():
            always = f"received {c['received']}, {sent} {c['sent']}, rejected {c['rejected']}"
            optional = [f"{label} {c[key]}" for key, label in _OPTIONAL_COUNTS if c[key]]
            http = f"{c['http_calls']} HTTP calls, {c['retries']} retries, {c['seconds']:.1f} s"
            prefix = "dry run, nothing sent: " if dry else ""
            out.append(
                f"{prefix}stream '{name}' ({c['sync']}): " + ", ".join([always, *optional, http])
            )
        return out
