"""Nothing lost, nothing twice: signals, dry runs, BATCH messages, full-table versions, two runs
on one ledger, SCHEMA changes, keys and honest accounting, through the real CLI.

Signal tests start `target-pendo` as a subprocess, feed it like a tap (a row at a time, with a
STATE every few rows whose value says how many rows came before it), send a real signal at a
given moment and check what matters: the exit code, that every STATE printed covers only rows
Pendo holds or that were rejected, that the process left within the documented bound, and
that a rerun on the same input ends with every event in Pendo once (duplicates only for calls
counted in doubt).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pendo_emulator import Emulator

from ..singer import (
    TARGET_CMD,
    read_rejects,
    record,
    run_cli,
    run_target,
    schema,
    state,
)

EVENTS = "events"
EVENT_PROPS = {
    "id": {"type": "integer"},
    "user_id": {"type": ["string", "null"]},
    "event": {"type": ["string", "null"]},
}
SPEC = {"event_name_column": "event", "visitor_id_column": "user_id"}


def event_row(i: int) -> dict[str, Any]:
    # every 10th row has no visitor: rejected locally, so rejects are written all along
    return {"id": i, "user_id": None if i % 10 == 7 else f"u-{i}", "event": "Clicked"}


def event_lines(n: int, every: int = 25) -> list[str]:
    lines = [schema(EVENTS, EVENT_PROPS)]
    for i in range(n):
        lines.append(record(EVENTS, event_row(i)))
        if (i + 1) % every == 0:
            lines.append(state({"rows_before": i + 1}))
    lines.append(state({"rows_before": n}))
    return lines


def config_for(base: dict, **extra: Any) -> dict:
    return {**base, "streams": {EVENTS: SPEC}, "batch_size_rows": 50, **extra}


def delivered(emulator: Emulator) -> Counter[int]:
    return Counter(e["properties"]["id"] for e in emulator.events())


class Tap:
    """The target as a subprocess, fed by a thread like a tap writing to a pipe."""

    def __init__(
        self,
        config: dict,
        lines: list[str],
        tmp_path: Path,
        pace: float = 0.0,
        hold_open: bool = False,
    ):
        cfg = tmp_path / f"config-{time.monotonic_ns()}.json"
        cfg.write_text(json.dumps(config))
        self.proc = subprocess.Popen(
            [*TARGET_CMD, "--config", str(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
        )
        self.fed = 0
        self._lines = lines
        self._pace = pace
        self._hold_open = hold_open  # a tap that went quiet: stdin stays open after the lines
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self._err), daemon=True),
        ]
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        for thread in (*self._readers, self._feeder):
            thread.start()

    @staticmethod
    def _drain(pipe: Any, into: list[str]) -> None:
        for line in pipe:
            into.append(line)

    def _feed(self) -> None:
        assert self.proc.stdin is not None
        try:
            for line in self._lines:
                self.proc.stdin.write(line + "\n")
                self.proc.stdin.flush()
                self.fed += 1
                if self._pace:
                    time.sleep(self._pace)
            if not self._hold_open:
                self.proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the target stopped reading: what a tap sees when its target is gone

    def close_stdin(self) -> None:
        """The tap ends its output."""
        self._feeder.join(timeout=30)
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = 60) -> tuple[int, str, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # A hang is a finding: SIGABRT makes faulthandler print every thread's stack
            # (PYTHONFAULTHANDLER below), which the failure then shows.
            self.proc.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            self.proc.kill()
            for reader in self._readers:
                reader.join(timeout=10)
            raise AssertionError(
                f"the target did not exit within {timeout:g} s; its stderr and threads:\n"
                + "".join(self._err)[-12000:]
            ) from None
        for reader in self._readers:
            reader.join(timeout=10)
        return code, "".join(self._out), "".join(self._err)

    def signal_and_wait(self, signum: int, timeout: float = 60) -> tuple[int, str, str, float]:
        sent = time.monotonic()
        self.proc.send_signal(signum)
        code, out, err = self.wait(timeout)
        return code, out, err, time.monotonic() - sent


def emitted_states(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def assert_states_cover_only_settled_rows(
    states: list[dict], emulator: Emulator, state_dir: str
) -> None:
    """Every STATE printed says N rows came before it: each of them is in Pendo or rejected."""
    have = set(delivered(emulator))
    rejected = {r["key"] for r in read_rejects(state_dir, EVENTS)}
    for value in states:
        upto = value["rows_before"]
        missing = [i for i in range(upto) if i not in have and i not in rejected]
        assert not missing, f"STATE {value} covers rows never settled: {missing[:10]}"


def rerun_and_check_everything_once(
    config: dict, lines: list[str], emulator: Emulator, tmp_path: Path, n: int
) -> None:
    result = run_cli(config, lines, tmp_path)
    assert result.returncode == 0, result.stderr
    counts = delivered(emulator)
    expected = {i for i in range(n) if i % 10 != 7}
    assert set(counts) == expected  # nothing lost
    reports = sorted((Path(config["state_dir"]) / "reports").glob("run-*.json"))
    in_doubt = sum(
        json.loads(p.read_text())["streams"].get(EVENTS, {}).get("in_doubt", 0) for p in reports
    )
    assert sum(c - 1 for c in counts.values()) <= in_doubt  # twice only if counted in doubt


def error_lines(stderr: str) -> list[str]:
    return [x for x in stderr.splitlines() if x.startswith("target-pendo:")]


# --- signals ---------------------------------------------------------------------------------


def wait_for_track_calls(emulator: Emulator, calls: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while emulator.request_counts().get("POST /data/track", 0) < calls:
        assert time.monotonic() < deadline, "the target never got that far"
        time.sleep(0.005)


@pytest.mark.parametrize(
    ("signum", "after_calls"),
    [
        (signal.SIGTERM, 1),
        (signal.SIGTERM, 60),
        (signal.SIGINT, 120),
        (signal.SIGTERM, 250),
        (signal.SIGINT, 330),
    ],
)
def test_a_signal_mid_run_never_lets_state_pass_unsent_rows(
    emulator: Emulator, base_config: dict, tmp_path: Path, signum: int, after_calls: int
) -> None:
    n = 400
    emulator.inject(route="track", delay=0.01, times=None, process_after_disconnect=True)
    config = config_for(base_config, max_concurrency=4)
    lines = event_lines(n)
    tap = Tap(config, lines, tmp_path, pace=0.001)
    wait_for_track_calls(emulator, after_calls)
    code, out, err, took = tap.signal_and_wait(signum)
    assert code == 128 + signum, err
    assert took < 10
    assert "Traceback" not in err
    (line,) = error_lines(err)
    assert f"stopped by {signal.Signals(signum).name}" in line
    assert_states_cover_only_settled_rows(emitted_states(out), emulator, config["state_dir"])
    report = json.loads(
        sorted((Path(config["state_dir"]) / "reports").glob("*.json"))[-1].read_text()
    )
    assert report["status"] == "stopped"
    emulator.faults.clear()
    rerun_and_check_everything_once(config, lines, emulator, tmp_path, n)


def test_a_signal_while_the_tap_is_silent_stops_at_once(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    """Blocked reading stdin (the tap thinks), with every row so far settled: STATE written."""
    lines = event_lines(50, every=50)
    config = config_for(base_config)
    tap = Tap(config, lines, tmp_path, hold_open=True)
    deadline = time.monotonic() + 60
    while len(delivered(emulator)) < 45 and time.monotonic() < deadline:
        time.sleep(0.02)  # every row read and sent (5 were rejected locally)
    time.sleep(0.5)  # the target now waits for more input
    code, out, err, took = tap.signal_and_wait(signal.SIGTERM)
    assert code == 143, err
    assert took < 5
    states = emitted_states(out)
    assert_states_cover_only_settled_rows(states, emulator, config["state_dir"])
    # the 50 rows were one drain, settled before the signal: its STATE is written on the stop
    assert states[-1] == {"rows_before": 50}


def test_a_signal_during_a_pendo_outage_exits_within_seconds_without_state(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    emulator.inject(route="track", status=503, times=None)
    config = config_for(base_config, max_retry_seconds=300)
    lines = event_lines(100)
    tap = Tap(config, lines, tmp_path)
    wait_for_track_calls(emulator, 3)  # well into the retries
    code, out, err, took = tap.signal_and_wait(signal.SIGTERM)
    assert code == 143, err
    assert took < 5  # not the 300 s of max_retry_seconds
    assert emitted_states(out) == []
    assert emulator.events() == []
    emulator.faults.clear()
    rerun_and_check_everything_once(config, lines, emulator, tmp_path, 100)
    reports = sorted((Path(config["state_dir"]) / "reports").glob("run-*.json"))
    last = json.loads(reports[-1].read_text())
    assert last["streams"][EVENTS]["in_doubt"] == 0  # every call before got a 503: not sent


def test_objects_mid_run_signal_keeps_state_behind_unsent_rows(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", [f"v-{i}" for i in range(3000)])
    emulator.inject(route="metadata", delay=0.3, times=None, process_after_disconnect=True)
    props = {"id": {"type": "string"}, "plan": {"type": ["string", "null"]}}
    lines = [schema("users", props)]
    for i in range(3000):
        lines.append(record("users", {"id": f"v-{i}", "plan": "pro"}))
        if (i + 1) % 100 == 0:
            lines.append(state({"rows_before": i + 1}))
    spec = {"sync": "visitor", "custom_fields": {"plan": "plan"}, "batch_size": 100}
    config = {**base_config, "streams": {"users": spec}, "batch_size_rows": 300}
    tap = Tap(config, lines, tmp_path)
    deadline = time.monotonic() + 30
    while len(emulator.metadata_writes()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    code, out, err, _ = tap.signal_and_wait(signal.SIGTERM)
    assert code == 143, err
    stored = emulator.objects("visitor")
    for value in emitted_states(out):
        missing = [i for i in range(value["rows_before"]) if not stored[f"v-{i}"]["custom"]]
        assert not missing, f"STATE {value} covers rows not in Pendo: {missing[:5]}"
    emulator.faults.clear()
    result = run_cli(config, lines, tmp_path)
    assert result.returncode == 0, result.stderr
    stored = emulator.objects("visitor")
    assert all(stored[f"v-{i}"]["custom"] == {"plan": "pro"} for i in range(3000))


# --- dry run ----------------------------------------------------------------------------------


def test_no_process_pool_is_left_to_block_the_exit(
    emulator: Emulator, base_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target killed by SIGTERM in CI once hung at exit, its one thread in multiprocessing's
    exit hook (`Pool._terminate_pool`, waiting on a lock nobody would release): the thread
    pool singer-sdk drains sinks with, left mid-use by the signal. The sinks drain on their own
    threads, so the run never needs that pool: a run of several batches makes none."""
    import multiprocessing.pool

    made: list[object] = []
    real_init = multiprocessing.pool.Pool.__init__

    def recording_init(self: object, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(multiprocessing.pool.Pool, "__init__", recording_init)
    states, _ = run_target(config_for(base_config), event_lines(200))
    assert states[-1] == {"rows_before": 200}
    assert made == []


def test_a_run_inside_another_program_leaves_its_signal_handlers_as_they_were(
    base_config: dict,
) -> None:
    """A worker process (a test runner, an orchestrator) that runs the target in-process
    keeps its own SIGTERM and SIGINT handling once the run is over."""

    def mine(signum: int, frame: object) -> None:  # pragma: no cover - never called
        raise AssertionError("not expected to run")

    before = {sig: signal.signal(sig, mine) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        states, _ = run_target(config_for(base_config), event_lines(30))
        assert states[-1] == {"rows_before": 30}
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_dry_run_prints_no_state_and_leaves_no_ledger(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    config = config_for(base_config, dry_run=True)
    result = run_cli(config, event_lines(30), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""  # Meltano would save a STATE: the real run would skip
    assert emulator.events() == []
    assert not (Path(config["state_dir"]) / "ledger.sqlite3").exists()
    assert "dry run" in result.stderr.lower()
    assert "would send" in result.stderr
    # the dry run made the real run's calls, each recorded: none counted as an HTTP call
    assert "27 calls recorded" in result.stderr
    assert "Calls (dry run: writes recorded, not sent): 27 " in result.stderr
    report = json.loads(next((Path(config["state_dir"]) / "reports").glob("*.json")).read_text())
    assert report["dry_run"] is True
    # the real run afterwards sends everything
    real = run_cli(config_for(base_config), event_lines(30), tmp_path)
    assert real.returncode == 0
    assert len(delivered(emulator)) == 27


def test_a_dry_run_previews_events_before_the_track_secret_is_known(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    """Nothing is sent, so no key is needed: a preview works before the secret is set."""
    config = config_for(base_config, dry_run=True)
    del config["track_event_secret"]
    result = run_cli(config, event_lines(30), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "would send 27" in result.stderr
    assert emulator.request_counts() == {}


# --- BATCH messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_batch_messages_are_delivered_like_records(
    emulator: Emulator, base_config: dict, tmp_path: Path, compression: str
) -> None:
    files = []
    for part in range(2):
        rows = [json.dumps(event_row(i)) for i in range(part * 20, part * 20 + 20)]
        data = ("\n".join(rows) + "\n").encode()
        path = tmp_path / (f"batch-{part}.jsonl" + (".gz" if compression == "gzip" else ""))
        path.write_bytes(gzip.compress(data) if compression == "gzip" else data)
        files.append(path.as_uri())
    batch = {
        "type": "BATCH",
        "stream": EVENTS,
        "encoding": {"format": "jsonl", "compression": compression},
        "manifest": files,
    }
    lines = [schema(EVENTS, EVENT_PROPS), json.dumps(batch), state({"rows_before": 40})]
    states, target = run_target(config_for(base_config), lines)
    assert set(delivered(emulator)) == {i for i in range(40) if i % 10 != 7}
    assert len(read_rejects(base_config["state_dir"], EVENTS)) == 4
    assert target.run_context.report.streams[EVENTS].received == 40
    assert states == [{"rows_before": 40}]


def test_a_batch_in_another_format_is_refused_naming_batch(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    batch = {
        "type": "BATCH",
        "stream": EVENTS,
        "encoding": {"format": "parquet", "compression": None},
        "manifest": ["file:///nowhere/x.parquet"],
    }
    result = run_cli(
        config_for(base_config), [schema(EVENTS, EVENT_PROPS), json.dumps(batch)], tmp_path
    )
    assert result.returncode == 1
    (line,) = error_lines(result.stderr)
    assert "BATCH" in line
    assert "parquet" in line
    assert "input line 2" in line
    assert result.stdout.strip() == ""


# --- full-table versions ----------------------------------------------------------------------


def users_lines(ids: list[int], opening: bool, closing: bool, version: int = 7) -> list[str]:
    props = {"id": {"type": "string"}, "plan": {"type": ["string", "null"]}}
    lines = [schema("users", props)]
    if opening:
        lines.append(
            json.dumps({"type": "ACTIVATE_VERSION", "stream": "users", "version": version})
        )
    for i in ids:
        row = {"type": "RECORD", "stream": "users", "record": {"id": f"v-{i}", "plan": "pro"}}
        lines.append(json.dumps({**row, "version": version}))
    if closing:
        lines.append(
            json.dumps({"type": "ACTIVATE_VERSION", "stream": "users", "version": version})
        )
    return lines


@pytest.mark.parametrize(
    ("opening", "closing", "deletes"),
    [
        (True, False, False),  # the tap died after opening the sync (or a singer-sdk tap)
        (True, True, True),  # PipelineWise style: opened and closed
        (False, True, True),  # closed after the version's records
    ],
)
def test_deletes_follow_only_a_full_table_sync_seen_complete(
    emulator: Emulator, base_config: dict, caplog, opening: bool, closing: bool, deletes: bool
) -> None:
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", [f"v-{i}" for i in range(20)])
    spec = {"sync": "visitor", "custom_fields": {"plan": "plan"}, "delete_behavior": "delete"}
    config = {**base_config, "streams": {"users": spec}, "max_delete_fraction": 0.5}
    run_target(config, users_lines(list(range(20)), True, True, version=1))
    _, target = run_target(config, users_lines(list(range(15)), opening, closing))
    gone = sorted(emulator.deleted("visitor"))
    if deletes:
        assert gone == sorted(f"v-{i}" for i in range(15, 20))
    else:
        assert gone == []
        assert "never seen complete" in caplog.text
        assert target.run_context.report.streams["users"].deletes_withheld == 1


# --- two runs on one ledger -------------------------------------------------------------------


def test_a_second_run_on_the_same_ledger_waits_then_stops_naming_the_first(
    emulator: Emulator, ledger_config: dict, tmp_path: Path
) -> None:
    config = config_for(ledger_config, ledger_wait_seconds=1)
    lines = event_lines(200)
    first = Tap(config, lines, tmp_path, hold_open=True)  # a run still going: its tap is busy
    wait_for_track_calls(emulator, 150)  # the first run holds the stream's lease
    second = run_cli(config, lines, tmp_path)
    assert second.returncode == 1
    (line,) = error_lines(second.stderr)
    assert "is being synced by another run" in line
    assert "ledger_wait_seconds" in line
    assert "pid" in line
    first.close_stdin()
    code, _, err = first.wait()
    assert code == 0, err
    counts = delivered(emulator)
    assert set(counts) == {i for i in range(200) if i % 10 != 7}
    assert all(c == 1 for c in counts.values())  # nothing twice


# --- one stream, one order --------------------------------------------------------------------


def test_a_schema_change_settles_the_old_sink_before_the_new_one_sends(
    emulator: Emulator, base_config: dict
) -> None:
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", ["v-1"])
    props = {"id": {"type": "string"}, "plan": {"type": ["string", "null"]}}
    wider = {**props, "extra": {"type": ["string", "null"]}}
    spec = {"sync": "visitor", "custom_fields": {"plan": "plan"}}
    lines = [
        schema("users", props),
        record("users", {"id": "v-1", "plan": "old"}),
        schema("users", wider),
        record("users", {"id": "v-1", "plan": "new", "extra": "x"}),
    ]
    run_target({**base_config, "streams": {"users": spec}}, lines)
    assert emulator.objects("visitor")["v-1"]["custom"]["plan"] == "new"
    events = [
        schema(EVENTS, EVENT_PROPS),
        record(EVENTS, event_row(1)),
        schema(EVENTS, {**EVENT_PROPS, "x": {"type": ["string", "null"]}}),
        record(EVENTS, event_row(1)),  # the same event replayed after the change
    ]
    run_target(config_for(base_config), events)
    assert delivered(emulator) == Counter({1: 1})


# --- keys and accounting ----------------------------------------------------------------------


def test_an_unusable_row_does_not_claim_the_key_of_a_valid_one(
    emulator: Emulator, base_config: dict
) -> None:
    lines = [
        schema(EVENTS, EVENT_PROPS),
        record(EVENTS, {"id": 5, "user_id": None, "event": "Clicked"}),  # rejected locally
        record(EVENTS, {"id": 5, "user_id": "u-5", "event": "Clicked"}),  # the valid one
    ]
    run_target(config_for(base_config), lines)
    assert delivered(emulator) == Counter({5: 1})


def test_a_clean_failure_leaves_nothing_in_doubt_for_the_next_run(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    emulator.inject(route="track", status=503, times=None)
    config = config_for(base_config, max_retry_seconds=1)
    lines = event_lines(30)
    failed = run_cli(config, lines, tmp_path)
    assert failed.returncode == 1
    emulator.faults.clear()
    again = run_cli(config, lines, tmp_path)
    assert again.returncode == 0, again.stderr
    report = json.loads(
        sorted((Path(config["state_dir"]) / "reports").glob("*.json"))[-1].read_text()
    )
    assert report["streams"][EVENTS]["in_doubt"] == 0
    assert set(delivered(emulator)) == {i for i in range(30) if i % 10 != 7}


def test_a_killed_run_is_marked_abandoned_by_the_next(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    from target_pendo.ledger import Ledger, default_url

    emulator.inject(route="track", delay=0.05, times=None, process_after_disconnect=True)
    config = config_for(base_config)
    tap = Tap(config, event_lines(200), tmp_path)
    wait_for_track_calls(emulator, 20)
    tap.proc.kill()
    tap.wait(timeout=30)
    emulator.faults.clear()
    result = run_cli(config, event_lines(200), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "abandoned" in result.stderr
    ledger = Ledger(default_url(config["state_dir"]))
    with ledger.engine.connect() as conn:
        statuses = [
            r[0] for r in conn.execute(sa.text("SELECT status FROM sync_runs ORDER BY run_id"))
        ]
    ledger.close()
    assert statuses == ["abandoned", "succeeded"]


def test_a_signal_with_many_calls_in_flight_to_a_slow_pendo_ends_within_the_timeout(
    base_config: dict, tmp_path: Path
) -> None:
    """A Pendo 600 ms away, a stated ceiling of 100/s: far more than 8 calls are on the wire
    at once. SIGTERM still ends the run once those calls end (each within request_timeout),
    STATE covers only settled rows, and the rerun sends again only calls that got no answer."""
    with Emulator(latency=0.6) as slow:
        config = config_for(
            {**base_config, "api_url": slow.url},
            max_requests_per_second=100,
            max_concurrency=64,  # the default
            request_timeout=3,
            batch_size_rows=200,
        )
        n = 1500
        lines = event_lines(n)
        tap = Tap(config, lines, tmp_path)
        wait_for_track_calls(slow, 150)
        code, out, err, took = tap.signal_and_wait(signal.SIGTERM)
        assert code == 143, err
        assert took < 3 + 2  # request_timeout, and the run's own ending
        assert_states_cover_only_settled_rows(emitted_states(out), slow, config["state_dir"])
        report = json.loads(
            sorted((Path(config["state_dir"]) / "reports").glob("*.json"))[-1].read_text()
        )
        assert report["pacing"]["track"]["in_flight_peak"] > 8
        slow.latency = 0.0
        rerun_and_check_everything_once(config, lines, slow, tmp_path, n)


def _signal_a_worker_thread(pid: int, signum: int) -> None:
    """SIGTERM as the kernel may deliver a process's signal: to one of its other threads
    (tgkill to the first thread that is not the main one)."""
    import ctypes

    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert tids, "the target has no other thread"
    sys_tgkill = 234  # x86_64; aarch64 is 131
    number = sys_tgkill if os.uname().machine == "x86_64" else 131
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(number, pid, tids[0], signum) == 0


def test_a_signal_delivered_to_another_thread_stops_the_run_within_seconds(
    emulator: Emulator, base_config: dict, tmp_path: Path
) -> None:
    """The main thread waits on the sinks' drains while their calls sit in retry waits (a
    Pendo outage). A SIGTERM the kernel hands to another thread must still reach it: a wait
    that never wakes would hold the run for max_retry_seconds (300 s)."""
    emulator.inject(route="track", status=503, times=None)
    config = config_for(base_config, max_retry_seconds=300)
    lines = event_lines(100)
    tap = Tap(config, lines, tmp_path)
    wait_for_track_calls(emulator, 3)
    time.sleep(0.3)  # every line read: the main thread waits on the drains
    started = time.monotonic()
    _signal_a_worker_thread(tap.proc.pid, signal.SIGTERM)
    code, out, err = tap.wait(timeout=30)
    assert code == 143, err
    assert time.monotonic() - started < 5
    assert emitted_states(out) == []
