"""The benchmark: target-pendo next to the floors it cannot beat, and its adaptive pacing.

    python bench/run.py              # N = 10k and 100k
    python bench/run.py --million    # also 1M (several minutes)
    python bench/run.py --ledger     # only the ledger's growth and the retention prune

For each N it generates a Singer stream of N events and one of N visitor rows, starts the
emulator in its own process with no rate limit, and measures (wall seconds, rows/s, HTTP calls,
CPU seconds, peak RSS of the measured process, from os.wait4):
- target-pendo on the events stream and on the visitors stream (fresh state each time);
- the Singer floor: reading and JSON-parsing the same file in plain Python;
- the SDK's own cost: a no-op singer-sdk BatchSink target on the same file;
- the HTTP floor: a bare requests.Session pool posting the same Track bodies to the same
  emulator with the same concurrency (in its own process; rows/s over the posting alone).
Then, on 20k events against a fast sink in its own process (bench/fast_sink.py), target-pendo
against the bare requests pool at equal concurrency: CPU-bound (answers at once, concurrency
8) and latency-bound (50 ms answers, concurrency 16). Then adaptive pacing with default
settings against an emulator enforcing a limit the target is not told (40/s and 120/s, 429
without Retry-After), and a fixed ceiling. Every measured command runs in a process of its
own, started while this one is small, so its peak RSS (from os.wait4) is its own. Timings are
printed, never asserted.

The ledger: bytes per source row of the SQLite ledger after 1 and after 10 unchanged runs of
100k visitor rows (what an hourly full-table sync does), and how long `target-pendo ledger
prune` takes on 30 days of history (30 runs x 100k sync_rows lines; x 1M with --million) and
what it gives back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TRACK_SECRET = "emulator-track-secret"  # noqa: S105 - the emulator's fake demo key
API_KEY = "emulator-integration-key"
CONCURRENCY = 8
OBJECT_BATCH = 500
CLIENT_COST_EVENTS = 20_000


@dataclass
class Result:
    name: str
    rows: int
    seconds: float
    cpu: float
    rss_mb: float
    calls: int | None = None
    posting_seconds: float | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measured(name: str, rows: int, argv: list[str], stdin: Path | None = None) -> Result:
    """Run a command; wall time, CPU and peak RSS of that process alone (os.wait4)."""
    stdin_file = stdin.open("rb") if stdin else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our own benchmark commands
        argv, stdin=stdin_file, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    stderr_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()))
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if stdin:
        stdin_file.close()
    if proc.returncode != 0:
        sys.stderr.write(b"".join(stderr_chunks).decode()[-3000:])
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    stderr = b"".join(stderr_chunks).decode(errors="replace")
    posting = [
        float(x.split("=", 1)[1]) for x in stderr.splitlines() if x.startswith("POSTING_SECONDS=")
    ]
    return Result(
        name,
        rows,
        seconds,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        posting_seconds=posting[-1] if posting else None,
    )


class EmulatorProcess:
    def __init__(self, rate_limit: int | None = None, latency: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        limit = ["--rate-limit", str(rate_limit)] if rate_limit else []
        limit += ["--latency", str(latency)] if latency else []
        self.proc = subprocess.Popen(  # noqa: S603
            [
                PY,
                "-c",
                "from pendo_emulator.server import main; main()",
                "--port",
                str(self.port),
                *limit,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.control("GET", "requests")
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the emulator did not start")

    def control(self, method: str, route: str, body: object = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - localhost emulator
            f"{self.url}/_emulator/{route}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")

    def reset(self) -> None:
        self.control("POST", "reset")

    def calls(self) -> int:
        return sum(self.control("GET", "requests")["counts"].values())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def write_streams(folder: Path, n: int) -> tuple[Path, Path]:
    """Events and visitors as a tap would write them."""
    events, visitors = folder / f"events-{n}.jsonl", folder / f"visitors-{n}.jsonl"
    now = time.time()
    with events.open("w") as out:
        out.write(
            json.dumps(
                {
                    "type": "SCHEMA",
                    "stream": "events",
                    "key_properties": ["id"],
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "user_id": {"type": "string"},
                            "account_id": {"type": "string"},
                            "event": {"type": "string"},
                            "occurred_at": {"type": "string", "format": "date-time"},
                            "plan": {"type": "string"},
                            "amount": {"type": "number"},
                        },
                    },
                }
            )
            + "\n"
        )
        for i in range(n):
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600 - i % 86400))
            out.write(
                json.dumps(
                    {
                        "type": "RECORD",
                        "stream": "events",
                        "record": {
                            "id": i,
                            "user_id": f"u-{i % 5000}",
                            "account_id": f"a-{i % 300}",
                            "event": ("Report Exported", "Dashboard Viewed")[i % 2],
                            "occurred_at": ts,
                            "plan": "pro",
                            "amount": i % 1000 / 4,
                        },
                    }
                )
                + "\n"
            )
            if i % 10000 == 9999:
                out.write(json.dumps({"type": "STATE", "value": {"id": i}}) + "\n")
    with visitors.open("w") as out:
        out.write(
            json.dumps(
                {
                    "type": "SCHEMA",
                    "stream": "users",
                    "key_properties": ["id"],
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "plan": {"type": "string"},
                            "seats": {"type": "integer"},
                            "mrr": {"type": "number"},
                        },
                    },
                }
            )
            + "\n"
        )
        for i in range(n):
            out.write(
                json.dumps(
                    {
                        "type": "RECORD",
                        "stream": "users",
                        "record": {
                            "id": f"v-{i}",
                            "plan": ("free", "team", "enterprise")[i % 3],
                            "seats": i % 40,
                            "mrr": i % 997 * 1.5,
                        },
                    }
                )
                + "\n"
            )
    return events, visitors


def track_bodies(events: Path) -> list[bytes]:
    """The Track bodies target-pendo would send for the events file, prepared up front."""
    bodies = []
    with events.open() as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] != "RECORD":
                continue
            row = message["record"]
            bodies.append(
                json.dumps(
                    {
                        "type": "track",
                        "event": row["event"],
                        "visitorId": row["user_id"],
                        "accountId": row["account_id"],
                        "timestamp": 1_700_000_000_000 + row["id"],
                        "properties": {
                            "id": row["id"],
                            "plan": row["plan"],
                            "amount": row["amount"],
                        },
                        "context": {},
                    },
                    separators=(",", ":"),
                ).encode()
            )
    return bodies


def target_config(folder: Path, url: str, name: str, **extra: object) -> Path:
    config = {
        "api_url": url,
        "track_event_secret": TRACK_SECRET,
        "integration_key": API_KEY,
        "state_dir": str(folder / f"state-{name}"),
        "max_concurrency": CONCURRENCY,
        "max_requests_per_second": 0,  # no client-side limit: measure the target itself
        "streams": {
            "events": {
                "event_name_column": "event",
                "visitor_id_column": "user_id",
                "account_id_column": "account_id",
                "timestamp_column": "occurred_at",
            },
            "users": {
                "sync": "visitor",
                "custom_fields": {"plan": "plan", "seats": "seats", "mrr": "mrr"},
                "batch_size": OBJECT_BATCH,
            },
        },
        **extra,
    }
    path = folder / f"config-{name}.json"
    path.write_text(json.dumps(config))
    return path


def bare_requests_floor(url: str, events: Path, concurrency: int = CONCURRENCY) -> None:
    """Run in its own process (`run.py floor URL FILE [CONCURRENCY]`): a pool of keep-alive
    sessions posting the prepared bodies, `concurrency` at a time; prints the seconds spent
    posting."""
    bodies = track_bodies(events)
    local = threading.local()
    headers = {"x-pendo-integration-key": TRACK_SECRET, "Content-Type": "application/json"}

    def post(body: bytes) -> int:
        session = getattr(local, "s", None)
        if session is None:
            session = local.s = requests.Session()
        return session.post(url + "/data/track", data=body, headers=headers, timeout=30).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(post, bodies, chunksize=64))
    seconds = time.perf_counter() - started
    if any(s != 200 for s in statuses):
        raise SystemExit("the floor got answers other than 200")
    sys.stderr.write(f"POSTING_SECONDS={seconds}\n")


def max_in_window(times_ms: list[int], window_ms: int = 1000) -> int:
    times_ms.sort()
    best = start = 0
    for end, t in enumerate(times_ms):
        while t - times_ms[start] >= window_ms:
            start += 1
        best = max(best, end - start + 1)
    return best


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def seed_visitors(emulator: EmulatorProcess, n: int) -> None:
    """Visitors v-0 .. v-(n-1) with the custom fields the visitors stream maps. Seeded by
    count, so this process never holds a million ids (its children would inherit that memory
    into their peak RSS)."""
    emulator.control(
        "POST",
        "seed",
        {
            "kind": "visitor",
            "group": "custom",
            "fields": {"plan": "string", "seats": "integer", "mrr": "float"},
        },
    )
    emulator.control("POST", "seed", {"kind": "visitor", "id_prefix": "v-", "count": n})


def run_size(n: int, folder: Path, emulator: EmulatorProcess) -> list[tuple[str, ...]]:
    events, visitors = write_streams(folder, n)
    results: list[Result] = []
    parse = measured(
        "plain Python json.loads per line (Singer floor)",
        n,
        [PY, "-c", "import json,sys\nfor line in sys.stdin: json.loads(line)"],
        events,
    )
    results.append(parse)
    noop = measured(
        "no-op singer-sdk BatchSink target (SDK cost)",
        n,
        [PY, str(ROOT / "bench" / "noop_target.py")],
        events,
    )
    results.append(noop)
    noop_objects = measured(
        "no-op SDK target, visitor rows", n, [PY, str(ROOT / "bench" / "noop_target.py")], visitors
    )
    results.append(noop_objects)

    emulator.reset()
    config = target_config(folder, emulator.url, f"events-{n}")
    events_run = measured(
        "target-pendo, events", n, [PY, "-m", "target_pendo", "--config", str(config)], events
    )
    events_run.calls = emulator.calls()
    results.append(events_run)

    emulator.reset()
    seed_visitors(emulator, n)
    base_calls = emulator.calls()
    config = target_config(folder, emulator.url, f"objects-{n}")
    objects_run = measured(
        "target-pendo, visitors (custom fields)",
        n,
        [PY, "-m", "target_pendo", "--config", str(config)],
        visitors,
    )
    objects_run.calls = emulator.calls() - base_calls
    results.append(objects_run)

    emulator.reset()
    floor = measured(
        "bare requests pool (HTTP floor)", n, [PY, __file__, "floor", emulator.url, str(events)]
    )
    floor.seconds = floor.posting_seconds or floor.seconds  # rows/s over the posting alone
    floor.calls = emulator.calls()
    results.append(floor)

    out = [
        (
            f"{r.name}",
            f"{n:,}",
            f"{r.seconds:.2f}",
            f"{r.rate:,.0f}",
            "-" if r.calls is None else f"{r.calls:,}",
            f"{r.cpu:.2f}",
            f"{r.rss_mb:.0f}",
        )
        for r in results
    ]
    out.append(
        (
            "ratio events / HTTP floor (target >= 0.80)",
            f"{n:,}",
            "",
            f"{events_run.rate / floor.rate:.2f}",
            "",
            "",
            "",
        )
    )
    out.append(
        (
            "ratio objects / no-op SDK (target >= 0.50)",
            f"{n:,}",
            "",
            f"{objects_run.rate / noop_objects.rate:.2f}",
            "",
            "",
            "",
        )
    )
    out.append(
        ("ratio events / no-op SDK", f"{n:,}", "", f"{events_run.rate / noop.rate:.2f}", "", "", "")
    )
    expected_calls = n, math.ceil(n / OBJECT_BATCH)
    out.append(
        (
            f"calls: Track {events_run.calls:,} (expected {expected_calls[0]:,}); "
            f"metadata {objects_run.calls - 1:,} + 1 schema read "
            f"(expected {expected_calls[1]:,})",
            f"{n:,}",
            "",
            "",
            "",
            "",
            "",
        )
    )
    return out, events_run.rss_mb, objects_run.rss_mb


def rate_limit_check(folder: Path, emulator: EmulatorProcess, rate: int, n: int) -> str:
    """A fixed ceiling (`max_requests_per_second`): no 1-second window may hold more."""
    events, _ = write_streams(folder, n)
    emulator.reset()
    config = target_config(folder, emulator.url, f"rate-{rate}", max_requests_per_second=rate)
    run = measured("paced", n, [PY, "-m", "target_pendo", "--config", str(config)], events)
    received = [e["_received_at"] for e in emulator.control("GET", "events")["events"]]
    span = (max(received) - min(received)) / 1000 if len(received) > 1 else 0
    held = (len(received) - 1) / span if span else float("inf")
    peak = max_in_window(received)
    return (
        f"ceiling max_requests_per_second={rate} on {n:,} events: busiest 1-second window "
        f"{peak} requests (must be <= {rate}); average {held:.1f}/s with adaptive slow start; "
        f"wall {run.seconds:.1f}s"
    )


class FastSink:
    """bench/fast_sink.py in its own process: answers 200 at once (or after `latency`)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(  # noqa: S603
            [PY, str(ROOT / "bench" / "fast_sink.py"), str(self.port), str(latency)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.count()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the fast sink did not start")

    def count(self) -> int:
        with urllib.request.urlopen(f"{self.url}/_count", timeout=10) as response:  # noqa: S310
            return int(response.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def client_cost(folder: Path, events: Path, n: int, latency: float, concurrency: int) -> list:
    """target-pendo and the bare requests pool, same bodies, same concurrency, one fast sink
    in its own process: the ratio is what target-pendo costs per event beyond the HTTP call."""
    label = "CPU-bound" if not latency else f"{latency * 1000:.0f} ms answers"
    sink = FastSink(latency)
    try:
        config = target_config(
            folder,
            sink.url,
            f"sink-{latency}-{concurrency}",
            max_concurrency=concurrency,
            max_requests_per_second=0,
        )
        before = sink.count()
        target = measured(
            f"target-pendo, events ({label}, concurrency {concurrency})",
            n,
            [PY, "-m", "target_pendo", "--config", str(config)],
            events,
        )
        target.calls = sink.count() - before
        before = sink.count()
        floor = measured(
            f"bare requests pool ({label}, concurrency {concurrency})",
            n,
            [PY, __file__, "floor", sink.url, str(events), str(concurrency)],
        )
        floor.seconds = floor.posting_seconds or floor.seconds
        floor.calls = sink.count() - before
    finally:
        sink.stop()
    return [target, floor, target.rate / floor.rate]


def adaptive_check(
    folder: Path, limit: int, n: int, latency: float = 0.0, stated: bool = False
) -> tuple[str, float, float]:
    """Default settings (adaptive pacing, no ceiling; `max_concurrency` at its default)
    against an emulator in its own process enforcing `limit` calls/s per key and endpoint,
    answering 429 without Retry-After, each answer after `latency` seconds (a Pendo over the
    internet). `stated`: the user states the limit (`max_requests_per_second: limit`)."""
    emulator = EmulatorProcess(rate_limit=limit, latency=latency)
    try:
        events, _ = write_streams(folder, n)
        name = f"adaptive-{limit}-{latency}-{stated}"
        config = target_config(folder, emulator.url, name)
        settings = json.loads(config.read_text())
        settings.pop("max_requests_per_second")  # the default: adaptive, no ceiling
        settings.pop("max_concurrency")  # the default
        if stated:
            settings["max_requests_per_second"] = limit
            settings["call_log"] = True  # when each call left: the target's own windows
        config.write_text(json.dumps(settings))
        run = measured(
            f"adaptive, limit {limit}/s",
            n,
            [PY, "-m", "target_pendo", "--config", str(config)],
            events,
        )
        refused = sum(emulator.control("GET", "rate-limited")["rate_limited"].values())
        received = [e["_received_at"] for e in emulator.control("GET", "events")["events"]]
        span = (max(received) - min(received)) / 1000 if len(received) > 1 else 0
    finally:
        emulator.stop()
    throughput = (len(received) - 1) / span if span else float("inf")
    share = refused / n
    rtt = f", {latency * 1000:.0f} ms round trips" if latency else ""
    if stated:
        sent = calls_started(Path(settings["state_dir"]))
        line = (
            f"stated ceiling max_requests_per_second={limit}{rtt}, {n:,} events: "
            f"{throughput:.1f} events/s = {throughput / limit:.0%} of it (target >= 95%); "
            f"busiest 1-second window as sent {max_in_window(sent)} (must be <= "
            f"{limit * 1.1:.0f}), as the emulator stamped them {max_in_window(received)}; "
            f"{refused} answers 429; wall {run.seconds:.1f}s"
        )
    else:
        line = (
            f"adaptive pacing, unknown limit {limit}/s{rtt}, {n:,} events: {throughput:.1f} "
            f"events/s = {throughput / limit:.0%} of the limit (target >= 85%); {refused} "
            f"answers 429 = {share:.1%} of events (target <= 5%); wall {run.seconds:.1f}s"
        )
    return line, throughput / limit, share


def calls_started(state_dir: Path) -> list[int]:
    """When each call of a run left the target (ms), from its API-call log: each line is
    written when the answer came, with the call's latency."""
    started = []
    for log in (state_dir / "calls").glob("*.jsonl"):
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            answered = dt.datetime.fromisoformat(entry["at"]).timestamp() * 1000
            started.append(int(answered - (entry["latency_ms"] or 0)))
    return sorted(started)


def ledger_files_bytes(state_dir: Path) -> int:
    return sum(p.stat().st_size for p in state_dir.glob("ledger.sqlite3*") if p.is_file())


def ledger_growth(folder: Path, emulator: EmulatorProcess, n: int, runs: int) -> str:
    """The same n visitor rows synced `runs` times, nothing changed: ledger bytes per row."""
    _, visitors = write_streams(folder, n)
    emulator.reset()
    seed_visitors(emulator, n)
    config = target_config(folder, emulator.url, f"growth-{n}")
    state_dir = folder / f"state-growth-{n}"
    sizes = []
    seconds = []
    for _ in range(runs):
        argv = [PY, "-m", "target_pendo", "--config", str(config)]
        result = measured("growth", n, argv, visitors)
        seconds.append(result.seconds)
        sizes.append(ledger_files_bytes(state_dir))
    return (
        f"ledger bytes per source row, {n:,} visitor rows: after run 1 {sizes[0] / n:.0f}, after "
        f"run {runs} (unchanged) {sizes[-1] / n:.0f} = {sizes[-1] / sizes[0]:.2f} x (goal <= "
        f"1.10); an unchanged run took {min(seconds[1:]):.1f} s"
    )


def prune_timing(folder: Path, days: int, rows_per_day: int) -> str:
    """A ledger with `days` runs of `rows_per_day` sync_rows lines, all older than the window:
    the time `target-pendo ledger prune` takes, and the file before and after."""
    import sqlite3

    from target_pendo.ledger import Ledger, default_url

    state_dir = folder / f"state-prune-{rows_per_day}"
    Ledger(default_url(state_dir)).close()  # a current ledger: incremental vacuum
    path = state_dir / "ledger.sqlite3"
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=days + 40)
    with sqlite3.connect(path) as db:
        for day in range(days):
            run_id = f"bench-{day:03d}"
            at = (long_ago + dt.timedelta(days=day)).isoformat(timespec="milliseconds")
            db.execute(
                "INSERT INTO sync_runs (run_id, started_at, status) VALUES (?, ?, 'succeeded')",
                (run_id, at),
            )
            db.executemany(
                "INSERT INTO sync_rows (run_id, stream, row_key, outcome, at) "
                "VALUES (?, 'users', ?, 'unchanged', ?)",
                ((run_id, f"v-{i}", at) for i in range(rows_per_day)),
            )
            db.commit()
    before = ledger_files_bytes(state_dir)
    config = folder / "config-prune.json"
    config.write_text(json.dumps({"state_dir": str(state_dir), "streams": {}}))
    started = time.monotonic()
    subprocess.run(  # noqa: S603 - this interpreter, this package
        [PY, "-m", "target_pendo", "--config", str(config), "ledger", "prune"],
        check=True,
        capture_output=True,
    )
    took = time.monotonic() - started
    after = ledger_files_bytes(state_dir)
    return (
        f"ledger prune of {days} days x {rows_per_day:,} sync_rows lines: {took:.1f} s "
        f"({days * rows_per_day / took:,.0f} lines/s); file {before / 1e6:,.0f} MB -> "
        f"{after / 1e6:,.1f} MB"
    )


def ledger_checks(folder: Path, emulator: EmulatorProcess, million: bool) -> None:
    print(ledger_growth(folder, emulator, 100_000, 10), flush=True)
    print(prune_timing(folder, 30, 1_000_000 if million else 100_000), flush=True)


def network_checks(folder: Path) -> None:
    """What users far from Pendo meet: default settings against a limit of 100/s the target
    is not told, at 50, 150 and 250 ms round trips; and the limit stated as a ceiling."""
    for latency in (0.05, 0.15, 0.25):
        print(adaptive_check(folder, 100, 3_000, latency)[0], flush=True)
    print(adaptive_check(folder, 100, 2_000, 0.15, stated=True)[0], flush=True)


def main() -> None:
    if len(sys.argv) in (4, 5) and sys.argv[1] == "floor":
        concurrency = int(sys.argv[4]) if len(sys.argv) == 5 else CONCURRENCY
        bare_requests_floor(sys.argv[2], Path(sys.argv[3]), concurrency)
        return
    parser = argparse.ArgumentParser(description="target-pendo benchmark")
    parser.add_argument("--million", action="store_true", help="also N = 1,000,000")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the sizes")
    parser.add_argument(
        "--network", action="store_true", help="only the round-trip and rate-limit checks"
    )
    parser.add_argument("--ledger", action="store_true", help="only the ledger's size checks")
    args = parser.parse_args()
    if args.network:
        with tempfile.TemporaryDirectory(prefix="target-pendo-bench-") as tmp:
            network_checks(Path(tmp))
        return
    if args.ledger:
        emulator = EmulatorProcess()
        try:
            with tempfile.TemporaryDirectory(prefix="target-pendo-bench-") as tmp:
                ledger_checks(Path(tmp), emulator, args.million)
        finally:
            emulator.stop()
        return
    sizes = args.sizes or ([10_000, 100_000] + ([1_000_000] if args.million else []))
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; emulator in its own process, "
        f"concurrency {CONCURRENCY}, no rate limit.\n",
        flush=True,
    )
    header = ("what", "N", "seconds", "rows/s", "HTTP calls", "CPU s", "peak RSS MB")
    rows: list[tuple[str, ...]] = [header]
    rss: dict[int, tuple[float, float]] = {}
    emulator = EmulatorProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="target-pendo-bench-") as tmp:
            for n in sizes:
                out, events_rss, objects_rss = run_size(n, Path(tmp), emulator)
                rows += out
                rss[n] = (events_rss, objects_rss)
                print(f"... N={n:,} done", file=sys.stderr, flush=True)
            print(table(rows))
            print()
            folder = Path(tmp)
            events, _ = write_streams(folder, CLIENT_COST_EVENTS)
            costs = [
                client_cost(folder, events, CLIENT_COST_EVENTS, 0.0, CONCURRENCY),
                client_cost(folder, events, CLIENT_COST_EVENTS, 0.05, 16),
            ]
            cost_rows: list[tuple[str, ...]] = [header]
            for target, floor, _ in costs:
                cost_rows += [
                    (
                        r.name,
                        f"{r.rows:,}",
                        f"{r.seconds:.2f}",
                        f"{r.rate:,.0f}",
                        f"{r.calls:,}",
                        f"{r.cpu:.2f}",
                        f"{r.rss_mb:.0f}",
                    )
                    for r in (target, floor)
                ]
            print(table(cost_rows))
            (_, _, cpu_ratio), (_, _, latency_ratio) = costs
            print(
                f"ratio events / bare requests pool, CPU-bound: {cpu_ratio:.2f} (target >= 0.85); "
                f"50 ms answers, concurrency 16: {latency_ratio:.2f} (target >= 0.95)"
            )
            print()
            for limit, n in ((40, 1_600), (120, 3_600)):
                print(adaptive_check(folder, limit, n)[0], flush=True)
            network_checks(folder)
            print(rate_limit_check(folder, emulator, 200, 3000))
            ledger_checks(folder, emulator, args.million)
            if 1_000_000 in rss and 100_000 in rss:
                for i, kind in enumerate(("events", "visitors")):
                    ratio = rss[1_000_000][i] / rss[100_000][i]
                    print(
                        f"peak RSS {kind}: 1M {rss[1_000_000][i]:.0f} MB / 100k "
                        f"{rss[100_000][i]:.0f} MB = {ratio:.2f} (target <= 1.20)"
                    )
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
