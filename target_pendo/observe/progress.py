"""Progress lines while a run goes, stalled or not (docs/operating.md shows them): per stream,
what came in, was sent, rejected, retried, and what it waits for right now; on a terminal, one
live line instead. Facts come from the client (`attempts.CallObserver`), the sinks' drains
(``drains.py``) and the reader's line count.

The monitor thread is a daemon that only reads: it takes short, bounded locks and never one the
SIGTERM handler needs (that handler takes none: it raises). `stop()` waits at most a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from target_pendo.observe.report import StreamCounts
from target_pendo.observe.timeline import CallTimeline, percentile, shown_ms
from target_pendo.pendo.attempts import Attempt

if TYPE_CHECKING:
    from target_pendo.run.context import RunContext

INPUT_IDLE_SECONDS = 2.0  # no input line for this long: say the run waits for the tap
SLOW_ANSWER_SECONDS = 1.0  # a call on the wire this long: say the run waits for Pendo
CALL_RATE_SAMPLES = 6  # the recent call rate is over the last 5 ticks (5 s)
PACED_FRACTION = 0.8  # calling at this share of max_requests_per_second: say it is paced
LIVE_REFRESH_SECONDS = 1.0
STOP_WAIT_SECONDS = 1.0
_CLEAR_LINE = "\r\x1b[2K"

log = logging.getLogger("target_pendo.observe.progress")


def age(seconds: float) -> str:
    """A duration as an operator reads it: `12 s`, `3m05s`, `2h01m`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class StreamActivity:
    on_wire: int = 0
    oldest_on_wire: float = 0.0  # seconds
    # cause -> (calls waiting to retry, how long the longest of them has been retrying)
    waiting: dict[str, tuple[int, float]] = field(default_factory=dict)


class Activity:
    """Attempts on the wire and retry waits, per worker thread (a thread does one call at a
    time, and waits after a retry until its next attempt starts)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._on_wire: dict[int, tuple[float, str]] = {}
        self._waiting: dict[int, tuple[float, str, str]] = {}  # since the call's first retry
        self._retrying_since: dict[int, float] = {}

    def started(self, stream: str | None) -> None:
        ident = threading.get_ident()
        with self._lock:
            if self._waiting.pop(ident, None) is None:
                self._retrying_since.pop(ident, None)  # a new call, not a retry of the last
            self._on_wire[ident] = (self._clock(), stream or "-")

    def ended(self) -> None:
        with self._lock:
            self._on_wire.pop(threading.get_ident(), None)

    def retrying(self, stream: str | None, cause: str) -> None:
        ident = threading.get_ident()
        with self._lock:
            since = self._retrying_since.setdefault(ident, self._clock())
            self._waiting[ident] = (since, stream or "-", cause)

    def clear(self) -> None:
        """The run ended: a call stopped during its retry wait never reports again."""
        with self._lock:
            self._on_wire.clear()
            self._waiting.clear()
            self._retrying_since.clear()

    def snapshot(self) -> dict[str, StreamActivity]:
        now = self._clock()
        out: dict[str, StreamActivity] = {}
        with self._lock:
            wire = list(self._on_wire.values())
            waiting = list(self._waiting.values())
        for started, stream in wire:
            act = out.setdefault(stream, StreamActivity())
            act.on_wire += 1
            act.oldest_on_wire = max(act.oldest_on_wire, now - started)
        for since, stream, cause in waiting:
            act = out.setdefault(stream, StreamActivity())
            n, longest = act.waiting.get(cause, (0, 0.0))
            act.waiting[cause] = (n + 1, max(longest, now - since))
        return out


class LiveLine:
    """One status line at the bottom of a terminal, rewritten in place; log lines through
    `handler` clear and redraw it. Drawn under the handler's lock, taken with a timeout so a
    stuck terminal cannot hold the monitor (or the run's exit) up."""

    def __init__(self, handler: logging.StreamHandler[IO[str]]) -> None:
        self._handler = handler
        self._stream = handler.stream
        self._text = ""
        self._closed = False
        self._plain_emit = handler.emit
        handler.emit = self._emit  # type: ignore[method-assign]

    def _width(self) -> int:
        """Stderr's columns less one (a full line would wrap); stdout is the Singer output."""
        columns = 0
        with contextlib.suppress(AttributeError, OSError, ValueError):
            columns = os.get_terminal_size(self._stream.fileno()).columns
        return max(20, (columns or shutil.get_terminal_size((100, 20)).columns) - 1)

    def _put(self, text: str) -> None:
        """A terminal that went away must not make a log call raise."""
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(text)
            self._stream.flush()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[bool]:
        lock = self._handler.lock
        taken = lock is not None and lock.acquire(timeout=0.5)
        try:
            yield taken
        finally:
            if taken and lock is not None:
                lock.release()

    def _emit(self, record: logging.LogRecord) -> None:
        """Runs under the handler's lock (Handler.handle takes it)."""
        if self._text:
            self._put(_CLEAR_LINE)
        self._plain_emit(record)  # handles its own errors, as logging does
        if self._text:
            self._put(self._text)

    def show(self, text: str) -> None:
        text = text[: self._width()]
        with self._locked() as taken:
            if taken and not self._closed:
                self._text = text
                self._put(_CLEAR_LINE + text)

    def close(self) -> None:
        with self._locked():
            self._closed = True
            self._handler.emit = self._plain_emit  # type: ignore[method-assign]
            if self._text:
                self._text = ""
                self._put(_CLEAR_LINE)


def terminal_handler() -> logging.StreamHandler[IO[str]] | None:
    """The root logger's handler writing to stderr when it is a terminal (never under Meltano)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
            with contextlib.suppress(AttributeError, ValueError):
                if handler.stream.isatty():
                    return handler
    return None


@dataclass
class _StreamMark:
    """A stream at its last progress line."""

    at: float
    done: int = 0
    signature: tuple[int, ...] = ()


class ProgressMonitor:
    """Says where the run is every `interval` seconds, or each second on a terminal's line."""

    def __init__(
        self,
        run: RunContext,
        *,
        interval: float,
        lines_read: Callable[[], int],
        logger: logging.Logger,
        live: LiveLine | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run = run
        self.interval = max(0.0, interval)
        self._lines_read = lines_read
        self._logger = logger
        self._live = live
        self._clock = clock
        self.activity = Activity(clock)
        self.timeline = CallTimeline(clock)
        self._started = self._last_log = self._last_input_at = clock()
        self._log_lock = threading.Lock()
        self._marks: dict[str, _StreamMark] = {}
        self._last_lines = 0
        self._seen_ends = 0  # `drains.ended_count` at the last look
        self._call_samples: deque[tuple[float, dict[str, int]]] = deque(maxlen=CALL_RATE_SAMPLES)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # the share of the input read, when it is a file of known size (``reader.input_fraction``)
        self.input_fraction: Callable[[], float | None] = lambda: None

    @classmethod
    def attach(
        cls,
        run: RunContext,
        *,
        interval: float,
        lines_read: Callable[[], int],
        logger: logging.Logger,
    ) -> ProgressMonitor:
        """Observe a run's client before it sends anything, and start the monitor thread."""
        handler = terminal_handler()
        live = LiveLine(handler) if handler is not None else None
        monitor = cls(run, interval=interval, lines_read=lines_read, logger=logger, live=live)
        run.client.observe(monitor)
        tick = max(0.05, min(LIVE_REFRESH_SECONDS, monitor.interval or LIVE_REFRESH_SECONDS))
        # held weakly: a target dropped without finishing leaves no thread logging for it
        monitor._thread = threading.Thread(
            target=_loop,
            args=(weakref.ref(monitor), monitor._stop, run.drains.wake, tick),
            name="progress",
            daemon=True,
        )
        monitor._thread.start()
        return monitor

    def attempt_started(self, stream: str | None) -> None:
        self.activity.started(stream)

    def attempt_ended(self, attempt: Attempt) -> None:
        self.activity.ended()
        self.timeline.attempt(attempt.status, attempt.seconds)

    def retrying(self, stream: str | None, cause: str) -> None:
        self.activity.retrying(stream, cause)
        self.timeline.retry()

    def stop(self) -> None:
        self._stop.set()
        self.run.drains.wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_WAIT_SECONDS)
        if self._live is None and self.run.drains.ended_count != self._seen_ends:
            self.maybe_log()  # the line a batch's end was due, had the thread woken before stop
        if self._live is not None:
            self._live.close()
            self._live = None
        self.activity.clear()

    def tick(self) -> None:
        """One look at the run: note input lines and calls, refresh the live line or log."""
        now = self._clock()
        self._seen_ends = self.run.drains.ended_count
        lines = self._lines_read()
        if lines != self._last_lines:
            self._last_lines = lines
            self._last_input_at = now
        self._call_samples.append((now, self.run.client.stats.snapshot().stream_calls))
        live = self._live  # stop() may clear it meanwhile: a closed line draws nothing
        if live is not None:
            live.show(self.live_text())
        else:
            self.maybe_log()

    def call_rate(self, stream: str | None = None) -> float:
        """Attempts per second over the last few seconds: of one stream, or of all."""
        if len(self._call_samples) < 2:
            return 0.0
        (t0, first), (t1, last) = self._call_samples[0], self._call_samples[-1]
        if t1 <= t0:
            return 0.0
        if stream is None:
            return (sum(last.values()) - sum(first.values())) / (t1 - t0)
        return (last.get(stream, 0) - first.get(stream, 0)) / (t1 - t0)

    def maybe_log(self) -> None:
        """Log the progress lines if `interval` has passed (and no other thread is)."""
        if self._clock() - self._last_log < self.interval or not self._log_lock.acquire(False):
            return
        try:
            now = self._clock()
            if now - self._last_log < self.interval:
                return
            for line in self.lines(now):
                self._logger.info("%s", line)
            self._last_log = now
        finally:
            self._log_lock.release()

    def _setting(self, name: str) -> Any:
        return getattr(getattr(self.run, "settings", None), name, None)

    def _rows(self) -> dict[str, tuple[int, int]]:
        """(rows received, rows not yet settled) per stream, over its sinks."""
        rows: dict[str, tuple[int, int]] = {}
        for sink in list(self.run.sinks):
            received, unsettled = rows.get(sink.stream_name, (0, 0))
            rows[sink.stream_name] = (
                received + sink.received_rows,
                unsettled + max(0, sink.received_rows - sink.settled_rows),
            )
        return rows

    def _input_clause(self, now: float, short: bool = False) -> str:
        idle = now - self._last_input_at
        if self.run.input_complete:
            return "input complete"
        if not self._last_lines:
            if short:
                return f"nothing read from the tap yet ({age(idle)})"
            return f"waiting for input from the tap (nothing read in {age(idle)})"
        if idle >= INPUT_IDLE_SECONDS:
            if short:
                return f"tap idle {age(idle)}"
            return f"waiting for input from the tap (no line for {age(idle)})"
        return "reading input"

    def waiting_for(
        self,
        stream: str,
        act: StreamActivity | None,
        unsettled: int,
        now: float,
        short: bool = False,
    ) -> str:
        """What a stream waits for right now (`short`: for the terminal's one line)."""
        act = act or StreamActivity()
        waits = sorted(act.waiting.items())
        budget = self._setting("max_retry_seconds")
        if short:
            retry_part = ", ".join(f"retry after {c}: {n} ({age(t)})" for c, (n, t) in waits)
        elif waits:
            retry_part = "waiting to retry: " + "; ".join(
                f"{plural(n, 'call')} after {cause}, the longest retrying for {age(longest)}"
                for cause, (n, longest) in waits
            )
            retry_part += f" (max_retry_seconds={budget:g})" if budget else ""
        else:
            retry_part = ""
        rate = self.call_rate(stream)
        if act.on_wire and (act.oldest_on_wire >= SLOW_ANSWER_SECONDS or not rate):
            oldest = age(act.oldest_on_wire)
            if short:
                text = f"Pendo: {act.on_wire} in flight, oldest {oldest}"
                return ", ".join(filter(None, [text, retry_part]))
            text = f"waiting for Pendo: {plural(act.on_wire, 'call')} in flight, oldest {oldest}"
            return "; ".join(filter(None, [text, retry_part]))
        if retry_part:
            return retry_part
        if rate > 0:
            limit = self._setting("max_requests_per_second")
            paced = bool(limit) and self.call_rate() >= PACED_FRACTION * limit
            if short:
                return f"sending {rate:.0f} calls/s" + (" (paced)" if paced else "")
            return (
                f"sending to Pendo at {rate:.0f} calls/s"
                + (f" (paced by max_requests_per_second={limit:g})" if paced else "")
                + (f", {plural(act.on_wire, 'call')} in flight" if act.on_wire else "")
            )
        draining, rows = self.run.drains.current(stream)
        if draining:
            if short:
                return f"batch of {plural(rows, 'row')}"
            return f"working on a batch of {plural(rows, 'row')} (mapping, ledger)"
        clause = self._input_clause(now, short)
        if unsettled and not self.run.input_complete:
            if short:
                return f"{clause}, {unsettled} held"
            return f"{plural(unsettled, 'row')} held for the next batch; {clause}"
        return clause

    def lines(self, now: float | None = None) -> list[str]:
        """A line per stream that moved or is busy; else one for the run (a stall still shows)."""
        now = self._clock() if now is None else now
        stats = self.run.client.stats.snapshot()
        activity = self.activity.snapshot()
        out = []
        for stream, (received, unsettled) in self._rows().items():
            c = self.run.report.counts(stream)
            done = _done(c)
            retries = stats.stream_retries.get(stream, 0)
            act = activity.get(stream)
            signature = (received, done, retries)
            mark = self._marks.get(stream) or _StreamMark(self._started)
            busy = bool(unsettled or (act and (act.on_wire or act.waiting)))
            if mark.signature == signature and not busy:
                continue  # settled and unchanged since its last line
            window = max(now - mark.at, 1e-9)
            causes = [
                f"{c}: {n}" for (s, c), n in sorted(stats.retry_causes.items()) if s == stream
            ]
            why = f" ({', '.join(causes)})" if causes else ""
            out.append(
                f"Progress of stream '{stream}': {received} received, {c.sent} sent, "
                f"{c.rejected} rejected, "
                + "".join(f"{o}, " for o in c.extra_counts())
                + f"{retries} {'retry' if retries == 1 else 'retries'}{why}; "
                f"{(done - mark.done) / window:.0f} rows/s in the last {age(window)}; "
                + self.waiting_for(stream, act, unsettled, now)
            )
            self._marks[stream] = _StreamMark(now, done, signature)
        if not out:
            out.append(
                f"Progress: {self._last_lines} input lines read, no row waiting to be sent; "
                + self._input_clause(now)
            )
        estimate = self.estimate(now)
        if estimate is not None:
            share, left = estimate
            out.append(
                f"Progress of the run: {share:.0%} of the input's rows settled"
                + (f", about {age(left)} left" if left is not None else "")
            )
        return out

    def estimate(self, now: float) -> tuple[float, float | None] | None:
        """(share of the input's rows settled, seconds left), when the input's size is known: a
        file (rows estimated from the share of its bytes read), or input read to its end."""
        lines = self._lines_read()
        rows = self._rows()
        if self.run.input_complete:  # the rows are all in: their number is known
            total = float(sum(received for received, _ in rows.values()))
        else:
            fraction = self.input_fraction()
            if not fraction or not lines:
                return None
            total = lines / fraction
        if total <= 0:
            return None
        done = sum(_done(self.run.report.counts(s)) for s in rows)
        share = min(1.0, done / total)
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = max(0.0, total - done) / rate if rate > 0 else None
        return share, left

    def live_text(self) -> str:
        """The terminal's line: what the busiest stream waits for first, then totals and rate."""
        now = self._clock()
        stats = self.run.client.stats.snapshot()
        activity = self.activity.snapshot()
        received = sent = rejected = done = 0
        focus = ""
        for stream, (r, unsettled) in self._rows().items():
            c = self.run.report.counts(stream)
            received += r
            sent += c.sent
            rejected += c.rejected
            done += _done(c)
            act = activity.get(stream)
            if (act is not None and (act.on_wire or act.waiting)) or not focus:
                focus = f"{stream}: " + self.waiting_for(stream, act, unsettled, now, short=True)
        elapsed = now - self._started
        rate = done / max(elapsed, 1e-9)
        counts = f"{received} received, {sent} sent, {rejected} rejected"
        if stats.retries:
            counts += f", {stats.retries} retries"
        wait = focus or self._input_clause(now, short=True)
        text = f"target-pendo {age(elapsed)} | {wait} | {counts} | {rate:.0f} rows/s"
        estimate = self.estimate(now)
        if estimate is not None:
            share, left = estimate
            text += f" | {share:.0%}" + (f", {age(left)} left" if left is not None else "")
        return text

    def retry_summary(self) -> list[str]:
        stats = self.run.client.stats.snapshot()
        return [
            f"Retries of stream '{stream}' after {cause}: {n}"
            if stream != "-"
            else f"Retries of calls outside any stream after {cause}: {n}"
            for (stream, cause), n in sorted(stats.retry_causes.items())
        ]

    def latency_summary(self) -> str:
        histogram = self.timeline.latency()
        values = [(q, percentile(histogram, q)) for q in (50, 90, 99)]
        return ", ".join(f"p{q} {shown_ms(ms)}" for q, ms in values if ms is not None)


def _loop(
    ref: weakref.ref[ProgressMonitor], stop: threading.Event, wake: threading.Event, tick: float
) -> None:
    while True:
        wake.wait(tick)
        wake.clear()
        if stop.is_set():
            return
        monitor = ref()
        if monitor is None:
            return
        try:
            monitor.tick()
        except Exception:  # progress must never hurt the run
            log.debug("progress tick failed", exc_info=True)
        del monitor


def _done(c: StreamCounts) -> int:
    """Rows of a stream with their outcome (sent, rejected, or nothing to send)."""
    settled = c.sent + c.already_sent + c.unchanged + c.superseded + c.rejected
    return settled + c.skipped + c.skipped_unknown
