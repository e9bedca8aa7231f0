"""End to end, the way users run it: `meltano run tap-postgres target-pendo`.

Starts a throwaway PostgreSQL (from the machine's binaries), loads e2e/warehouse.sql, starts
the bundled Pendo emulator, runs Meltano twice from this repository's meltano.yml (Meltano
installs meltanolabs-tap-postgres from PyPI into its own venv), and checks what "Pendo" holds:
the first run delivers everything (one row rejected with its reason, three unknown visitors
skipped), the second sends nothing new. Exit code 0 on success.

    python e2e/run.py --meltano .venv-meltano/bin/meltano
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from target_pendo.emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402

KNOWN_USERS = 37  # user-38 .. user-40 are not in Pendo: skipped, never created


def check(condition: bool, message: str) -> None:
    print(("  ok   " if condition else "  FAIL ") + message, flush=True)
    if not condition:
        raise SystemExit(1)


def meltano(binary: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    print(f"$ meltano {' '.join(args)}", flush=True)
    result = subprocess.run(  # noqa: S603 - the meltano binary we installed, fixed arguments
        [binary, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-8000:], sep="\n")
        raise SystemExit(f"meltano {args[0]} failed with exit code {result.returncode}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meltano", default=str(ROOT / ".venv-meltano" / "bin" / "meltano"))
    args = parser.parse_args()

    server = PostgresServer()
    work = Path(tempfile.mkdtemp(prefix="target-pendo-e2e-"))
    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute((ROOT / "e2e" / "warehouse.sql").read_text())
        with Emulator() as emulator:
            emulator.seed("visitor", group="agent", fields={"email": "string"})
            emulator.seed(
                "visitor",
                group="custom",
                fields={"plan": "string", "seats": "integer", "signedUpAt": "time"},
            )
            emulator.seed("visitor", [f"user-{n}" for n in range(1, KNOWN_USERS + 1)])
            emulator.seed("account", group="agent", fields={"name": "string"})
            emulator.seed("account", group="custom", fields={"tier": "string", "arr": "float"})
            emulator.seed("account", [f"acct-{n}" for n in range(1, 9)])
            state_dir = work / "state"
            env = {
                **os.environ,
                "MELTANO_DATABASE_URI": f"sqlite:///{work / 'meltano.db'}",
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "TAP_POSTGRES_PORT": str(server.port),
                # the throwaway server trusts local connections; the tap insists on a password
                "TAP_POSTGRES_PASSWORD": "unused-with-trust-auth",
                "TARGET_PENDO_API_URL": emulator.url,
                "TARGET_PENDO_TRACK_EVENT_SECRET": DEMO_TRACK_SECRET,
                "TARGET_PENDO_INTEGRATION_KEY": DEMO_INTEGRATION_KEY,
                "TARGET_PENDO_STATE_DIR": str(state_dir),
            }
            meltano(args.meltano, env, "install")

            print("First run:", flush=True)
            meltano(args.meltano, env, "run", "tap-postgres", "target-pendo")
            events = emulator.events()
            check(len(events) == 299, f"299 of 300 product events in Pendo (got {len(events)})")
            check(
                len({e["properties"]["event_id"] for e in events}) == 299,
                "each event exactly once",
            )
            sample = next(e for e in events if e["properties"]["event_id"] == 7)
            check(
                sample["visitorId"] == "user-8"
                and sample["accountId"] == "acct-8"
                and sample["event"] == "Invite Sent"
                and sample["context"] == {"url": "https://app.example.com/p/7"},
                "an event carries the mapped visitor, account, name and context",
            )
            rejects = (state_dir / "rejects" / "analytics-product_events.jsonl").read_text()
            check(
                '"key":150' in rejects and "'user_id' is missing or null" in rejects,
                "the event without a visitor is in the rejects file with its reason",
            )
            visitors = emulator.objects("visitor")
            check(len(visitors) == KNOWN_USERS, "no unknown visitor was created")
            user5 = visitors["user-5"]
            check(
                user5["agent"] == {"email": "user5@example.com"}
                and user5["custom"]["plan"] == "enterprise"
                and user5["custom"]["seats"] == 5
                and isinstance(user5["custom"]["signedupat"], int),
                "visitor agent and custom fields hold the warehouse values",
            )
            accounts = emulator.objects("account")
            check(
                accounts["acct-3"]
                == {
                    "agent": {"name": "Account 3"},
                    "custom": {"tier": "free", "arr": 3001.5},
                },
                "account fields hold the warehouse values",
            )
            report_path = sorted((state_dir / "reports").glob("run-*.json"))[-1]
            report = json.loads(report_path.read_text())
            users = report["streams"]["analytics-users"]
            check(
                users["sent"] == KNOWN_USERS and users["skipped_unknown"] == 3,
                "the run report counts 37 visitors updated and 3 unknown",
            )
            check(
                report["streams"]["analytics-product_events"]["sent"] == len(events),
                "the run report's sent count matches the emulator",
            )
            calls_before = emulator.request_counts()
            writes_before = len(emulator.metadata_writes())

            print("Second run (nothing changed):", flush=True)
            meltano(args.meltano, env, "run", "tap-postgres", "target-pendo")
            calls_after = emulator.request_counts()
            check(
                calls_after.get("POST /data/track") == calls_before.get("POST /data/track"),
                "no Track call on the second run",
            )
            retried = {i for w in emulator.metadata_writes()[writes_before:] for i in w["ids"]}
            check(
                retried == {"user-38", "user-39", "user-40"},
                "no metadata write but the retry of the 3 visitors Pendo did not have "
                f"(got {sorted(retried)})",
            )
            second = json.loads(sorted((state_dir / "reports").glob("run-*.json"))[-1].read_text())
            check(
                second["streams"]["analytics-product_events"]["already_sent"] == 299
                and second["streams"]["analytics-users"]["unchanged"] == KNOWN_USERS,
                "the second report counts them as already sent / unchanged",
            )
        print("e2e: all checks passed")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
