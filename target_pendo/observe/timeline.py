"""A compact record of a run's HTTP attempts over time, stored in the run report: each attempt only
bumps counters in its one-second bucket (a row per call would be a million rows for a large
sync), latency in a geometric histogram (slots 25 % wide). Past MAX_BUCKETS, buckets merge
pairwise (2 s, 4 s, ...), so the record stays under ~100 KB.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_BUCKETS = 1200
LATENCY_RATIO = 1.25
LATENCY_SLOTS = 96  # 1.25**95 ms is about 19 minutes: more than the longest timeout allowed
COLUMNS = ("t", "calls", "ok", "refused", "throttled", "failed", "unanswered", "retries")


def latency_slot(ms: float) -> int:
    """The histogram slot of a latency: slot i holds (1.25**(i-1), 1.25**i] ms, slot 0 <= 1 ms."""
    if ms <= 1.0:
        return 0
    return min(LATENCY_SLOTS - 1, math.ceil(math.log(ms) / math.log(LATENCY_RATIO)))


def slot_ms(slot: int) -> float:
    """A latency to show for a slot: the geometric middle of its bounds (1 ms for slot 0)."""
    return 1.0 if slot <= 0 else LATENCY_RATIO ** (slot - 0.5)


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-th percentile (0..100) of a latency histogram, in ms; None when it is empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(total * q / 100))
    seen = 0
    for slot in sorted(histogram):
        seen += histogram[slot]
        if seen >= rank:
            return slot_ms(slot)
    return slot_ms(max(histogram))


def merge_histograms(histograms: Iterable[Mapping[int, int]]) -> Counter[int]:
    total: Counter[int] = Counter()
    for h in histograms:
        total.update(h)
    return total


def shown_ms(ms: float) -> str:
    """A latency as the run's end and `target-pendo report` show it: `40 ms`, `12.5 s`."""
    return f"{ms / 1000:.1f} s" if ms >= 10_000 else f"{ms:.0f} ms"


@dataclass
class TimelineRow:
    """One time bucket: counted into by a CallTimeline, or read back from a stored report."""

    t: int = 0  # the bucket's start, in seconds from the run's start
    calls: int = 0
    ok: int = 0  # 2xx
    refused: int = 0  # 4xx other than 429: a row or call refused, or a fatal answer
    throttled: int = 0  # 429
    failed: int = 0  # 5xx (and 3xx, which stop the run)
    unanswered: int = 0  # no answer: timeout, reset, refused connection
    retries: int = 0
    latency: dict[int, int] = field(default_factory=dict)  # latency_slot -> attempts

    def add(self, other: TimelineRow) -> None:
        for name in COLUMNS[1:]:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency = dict(merge_histograms([self.latency, other.latency]))


class CallTimeline:
    """Thread-safe; fed by every HTTP attempt's end and every retry (see progress.py)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._t0 = clock()
        self._started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._width = 1
        self._buckets: dict[int, TimelineRow] = {}
        self._lock = threading.Lock()

    def _bucket(self) -> TimelineRow:
        """The bucket for now, merging pairwise past MAX_BUCKETS; call with the lock held."""
        index = int((self._clock() - self._t0) // self._width)
        while index >= MAX_BUCKETS:
            self._width *= 2
            merged: dict[int, TimelineRow] = {}
            for old, bucket in self._buckets.items():
                merged.setdefault(old // 2, TimelineRow()).add(bucket)
            self._buckets = merged
            index //= 2
        return self._buckets.setdefault(index, TimelineRow())

    def attempt(self, status: int | None, seconds: float) -> None:
        """One HTTP attempt ended: with Pendo's status, or None when it got no answer."""
        slot = latency_slot(seconds * 1000)
        with self._lock:
            bucket = self._bucket()
            bucket.calls += 1
            if status is None:
                bucket.unanswered += 1
            elif status == 429:
                bucket.throttled += 1
            elif 200 <= status < 300:
                bucket.ok += 1
            elif 400 <= status < 500:
                bucket.refused += 1
            else:
                bucket.failed += 1
            bucket.latency[slot] = bucket.latency.get(slot, 0) + 1

    def retry(self) -> None:
        with self._lock:
            self._bucket().retries += 1

    def latency(self) -> Counter[int]:
        with self._lock:
            return merge_histograms(b.latency for b in self._buckets.values())

    def document(self) -> TimelineDocument:
        with self._lock:
            rows = tuple(
                dataclasses.replace(b, t=index * self._width, latency=dict(b.latency))
                for index, b in sorted(self._buckets.items())
            )
            return TimelineDocument(self._started_at, self._width, rows)

    def as_dict(self) -> dict[str, Any]:
        return self.document().as_dict()


@dataclass(frozen=True)
class TimelineDocument:
    """A run's timeline as its report stores it (`timeline`) and reads it back."""

    started_at: str = ""
    bucket_seconds: int = 1
    rows: tuple[TimelineRow, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "bucket_seconds": self.bucket_seconds,
            "latency_slots": f"slot i holds latencies up to {LATENCY_RATIO}**i ms",
            "columns": [*COLUMNS, "latency"],
            "rows": [
                [
                    *(getattr(r, name) for name in COLUMNS),
                    sorted([slot, n] for slot, n in r.latency.items()),
                ]
                for r in self.rows
            ],
        }

    @classmethod
    def read(cls, data: Any) -> TimelineDocument:
        """A stored timeline; empty when missing or damaged, an unreadable row left out."""
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            return cls()
        width = data.get("bucket_seconds")
        width = width if isinstance(width, int) and width > 0 else 1
        started = data.get("started_at")
        rows = []
        for raw in data["rows"]:
            try:
                t, calls, ok, refused, throttled, failed, unanswered, retries = (
                    int(x) for x in raw[: len(COLUMNS)]
                )
                latency = {int(slot): int(n) for slot, n in raw[len(COLUMNS)]}
            except (TypeError, ValueError, IndexError):
                continue  # a row this version cannot read: the others still show
            rows.append(
                TimelineRow(t, calls, ok, refused, throttled, failed, unanswered, retries, latency)
            )
        return cls(started if isinstance(started, str) else "", width, tuple(rows))


def read_timeline(data: Any) -> tuple[int, list[TimelineRow]]:
    timeline = TimelineDocument.read(data)
    return timeline.bucket_seconds, list(timeline.rows)
