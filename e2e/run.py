"""End to end, the way users set it up and run it: Meltano, a real tap, README's commands.

Starts a throwaway PostgreSQL (from the machine's binaries) with e2e/warehouse.sql and the
bundled Pendo emulator, makes a fresh Meltano project in a temporary directory (`meltano
init`), and runs README's marked "With Meltano" blocks exactly as written (e2e/readme.py finds
them; the first adds tap-postgres from e2e/tap-postgres.yml, installed by Meltano from PyPI),
with TARGET_PENDO_SRC set to this clone, the emulator's keys in PENDO_*, the database in PG*,
and every number setting given once as a TARGET_PENDO_* variable. Then it checks what "Pendo"
holds: the first run delivers everything (one row rejected with its reason, three unknown
visitors skipped), the keys are in .env and not in meltano.yml, a second run sends nothing
new, the ledger commands answer through `meltano invoke`; every setting of the plugin
definition passes from the environment through Meltano to the target; and the loader installs
from a git URL. In between, a users table added later is synced INCREMENTAL (replication key
`updated_at`, set with `meltano config set`): a visitor Pendo gets between two runs receives
its fields on the second from the target's pending queue although the tap, resuming from the
state Meltano kept, sends no row for it; a visitor still missing stays pending and is counted;
and a visitor soft-deleted in the table (the spec's `deleted_column` with `delete_behavior:
clear`, the docs' recipe for singer-sdk taps) has its mapped fields cleared, the flag itself
never sent.
Exit code 0 on success.

    python e2e/run.py --meltano .venv-meltano/bin/meltano
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from e2e.export import EXPORT_COMMANDS, check_sync_log_export  # noqa: E402
from e2e.plugin_commands import PLUGIN_COMMANDS, as_meltano_adds_it, check_plugin_commands  # noqa: E402
from e2e.readme import README, e2e_blocks  # noqa: E402
from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402

KNOWN_USERS = 37  # user-38 .. user-40 are not in Pendo: skipped, never created
DEFINITION = ROOT / "plugin" / "target-pendo.yml"

# The Meltano commands e2e runs itself, besides README's blocks (tests/e2e/test_meltano_readme.py
# accepts a README mention of a meltano command only if it is one of these or in a block).
INIT = ["init", "project", "--no_usage_stats"]
RUN = ["run", "tap-postgres", "target-pendo"]
DUMP_CONFIG = ["invoke", "--dump=config", "target-pendo"]
INVOKE = ["invoke", "target-pendo"]
INSTALL = ["install", "--clean", "target-pendo"]
# The incremental case: a users table added to the warehouse later, its replication set the way
# a user sets it, its mapping added to README's streams.json and set again, the state read back.
APP_USERS = "analytics-app_users"
SET_INCREMENTAL = [
    ["config", "set", "tap-postgres", "_metadata", APP_USERS, "replication-method", "INCREMENTAL"],
    ["config", "set", "tap-postgres", "_metadata", APP_USERS, "replication-key", "updated_at"],
]
SET_STREAMS = ["config", "set", "target-pendo", "streams", "--from-file", "streams.json"]
STATE_ID = "dev:tap-postgres-to-target-pendo"  # `meltano run`'s: <environment>:<tap>-to-<target>
GET_STATE = ["state", "get", STATE_ID]
OWN_COMMANDS = [INIT, RUN, DUMP_CONFIG, INVOKE, INSTALL]
OWN_COMMANDS += [*SET_INCREMENTAL, SET_STREAMS, GET_STATE]
OWN_COMMANDS += PLUGIN_COMMANDS
OWN_COMMANDS += EXPORT_COMMANDS

# The table a team adds later (after the runs above: the target refuses a stream it has no spec
# for). Fixed updated_at values: app-user-6 is the latest. Pendo has 1, 2, 3 and 6. `is_deleted`
# is the model's soft-delete flag (the application sets it and bumps updated_at).
APP_USERS_TABLE = """
CREATE TABLE analytics.app_users (
    id text PRIMARY KEY, email text NOT NULL, plan text, updated_at timestamptz NOT NULL,
    is_deleted boolean NOT NULL DEFAULT false
);
INSERT INTO analytics.app_users (id, email, plan, updated_at)
SELECT 'app-user-' || n, 'app' || n || '@example.com', (ARRAY['free', 'team'])[1 + n % 2],
       timestamptz '2026-01-01 00:00+00' + (n || ' hours')::interval
FROM generate_series(1, 6) AS n;
"""
# Between the two runs (all later than app-user-6): one row changes, one is soft-deleted, one is
# added, the latest.
APP_USERS_CHANGE = """
UPDATE analytics.app_users SET plan = 'enterprise', updated_at = '2026-01-01 07:00+00'
WHERE id = 'app-user-2';
UPDATE analytics.app_users SET is_deleted = true, updated_at = '2026-01-01 07:30+00'
WHERE id = 'app-user-3';
INSERT INTO analytics.app_users (id, email, plan, updated_at) VALUES
    ('app-user-7', 'app7@example.com', 'team', '2026-01-01 08:00+00');
"""
APP_USERS_SPEC = {
    "sync": "visitor",
    "agent_fields": {"email": "email"},
    "custom_fields": {"plan": "plan"},
    # README's soft-delete recipe for singer-sdk taps: a flagged row clears the mapped fields
    "deleted_column": "is_deleted",
    "delete_behavior": "clear",
}

# Every number setting once from the environment, as text (what environment variables are).
NUMBERS_FROM_ENV = {
    "TARGET_PENDO_MAX_REQUESTS_PER_SECOND": "0",  # the emulator needs no client-side cap
    "TARGET_PENDO_REQUEST_TIMEOUT": "15.5",
    "TARGET_PENDO_MAX_RETRY_SECONDS": "60",
    "TARGET_PENDO_LEDGER_WAIT_SECONDS": "30",
    "TARGET_PENDO_MAX_DELETE_FRACTION": "0.25",
    "TARGET_PENDO_MAX_REJECTED_FRACTION": "0.5",
    "TARGET_PENDO_MAX_CONCURRENCY": "4",
    "TARGET_PENDO_BATCH_SIZE_ROWS": "100",
    "TARGET_PENDO_RETRY_PENDING_DAYS": "7.5",
    "TARGET_PENDO_RETENTION_DAYS": "45",
}


def check(condition: bool, message: str) -> None:
    print(("  ok   " if condition else "  FAIL ") + message, flush=True)
    if not condition:
        raise SystemExit(1)


class Project:
    """A Meltano project in a temporary directory, and the environment its commands get."""

    def __init__(self, meltano: Path, work: Path, env: dict[str, str]) -> None:
        self.meltano = meltano
        self.work = work
        self.dir = work / "project"
        self.env = env

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        print(f"$ meltano {' '.join(args)}", flush=True)
        return self._done(
            subprocess.run(  # noqa: S603 - the meltano binary we installed, fixed arguments
                [str(self.meltano), *args],
                cwd=cwd or self.dir,
                env={**self.env, **(extra_env or {})},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=1200,
                check=False,
            ),
            f"meltano {args[0]}",
        )

    def bash(self, block: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """One README block, as written, the way a user's shell runs it."""
        print("$ bash <<README\n" + block.rstrip() + "\nREADME", flush=True)
        path = {"PATH": f"{self.meltano.parent}{os.pathsep}{self.env['PATH']}"}
        return self._done(
            subprocess.run(  # noqa: S603 - README's own block, run as a user would
                ["bash", "-euo", "pipefail", "-c", block],  # noqa: S607 - README's block
                cwd=self.dir,
                env={**self.env, **extra_env, **path},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=1200,
                check=False,
            ),
            "a README block",
        )

    @staticmethod
    def _done(
        result: subprocess.CompletedProcess[str], what: str
    ) -> subprocess.CompletedProcess[str]:
        if result.returncode != 0:
            print(result.stdout[-4000:], result.stderr[-8000:], sep="\n")
            raise SystemExit(f"{what} failed with exit code {result.returncode}")
        return result


def base_env(work: Path, pg_port: int, emulator_url: str) -> dict[str, str]:
    """The caller's environment without any Meltano or plugin settings of its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TARGET_PENDO_", "TAP_POSTGRES_", "MELTANO_", "PENDO_", "PG"))
    }
    return {
        **env,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        # the warehouse, as psql finds it: README's set-up block configures the tap from these
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg_port),
        "PGUSER": "postgres",
        "PGDATABASE": "postgres",
        # the throwaway server trusts local connections; the tap insists on a password
        "PGPASSWORD": "unused-with-trust-auth",
        "TARGET_PENDO_API_URL": emulator_url,
        "TARGET_PENDO_STATE_DIR": str(work / "state"),
        **NUMBERS_FROM_ENV,
    }


def seed(emulator: Emulator) -> None:
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


def latest_report(state_dir: Path) -> dict[str, Any]:
    return json.loads(sorted((state_dir / "reports").glob("run-*.json"))[-1].read_text())


def check_first_run(emulator: Emulator, state_dir: Path) -> None:
    events = emulator.events()
    check(len(events) == 299, f"299 of 300 product events in Pendo (got {len(events)})")
    check(len({e["properties"]["event_id"] for e in events}) == 299, "each event exactly once")
    sample = next(e for e in events if e["properties"]["event_id"] == 7)
    check(
        sample["visitorId"] == "user-8"
        and sample["accountId"] == "acct-8"
        and sample["event"] == "Invite Sent"
        and sample["context"] == {"url": "https://app.example.com/p/7"},
        "an event carries the mapped visitor, account, name and context",
    )
    days = sorted((state_dir / "rejects" / "analytics-product_events").glob("*.jsonl"))
    rejects = "".join(day.read_text() for day in days)
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
    check(
        emulator.objects("account")["acct-3"]
        == {"agent": {"name": "Account 3"}, "custom": {"tier": "free", "arr": 3001.5}},
        "account fields hold the warehouse values",
    )
    report = latest_report(state_dir)
    users = report["streams"]["analytics-users"]
    check(
        users["sent"] == KNOWN_USERS and users["skipped_unknown"] == 3,
        "the run report counts 37 visitors updated and 3 unknown",
    )
    check(
        report["streams"]["analytics-product_events"]["sent"] == len(events),
        "the run report's sent count matches the emulator",
    )


def check_secrets_kept_out(project: Project) -> None:
    meltano_yml = (project.dir / "meltano.yml").read_text()
    dotenv = (project.dir / ".env").read_text()
    check(
        DEMO_TRACK_SECRET not in meltano_yml and DEMO_INTEGRATION_KEY not in meltano_yml,
        "after `meltano config set`, neither key is in meltano.yml",
    )
    check(
        f"TARGET_PENDO_TRACK_EVENT_SECRET='{DEMO_TRACK_SECRET}'" in dotenv
        and f"TARGET_PENDO_INTEGRATION_KEY='{DEMO_INTEGRATION_KEY}'" in dotenv,
        "both keys are in .env",
    )
    loader = yaml.safe_load(meltano_yml)["plugins"]["loaders"][0]
    shipped = as_meltano_adds_it(yaml.safe_load(DEFINITION.read_text()))
    check(
        {k: v for k, v in loader.items() if k != "config"} == shipped,
        "meltano.yml holds plugin/target-pendo.yml as it is, plus config",
    )


def check_second_run(project: Project, emulator: Emulator, state_dir: Path) -> None:
    calls_before = emulator.request_counts()
    writes_before = len(emulator.metadata_writes())
    print("Second run (nothing changed):", flush=True)
    project.run(*RUN)
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
    second = latest_report(state_dir)
    check(
        second["streams"]["analytics-product_events"]["already_sent"] == 299
        and second["streams"]["analytics-users"]["unchanged"] == KNOWN_USERS,
        "the second report counts them as already sent / unchanged",
    )


def app_users_bookmark(project: Project) -> dict[str, Any]:
    """The stream's bookmark in the state Meltano keeps for the pipeline (its state backend:
    the project's system database)."""
    state = json.loads(project.run(*GET_STATE).stdout)
    bookmark: dict[str, Any] = state["singer_state"]["bookmarks"].get(APP_USERS, {})
    return bookmark


def at(bookmark: dict[str, Any]) -> dt.datetime | None:
    value = bookmark.get("replication_key_value")
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def app_user_writes(
    emulator: Emulator, since: int
) -> set[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(group, ids, ids updated) of each metadata call since `since` that wrote app users."""
    return {
        (w["group"], tuple(sorted(w["ids"])), tuple(sorted(w["updated"])))
        for w in emulator.metadata_writes()[since:]
        if any(i.startswith("app-user-") for i in w["ids"])
    }


def check_incremental_pending(
    project: Project, emulator: Emulator, state_dir: Path, dsn: str
) -> None:
    """A users table synced INCREMENTAL: the second run gets only the rows changed since the
    state Meltano kept, and the target's pending queue gives a visitor Pendo got in between
    its fields, with no row from the tap. A row soft-deleted in between (`is_deleted`, the
    spec's `deleted_column`, with `delete_behavior: clear`) clears its visitor's mapped fields."""
    print(f"Incremental stream {APP_USERS} (replication key updated_at):", flush=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(APP_USERS_TABLE)
    emulator.seed("visitor", ["app-user-1", "app-user-2", "app-user-3", "app-user-6"])
    # Meltano reuses its cached catalog until the tap's config or metadata rules change: this
    # change is also what makes it discover the new table
    for words in SET_INCREMENTAL:
        project.run(*words)
    streams_json = project.dir / "streams.json"
    streams = json.loads(streams_json.read_text())
    streams_json.write_text(json.dumps({**streams, APP_USERS: APP_USERS_SPEC}, indent=2))
    project.run(*SET_STREAMS)

    print("First run of the stream (Pendo has no app-user-4 nor app-user-5):", flush=True)
    project.run(*RUN)
    first = latest_report(state_dir)["streams"][APP_USERS]
    check(
        (first["received"], first["sent"], first["skipped_unknown"]) == (6, 4, 2),
        "the whole table comes: 4 visitors updated, 2 unknown "
        f"(received/sent/unknown {first['received']}/{first['sent']}/{first['skipped_unknown']})",
    )
    kept = app_users_bookmark(project)
    check(
        kept.get("replication_key") == "updated_at"
        and at(kept) == dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC),
        f"Meltano keeps the stream's bookmark: updated_at of app-user-6 (got {kept})",
    )

    print(
        "Between the runs: Pendo gets app-user-4; app-user-2 changes, app-user-3 is "
        "soft-deleted, app-user-7 is added:",
        flush=True,
    )
    emulator.seed("visitor", ["app-user-4", "app-user-7"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(APP_USERS_CHANGE)
    writes_before = len(emulator.metadata_writes())
    project.run(*RUN)
    # the state file Meltano wrote for this run's tap (--state): what the tap resumed from
    handed = json.loads((project.dir / ".meltano/run/tap-postgres/state.json").read_text())
    check(
        handed["bookmarks"].get(APP_USERS) == kept,
        "Meltano handed the tap that bookmark on the second run",
    )
    report = latest_report(state_dir)["streams"]
    second = report[APP_USERS]
    names = ("received", "sent", "unchanged", "cleared", "rejected", "skipped_unknown")
    counts = tuple(second[n] for n in names)
    check(
        counts == (4, 2, 1, 1, 0, 0) and report["analytics-users"]["received"] == KNOWN_USERS + 3,
        "incremental: of 7 rows the tap sends 4, app-user-2 and -7 (sent), app-user-3 "
        "soft-deleted (cleared, not rejected) and app-user-6 again (its updated_at is the "
        "bookmark, the tap reads >=; unchanged), while the full-table users stream sends all "
        f"40 ({'/'.join(names)} {'/'.join(map(str, counts))})",
    )
    pending = (second["pending_retried"], second["pending_sent"], second["pending_left"])
    check(
        pending == (2, 1, 1),
        f"the pending queue sends app-user-4 and -5 again: 1 now sent, 1 still pending "
        f"(retried/sent/left {pending})",
    )
    writes = app_user_writes(emulator, writes_before)
    tap_rows, queued = {"app-user-2", "app-user-7"}, {"app-user-4", "app-user-5"}
    updated = {(group, i) for group, _, done in writes for i in done}
    check(
        all(
            set(ids) <= tap_rows or set(ids) <= queued or ids == ("app-user-3",)
            for _, ids, _ in writes
        )
        and ("agent", tuple(sorted(queued)), ("app-user-4",)) in writes
        and {(g, ("app-user-3",), ("app-user-3",)) for g in ("agent", "custom")} <= writes
        and updated
        == {(g, i) for g in ("agent", "custom") for i in [*tap_rows, "app-user-3", "app-user-4"]},
        "Pendo got the tap's 2 rows, both queued ones, and the clear of soft-deleted app-user-3, "
        "each in calls of their own; updated in both groups: the tap's 2, app-user-4 (not -5) "
        f"and app-user-3 (got {sorted(writes)})",
    )
    visitors = emulator.objects("visitor")
    check(
        visitors["app-user-4"]["agent"] == {"email": "app4@example.com"}
        and visitors["app-user-4"]["custom"] == {"plan": "free"}
        and visitors["app-user-2"]["custom"] == {"plan": "enterprise"}
        and visitors["app-user-7"]["agent"] == {"email": "app7@example.com"},
        "app-user-4 holds the fields of its first-run row; app-user-2 and -7 the new rows'",
    )
    check(
        visitors["app-user-3"]["agent"] == {"email": None}
        and visitors["app-user-3"]["custom"] == {"plan": None},
        f"soft-deleted app-user-3's mapped fields are cleared (got {visitors['app-user-3']})",
    )
    untouched = {
        "app-user-1": {"agent": {"email": "app1@example.com"}, "custom": {"plan": "team"}},
        "app-user-6": {"agent": {"email": "app6@example.com"}, "custom": {"plan": "free"}},
    }
    got = {i: {g: visitors[i][g] for g in ("agent", "custom")} for i in untouched}
    check(got == untouched, f"app-user-1 and -6 keep their first-run fields (got {got})")
    schema = emulator.schema("visitor")
    flag_fields = [g for g in ("agent", "custom") if "is_deleted" in schema.get(g, {})]
    flag_values = [i for i, v in visitors.items() if any("is_deleted" in f for f in v.values())]
    check(
        not flag_fields and not flag_values,
        "the flag column is not sent: no field is_deleted in Pendo's visitor schema (an agent "
        f"value would create it) nor on any visitor (in groups {flag_fields}, on {flag_values})",
    )
    check("app-user-5" not in visitors, "app-user-5 is still not in Pendo (never created)")
    kept = app_users_bookmark(project)
    check(
        at(kept) == dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC),
        f"the bookmark moves on to app-user-7's updated_at (got {kept})",
    )


def environment_values(emulator_url: str, work: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """For every setting of the plugin definition: (TARGET_PENDO_* text, what Meltano must
    hand the target for it). Values a run accepts (dry run, so nothing is sent)."""
    special = {
        "track_event_secret": DEMO_TRACK_SECRET,
        "integration_key": DEMO_INTEGRATION_KEY,
        "region": "eu",
        "api_url": emulator_url,
        "track_url": emulator_url,
        "state_dir": str(work / "env-state"),
        # Meltano merges an object from the environment into the one in meltano.yml, key by
        # key: the same streams as README's streams.json make the result plain to compare
        "streams": json.dumps(json.loads((work / "project" / "streams.json").read_text())),
        "unmapped_streams": "skip",
        "ledger_url": f"sqlite:///{work / 'env-ledger.sqlite3'}",
        "dry_run": "true",
        "load_method": "append-only",  # the only value accepted
        "add_record_metadata": "false",
        "flattening_separator": "__",
        "stream_maps": "{}",
        "faker_config": '{"seed": 7}',
        # posted to only when a run fails or stops short: this dry run succeeds, so never
        "alert_webhook_url": f"{emulator_url}/hooks/alert",
        **{k.removeprefix("TARGET_PENDO_").lower(): v for k, v in NUMBERS_FROM_ENV.items()},
    }
    texts: dict[str, str] = {}
    expected: dict[str, Any] = {}
    for setting in yaml.safe_load(DEFINITION.read_text())["settings"]:
        name, kind = setting["name"], setting["kind"]
        text = special.get(name)
        if text is None:
            generic = {
                "boolean": "false" if setting.get("value") else "true",
                "integer": "3",
                "object": '{"k": "v"}',
            }
            if kind not in generic:
                raise SystemExit(
                    f"e2e: setting {name!r} (kind {kind}) needs a value a run accepts in "
                    "environment_values' `special`"
                )
            text = generic[kind]
        texts[f"TARGET_PENDO_{name.upper()}"] = text
        if kind == "integer":
            expected[name] = int(text)
        elif kind == "boolean":
            expected[name] = text == "true"
        elif kind == "object":
            expected[name] = json.loads(text)
        else:  # string, options: the text as it is (numbers included: kind string)
            expected[name] = text
    return texts, expected


def check_every_setting_from_the_environment(project: Project, emulator: Emulator) -> None:
    print("Every setting of the plugin definition from a TARGET_PENDO_* variable:", flush=True)
    texts, expected = environment_values(emulator.url, project.work)
    dumped = json.loads(project.run(*DUMP_CONFIG, extra_env=texts).stdout)
    differ = {k: (dumped.get(k), v) for k, v in expected.items() if dumped.get(k) != v}
    extra = sorted(set(dumped) - set(expected))
    if differ or extra:
        print(f"  differ, as (got, expected): {differ}; not asked for: {extra}")
    check(
        not differ and not extra,
        f"Meltano hands each of the {len(expected)} settings over as the definition's kind says",
    )
    calls = emulator.request_counts()
    project.run(*INVOKE, extra_env=texts)  # no input: a dry-run sync of nothing
    report = latest_report(project.work / "env-state")
    check(
        report["status"] == "succeeded" and report["dry_run"] is True,
        "the target runs on that config (dry_run from the text 'true', and the rest)",
    )
    check(emulator.request_counts() == calls, "and sends nothing")


def check_git_install(project: Project, root: Path) -> None:
    """The other way README gives: TARGET_PENDO_PIP_URL as a git URL (here file://)."""
    if not (root / ".git").exists() or shutil.which("git") is None:
        print("  skip installing from a git URL: this copy is not a git checkout", flush=True)
        return
    url = f"git+file://{root}"
    dotenv = project.dir / ".env"
    lines = [
        f"TARGET_PENDO_PIP_URL={url}" if line.startswith("TARGET_PENDO_PIP_URL=") else line
        for line in dotenv.read_text().splitlines()
    ]
    dotenv.write_text("\n".join(lines) + "\n")
    project.run(*INSTALL)
    venv = project.dir / ".meltano" / "loaders" / "target-pendo" / "venv"
    origins = [
        json.loads(p.read_text())
        for p in venv.glob("lib/*/site-packages/target_pendo-*.dist-info/direct_url.json")
    ]
    check(
        len(origins) == 1 and "vcs_info" in origins[0] and origins[0]["url"].startswith("file://"),
        f"`meltano install` installs target-pendo from TARGET_PENDO_PIP_URL={url}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meltano", default=str(ROOT / ".venv-meltano" / "bin" / "meltano"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args()
    started = time.monotonic()
    blocks = e2e_blocks(README.read_text())
    check(len(blocks) == 2, "README has the two blocks e2e runs (set up and sync; the ledger)")

    server = PostgresServer()
    work = Path(tempfile.mkdtemp(prefix="target-pendo-e2e-"))
    project: Project | None = None
    try:
        dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute((ROOT / "e2e" / "warehouse.sql").read_text())
        with Emulator() as emulator:
            seed(emulator)
            state_dir = work / "state"
            project = Project(
                Path(args.meltano).resolve(), work, base_env(work, server.port, emulator.url)
            )
            project.run(*INIT, cwd=work)

            print("README's set-up block (its `meltano run` is the first run):", flush=True)
            readme_env = {
                "TARGET_PENDO_SRC": str(ROOT),
                "PENDO_TRACK_EVENT_SECRET": DEMO_TRACK_SECRET,
                "PENDO_INTEGRATION_KEY": DEMO_INTEGRATION_KEY,
            }
            result = project.bash(blocks[0], readme_env)
            check(
                "track_event_secret: ok" in result.stdout
                and "integration_key: ok (valid, with write access)" in result.stdout,
                "`meltano invoke target-pendo check` finds both keys right",
            )
            check_first_run(emulator, state_dir)
            check_secrets_kept_out(project)
            check_second_run(project, emulator, state_dir)
            check_incremental_pending(project, emulator, state_dir, dsn)

            print("README's ledger block:", flush=True)
            result = project.bash(blocks[1], readme_env)
            check(
                "analytics-product_events\tsent\t299" in result.stdout
                and "analytics-accounts\tsent\t8" in result.stdout,
                "`ledger status` counts the keys per stream and status",
            )
            check(
                f"{APP_USERS}\tpending: no such visitor\t1" in result.stdout,
                "`ledger status` counts app-user-5 in the pending queue",
            )
            check(
                f"{APP_USERS}\tcleared\t1" in result.stdout,
                "`ledger status` counts soft-deleted app-user-3 as cleared",
            )
            check(
                "forgot 8 key(s) of stream 'analytics-accounts'" in result.stdout,
                "`ledger reset` forgets the stream's keys",
            )
            check_plugin_commands(project, check)
            check_sync_log_export(project, check, state_dir, server.port)
            check_every_setting_from_the_environment(project, emulator)
            check_git_install(project, ROOT)
        print(f"e2e: all checks passed in {time.monotonic() - started:.0f}s")
    finally:
        server.stop()
        if args.keep:
            print(f"project kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
