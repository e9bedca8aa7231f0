"""The sync log in the warehouse: docs/sync-log-export.md's Meltano blocks, run as written.

e2e/run.py calls `check_sync_log_export` once the project has synced (its ledger has runs,
rejected rows and reports). It adds meltanolabs-target-postgres from PyPI (the definition in
e2e/target-postgres.yml: Meltano Hub's, pinned, as tap-postgres is), pointed at e2e's
PostgreSQL by TARGET_POSTGRES_* variables, then runs the page's shell blocks in order: the
custom extractor `tap-pendo-sync-log` (a script calling `meltano invoke target-pendo ledger
export`), `meltano run tap-pendo-sync-log target-postgres`, and one more sync with its export in
one `meltano run`. It checks that `meltano invoke target-pendo ledger export` writes only Singer
messages and no key; that the tables hold every finished run and `sync_rows` line of the ledger,
each once, the report as jsonb; that the page's SQL runs and finds the rejected event with its
reason; and that the last export, from the state Meltano kept, took the new run alone.
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psycopg

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "sync-log-export.md"
EVENTS = "analytics-product_events"
_SHELL = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.S | re.M)
_SQL = re.compile(r"^```sql\n(.*?)^```", re.S | re.M)


def _meltano_blocks() -> list[str]:
    """The page's shell blocks that run `meltano` (not the one after README's Quick start, nor
    the one without Meltano), in order."""
    return [b for b in _SHELL.findall(PAGE.read_text()) if re.search(r"^meltano ", b, re.M)]


ADD_LOADER = ["add", "target-postgres", "--from-ref", str(ROOT / "e2e" / "target-postgres.yml")]
EXPORT = ["invoke", "target-pendo", "ledger", "export"]
STATE_ID = "dev:tap-pendo-sync-log-to-target-postgres"
GET_STATE = ["state", "get", STATE_ID]
# For e2e/run.py's OWN_COMMANDS: every Meltano command e2e runs is listed there, the page's
# blocks' too (the lines that start with `meltano`; heredoc bodies do not).
EXPORT_COMMANDS = [ADD_LOADER, EXPORT, GET_STATE] + [
    shlex.split(line, comments=True)[1:]
    for block in _meltano_blocks()
    for line in block.splitlines()
    if line.startswith("meltano ")
]
COUNTS_SQL = """
SELECT (SELECT COUNT(*) FROM pendo_sync_log.pendo_sync_runs),
       (SELECT COUNT(*) FROM pendo_sync_log.pendo_sync_rows)
"""
# the reports are jsonb: the events the runs sent, from their per-stream counts
SENT_EVENTS_SQL = """
SELECT SUM((report->'streams'->'analytics-product_events'->>'sent')::int)
FROM pendo_sync_log.pendo_sync_runs WHERE jsonb_typeof(report) = 'object'
"""


class MeltanoProject(Protocol):
    """What e2e/run.py's `Project` offers: a meltano command, or a shell block as a user's
    shell runs it, in the project; exit code 0 or SystemExit with its output."""

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]: ...

    def bash(self, block: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]: ...


def _ledger_counts(state_dir: Path) -> tuple[int, int]:
    """(finished runs, their sync_rows lines) in the project's SQLite ledger."""
    with sqlite3.connect(state_dir / "ledger.sqlite3") as db:
        runs = db.execute("SELECT COUNT(*) FROM sync_runs WHERE status <> 'running'").fetchone()
        rows = db.execute(
            "SELECT COUNT(*) FROM sync_rows WHERE run_id IN "
            "(SELECT run_id FROM sync_runs WHERE status <> 'running')"
        ).fetchone()
    return int(runs[0]), int(rows[0])


def _exported(stdout: str) -> dict[str, int]:
    """Messages of an export by kind (RECORDs by stream); fails on a line that is not JSON."""
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        message = json.loads(line)
        kind = message["type"] + (f" {message['stream']}" if message["type"] == "RECORD" else "")
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def check_sync_log_export(
    project: MeltanoProject, check: Callable[[bool, str], None], state_dir: Path, pg_port: int
) -> None:
    """docs/sync-log-export.md's Meltano blocks as written, into e2e's PostgreSQL."""
    print("The sync log into the warehouse (docs/sync-log-export.md):", flush=True)
    exported = project.run(*EXPORT)
    secrets = (DEMO_TRACK_SECRET, DEMO_INTEGRATION_KEY)
    check(
        not any(s in exported.stdout or s in exported.stderr for s in secrets),
        "`meltano invoke target-pendo ledger export` writes no key (Meltano hands it both)",
    )
    counts = _exported(exported.stdout)
    runs, rows = _ledger_counts(state_dir)
    check(
        counts.get("SCHEMA") == 2
        and counts.get("RECORD pendo_sync_runs") == runs
        and counts.get("RECORD pendo_sync_rows") == rows,
        f"and only Singer messages: 2 SCHEMAs, the ledger's {runs} finished runs and {rows} "
        f"sync_rows lines (got {counts})",
    )

    project.run(*ADD_LOADER)
    loader_env = {
        "TARGET_POSTGRES_HOST": "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(pg_port),
        "TARGET_POSTGRES_USER": "postgres",
        "TARGET_POSTGRES_PASSWORD": "unused-with-trust-auth",
        "TARGET_POSTGRES_DATABASE": "postgres",
    }
    blocks = _meltano_blocks()
    check(len(blocks) == 3, "the page has its 3 Meltano blocks (extractor, export, both)")
    set_up, export, sync_and_export = blocks
    project.bash(set_up, loader_env)
    project.bash(export, loader_env)
    dsn = f"host=127.0.0.1 port={pg_port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        landed = conn.execute(COUNTS_SQL).fetchone()
        sent = conn.execute(SENT_EVENTS_SQL).fetchone()
        rejected, *others = [conn.execute(sql).fetchall() for sql in _SQL.findall(PAGE.read_text())]
    check(
        landed == (runs, rows) and sent == (299,),
        f"`meltano run tap-pendo-sync-log target-postgres` loads {runs} runs and {rows} lines; "
        f"the reports are jsonb, their sent events add up to 299 (got {landed}, {sent})",
    )
    check(
        bool(rejected)
        and {(r[2], r[3]) for r in rejected} == {(EVENTS, "150")}
        and all("'user_id' is missing or null" in r[4] for r in rejected),
        "the page's query finds event 150, rejected with its reason by each run "
        f"(got {rejected[:2]}...), and its other queries run ({len(others)})",
    )

    print("One more sync, and its export in the same `meltano run`:", flush=True)
    result = project.bash(sync_and_export, loader_env)
    runs_now, rows_now = _ledger_counts(state_dir)
    said = re.findall(r"exported (\d+) finished run\(s\)", result.stdout + result.stderr)
    check(
        said == ["1"] and runs_now == runs + 1,
        f"from the state Meltano kept, the export takes the new run alone (said {said})",
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        landed = conn.execute(COUNTS_SQL).fetchone()
    check(
        landed == (runs_now, rows_now),
        f"the tables hold the ledger's {runs_now} runs and {rows_now} lines, each once "
        f"(got {landed})",
    )
    state = json.loads(project.run(*GET_STATE).stdout)
    with sqlite3.connect(state_dir / "ledger.sqlite3") as db:
        (latest,) = db.execute(
            "SELECT run_id FROM sync_runs WHERE status <> 'running' "
            "ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
    recent = state["singer_state"]["bookmarks"]["pendo_sync_runs"]["recent_runs"]
    check(latest in recent, f"Meltano keeps the bookmark, past run {latest}")
