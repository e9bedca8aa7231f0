"""`target-pendo-demo`: a whole sync into the bundled emulator, then what Pendo received.

It writes a small Singer file (product events, a few of them broken on purpose), starts the
emulator on a free localhost port, pipes the file through the real `target-pendo` CLI as a
separate process (exactly as `tap | target-pendo --config c.json` would), and prints the
events the emulator holds, the rejects and the STATE that came out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from pendo_emulator import DEMO_TRACK_SECRET, Emulator

STREAM = "product_events"
EVENT_NAMES = ("Signed Up", "Report Exported", "Dashboard Viewed", "Invite Sent")


def demo_singer_lines(rows: int, seed: int = 7) -> list[str]:
    """A tap's output: SCHEMA, RECORDs (3 broken), STATE every 50 rows."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    schema = {
        "type": "object",
        "properties": {
            "event_id": {"type": "integer"},
            "user_id": {"type": ["string", "null"]},
            "account_id": {"type": ["string", "null"]},
            "event": {"type": "string"},
            "occurred_at": {"type": ["string", "null"]},
            "plan": {"type": ["string", "null"]},
            "seats": {"type": ["integer", "null"]},
            "page-url": {"type": ["string", "null"]},
        },
    }
    lines = [
        json.dumps(
            {"type": "SCHEMA", "stream": STREAM, "schema": schema, "key_properties": ["event_id"]}
        )
    ]
    for i in range(1, rows + 1):
        occurred = now - dt.timedelta(minutes=rng.randint(1, 48 * 60))
        row = {
            "event_id": i,
            "user_id": f"user-{rng.randint(1, 40)}",
            "account_id": f"acct-{rng.randint(1, 8)}",
            "event": rng.choice(EVENT_NAMES),
            "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
            "plan": rng.choice(("free", "team", "enterprise")),
            "seats": rng.randint(1, 500),
            "page-url": f"https://app.example.com/p/{rng.randint(1, 20)}",
        }
        if i in (17, 111):
            row["user_id"] = None  # no visitor: rejected locally
        if i == 64:
            row["occurred_at"] = "last tuesday"  # unusable timestamp: rejected locally
        lines.append(json.dumps({"type": "RECORD", "stream": STREAM, "record": row}))
        if i % 50 == 0 or i == rows:
            lines.append(
                json.dumps({"type": "STATE", "value": {"bookmarks": {STREAM: {"event_id": i}}}})
            )
    return lines


def run_demo(workdir: Path, rows: int) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "state", ignore_errors=True)  # each demo starts from nothing
    singer_file = workdir / "product_events.singer.jsonl"
    singer_file.write_text("\n".join(demo_singer_lines(rows)) + "\n")
    with Emulator() as emulator:
        config = {
            "api_url": emulator.url,
            "track_event_secret": DEMO_TRACK_SECRET,
            "state_dir": str(workdir / "state"),
            "max_requests_per_second": 500,
            "streams": {
                STREAM: {
                    "event_name_column": "event",
                    "visitor_id_column": "user_id",
                    "account_id_column": "account_id",
                    "timestamp_column": "occurred_at",
                    "context_columns": {"url": "page-url"},
                }
            },
        }
        config_file = workdir / "config.json"
        config_file.write_text(json.dumps(config, indent=2) + "\n")
        print(f"Pendo emulator at {emulator.url}")
        print(f"Piping {singer_file} ({rows} rows) into: target-pendo --config {config_file}\n")
        with singer_file.open() as stdin:
            proc = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "target_pendo", "--config", str(config_file)],
                stdin=stdin,
                capture_output=True,
                text=True,
                check=False,
            )
        events = emulator.events()
        counts = emulator.request_counts()
    summary = [line for line in proc.stderr.splitlines() if "stream '" in line or "error" in line]
    print("target-pendo said:")
    for line in summary:
        print("  " + line.split("| ")[-1])
    print(f"  exit code {proc.returncode}")
    print("\nSTATE emitted (what Meltano would store):")
    for line in proc.stdout.splitlines():
        print("  " + line)
    print(
        f"\nWhat Pendo received: {len(events)} events in {counts.get('POST /data/track', 0)} "
        "Track calls"
    )
    for name, n in sorted(Counter(e["event"] for e in events).items()):
        print(f"  {n:5d}  {name}")
    if events:
        sample = {k: v for k, v in events[0].items() if not k.startswith("_")}
        print("\nOne event as Pendo holds it:\n" + json.dumps(sample, indent=2))
    days = sorted((workdir / "state" / "rejects" / STREAM).glob("*.jsonl"))
    if days:
        rejects = days[-1]  # the demo's run is today's
        lines = rejects.read_text().splitlines()
        print(f"\nRejected rows ({len(lines)}), from {rejects}:")
        for line in lines:
            item = json.loads(line)
            print(f"  key {item['key']}: {item['reason']}")
    return proc.returncode


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Demo sync into the bundled Pendo emulator.")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=Path(".demo"))
    args = parser.parse_args(argv)
    sys.exit(run_demo(args.workdir, args.rows))
