"""Progress while a run goes, stalled or not: what it received, sent, rejected and retried, its
rate, and what it waits for (the tap, Pendo's answers, a retry); a live line on a terminal;
the per-second call timeline kept for the report; the monitor never in the way of a stop."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from target_pendo.observe.drains import Drains
from target_pendo.observe.progress import Activity, ProgressMonitor, age
from target_pendo.observe.report import RunReport
from target_pendo.observe.timeline import MAX_BUCKETS, CallTimeline, percentile, read_timeline
from target_pendo.pendo.transport import CallStats
from target_pendo.sinks.base import PendoSink

from ..singer import record, run_target, schema, state, target_cmd_with_progress_every

STREAM = "events"
SPEC = {"event_name": "Progress Test", "visitor_id_column": "user_id"}
# The CLI with progress every half second instead of every 30 s.
FAST_PROGRESS_CMD = target_cmd_with_progress_every(0.5)


def events_config(base: dict, **extra: Any) -> dict:
    return {**base, "streams": {STREAM: SPEC}, **extra}


def row_lines(start: int, n: int) -> list[str]:
    return [record(STREAM, {"id": i, "user_id": f"u-{i}"}) for i in range(start, start + n)]


class FeedingCLI:
    """`target-pendo --config FILE` as a subprocess fed line by line, like a tap that can
    pause; stderr is collected as it comes."""

    def __init__(
        self,
        config: dict,
        tmp_path: Path,
        *,
        cmd: list[str] | None = None,
        env: dict[str, str] | None = None,
        stderr: Any = subprocess.PIPE,
    ) -> None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        self.proc = subprocess.Popen(
            [*(cmd or FAST_PROGRESS_CMD), "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )
        self.err: list[str] = []
        self.out: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out))]
        if self.proc.stderr is not None:
            self._threads.append(
                threading.Thread(target=self._read, args=(self.proc.stderr, self.err))
            )
        for t in self._threads:
            t.daemon = True
            t.start()

    @staticmethod
    def _read(pipe: Any, into: list[str]) -> None:
        for raw in iter(pipe.readline, b""):
            into.append(raw.decode("utf-8", "replace"))

    def send(self, lines: list[str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(("\n".join(lines) + "\n").encode())
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.err):
                if text in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no stderr line with {text!r}:\n{''.join(self.err)}")

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.err)


# --- the phrases --------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_monitor(clock: FakeClock, lines_read: int = 0) -> ProgressMonitor:
    run: Any = SimpleNamespace(
        run_id="r-1",
        sinks=[],
        report=RunReport(run_id="r-1"),
        input_complete=False,
        client=SimpleNamespace(stats=CallStats()),
        drains=Drains(),
    )
    return ProgressMonitor(
        run, interval=30, lines_read=lambda: lines_read, logger=logging.getLogger("t"), clock=clock
    )


def test_ages_read_like_an_operator_says_them():
    assert [age(s) for s in (0, 12.7, 65, 3600 + 125)] == ["0 s", "12 s", "1m05s", "1h02m"]


def test_activity_counts_calls_on_the_wire_and_retry_waits_per_stream():
    clock = FakeClock()
    activity = Activity(clock)
    done = threading.Event()

    def worker(stream: str, retry: bool) -> None:
        activity.started(stream)
        if retry:
            activity.retrying(stream, "HTTP 503")
        done.wait(5)

    threads = [
        threading.Thread(target=worker, args=(s, r))
        for s, r in (("a", False), ("a", False), ("b", True))
    ]
    for t in threads:
        t.start()
    time.sleep(0.2)
    clock.now += 12
    snap = activity.snapshot()
    done.set()
    for t in threads:
        t.join()
    assert snap["a"].on_wire == 2
    assert snap["a"].oldest_on_wire == pytest.approx(12)
    assert snap["b"].on_wire == 1  # its attempt started, then it noted a retry
    assert snap["b"].waiting == {"HTTP 503": (1, pytest.approx(12))}


def test_what_a_stream_waits_for_is_said_plainly():
    clock = FakeClock()
    monitor = fake_monitor(clock, lines_read=41)
    monitor.tick()  # notes the 41 lines read by now
    activity = Activity(clock)
    activity.started(STREAM)
    clock.now += 12
    act = activity.snapshot()[STREAM]
    assert monitor.waiting_for(STREAM, act, 0, clock.now) == (
        "waiting for Pendo: 1 call in flight, oldest 12 s"
    )
    activity.retrying(STREAM, "HTTP 503")
    activity.ended()
    clock.now += 4
    act = activity.snapshot()[STREAM]
    assert monitor.waiting_for(STREAM, act, 0, clock.now) == (
        "waiting to retry: 1 call after HTTP 503, the longest retrying for 4 s"
    )
    activity.started(STREAM)  # the retry goes out, fails again, waits again
    activity.ended()
    clock.now += 3
    activity.retrying(STREAM, "HTTP 503")
    act = activity.snapshot()[STREAM]
    assert monitor.waiting_for(STREAM, act, 0, clock.now) == (
        "waiting to retry: 1 call after HTTP 503, the longest retrying for 7 s"
    )
    clock.now += 7  # no input line for 26 s
    assert monitor.waiting_for(STREAM, None, 40, clock.now) == (
        "40 rows held for the next batch; waiting for input from the tap (no line for 26 s)"
    )
    monitor.run.drains.started(STREAM, 2000)
    assert monitor.waiting_for(STREAM, None, 2000, clock.now) == (
        "working on a batch of 2000 rows (mapping, ledger)"
    )
    monitor.run.drains.ended(STREAM)
    monitor.run.input_complete = True
    assert monitor.waiting_for(STREAM, None, 0, clock.now) == "input complete"


def test_a_run_with_no_stream_yet_still_says_what_it_waits_for():
    clock = FakeClock()
    monitor = fake_monitor(clock)
    clock.now += 45
    (line,) = monitor.lines()
    assert line == (
        "Progress: 0 input lines read, no row waiting to be sent; waiting for input from the "
        "tap (nothing read in 45 s)"
    )


# --- the timeline -------------------------------------------------------------------------------
def test_timeline_buckets_answers_per_second_and_reads_back():
    clock = FakeClock()
    timeline = CallTimeline(clock)
    for status, seconds in ((200, 0.010), (200, 0.012), (429, 0.002), (503, 0.5), (None, 5.0)):
        timeline.attempt(status, seconds)
    timeline.retry()
    clock.now += 2.5
    timeline.attempt(400, 0.02)
    width, rows = read_timeline(json.loads(json.dumps(timeline.as_dict())))
    assert width == 1
    assert [(r.t, r.calls, r.ok, r.throttled, r.failed, r.unanswered) for r in rows] == [
        (0, 5, 2, 1, 1, 1),
        (2, 1, 0, 0, 0, 0),
    ]
    assert rows[0].retries == 1
    assert rows[1].refused == 1
    p50 = percentile(rows[0].latency, 50)
    assert p50 is not None
    assert 9 <= p50 <= 14  # within a slot (25 %) of the middle latency, 12 ms
    assert percentile(rows[0].latency, 100) == pytest.approx(5000, rel=0.25)


def test_a_long_run_keeps_at_most_max_buckets():
    clock = FakeClock()
    timeline = CallTimeline(clock)
    for _ in range(5 * MAX_BUCKETS):  # an attempt a second for 5 x MAX_BUCKETS seconds
        timeline.attempt(200, 0.01)
        clock.now += 1
    width, rows = read_timeline(timeline.as_dict())
    assert width == 8  # 1 s, 2 s, 4 s, 8 s: the first width that holds 6000 s in 1200
    assert len(rows) <= MAX_BUCKETS
    assert sum(r.calls for r in rows) == 5 * MAX_BUCKETS
    assert len(json.dumps(timeline.as_dict())) < 100_000


# --- real runs ----------------------------------------------------------------------------------
def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress")]


def test_progress_says_the_run_waits_for_pendo(emulator, base_config, caplog, monkeypatch):
    monkeypatch.setattr(PendoSink, "PROGRESS_EVERY_SECONDS", 0.3)
    caplog.set_level(logging.INFO)
    emulator.inject(route="track", delay=1.5, times=8)
    lines = [schema(STREAM), *row_lines(0, 12), state({"n": 12})]
    _, target = run_target(events_config(base_config, max_concurrency=8), lines)
    waiting = [x for x in progress_lines(caplog) if "waiting for Pendo" in x]
    assert waiting, progress_lines(caplog)
    assert "waiting for Pendo: 8 calls in flight, oldest 1 s" in "\n".join(waiting)
    assert waiting[0].startswith(f"Progress of stream '{STREAM}': 12 received, ")
    assert "rows/s in the last" in waiting[0]
    # the monitor ended with the run, and its calls are in the report's timeline
    assert target.progress_monitor._thread is not None
    assert not target.progress_monitor._thread.is_alive()
    report = json.loads(
        sorted((Path(base_config["state_dir"]) / "reports").glob("*.json"))[-1].read_text()
    )
    _, rows = read_timeline(report["timeline"])
    assert sum(r.calls for r in rows) == 12
    assert max(percentile(r.latency, 99) or 0 for r in rows) >= 1000


def test_progress_says_the_run_waits_to_retry_and_counts_by_cause(
    emulator, base_config, caplog, monkeypatch
):
    monkeypatch.setattr(PendoSink, "PROGRESS_EVERY_SECONDS", 0.3)
    caplog.set_level(logging.INFO)
    emulator.inject(route="track", status=503, retry_after="2", times=1)
    lines = [schema(STREAM), *row_lines(0, 3), state({"n": 3})]
    run_target(events_config(base_config), lines)
    retrying = [x for x in progress_lines(caplog) if "waiting to retry" in x]
    assert retrying, progress_lines(caplog)
    assert (
        "waiting to retry: 1 call after HTTP 503, the longest retrying for 1 s "
        "(max_retry_seconds=10)"
    ) in "\n".join(retrying)
    assert "1 retry (HTTP 503: 1)" in retrying[-1]
    messages = [r.getMessage() for r in caplog.records]
    assert f"Retries of stream '{STREAM}' after HTTP 503: 1" in messages


def test_a_stalled_tap_is_named_every_interval(emulator, base_config, tmp_path):
    cli = FeedingCLI(events_config(base_config), tmp_path)
    try:
        first = cli.wait_for("Progress: 0 input lines read")
        assert "waiting for input from the tap" in first
        cli.send([schema(STREAM), *row_lines(0, 5)])  # a batch that is not full: held
        held = cli.wait_for("held for the next batch; waiting for input from the tap (no line")
        assert f"Progress of stream '{STREAM}': 5 received, 0 sent, 0 rejected" in held
        cli.send([*row_lines(5, 5), state({"n": 10})])
        cli.close_stdin()
        assert cli.wait() == 0, cli.stderr
    finally:
        if cli.proc.poll() is None:
            cli.proc.kill()
    assert f"stream '{STREAM}' (events): received 10, sent 10" in cli.stderr
    assert (
        "Progress"
        not in cli.stderr.split("Reader 'target-pendo' completed")[-1].split("(events): received")[
            -1
        ]
    )  # nothing after the summary


def test_sigterm_while_stalled_exits_at_once_with_a_warning(emulator, base_config, tmp_path):
    cli = FeedingCLI(events_config(base_config), tmp_path)
    try:
        cli.send([schema(STREAM), *row_lines(0, 3)])
        cli.wait_for("held for the next batch")
        started = time.monotonic()
        cli.proc.send_signal(signal.SIGTERM)
        code = cli.wait(30)
        took = time.monotonic() - started
    finally:
        if cli.proc.poll() is None:
            cli.proc.kill()
    assert code == 143
    assert took < 5, took  # the monitor thread holds nothing the stop waits for
    (warning,) = [x for x in cli.err if "| WARNING " in x and "Run stopped by SIGTERM" in x]
    assert "stay unsent" in warning


def test_a_terminal_gets_one_live_line_instead(emulator, base_config, tmp_path):
    """stderr on a pseudo-terminal: the progress is one line rewritten in place (carriage
    return, erase line), no progress log lines, and the summary lines after it as usual."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    cli = FeedingCLI(events_config(base_config), tmp_path, stderr=follower)
    os.close(follower)
    seen = bytearray()

    def read_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    seen.extend(os.read(leader, 65536))
                except OSError:
                    return

    try:
        cli.send([schema(STREAM), *row_lines(0, 4)])
        read_for(5)  # start-up, then more than INPUT_IDLE_SECONDS without a line
        cli.send([*row_lines(4, 4), state({"n": 8})])
        cli.close_stdin()
        read_for(1)
        code = cli.wait()
        read_for(0.5)
    finally:
        os.close(leader)
        if cli.proc.poll() is None:
            cli.proc.kill()
    text = seen.decode("utf-8", "replace")
    assert code == 0, text
    assert "\r\x1b[2Ktarget-pendo " in text
    live = [x for x in text.split("\r\x1b[2K") if x.startswith("target-pendo ")]
    assert any(" | events: tap idle " in x and ", 4 held | 4 received, 0 sent" in x for x in live)
    assert all(len(x.split("\r")[0].split("\n")[0]) < 160 for x in live)
    assert "Progress of stream" not in text
    assert f"stream '{STREAM}' (events): received 8, sent 8" in text
