"""The pending queue: object rows Pendo could not take yet are sent again by later runs by
themselves, as an incremental tap (which never sends an unchanged row again) needs. Through
the real CLI against the emulator, several runs on one ledger, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import subprocess
from collections import defaultdict
from pathlib import Path

import requests
import sqlalchemy as sa

from pendo_emulator import DEMO_INTEGRATION_KEY
from target_pendo.ledger import default_url

from ..singer import (
    TARGET_CMD,
    lines_to_text,
    record,
    run_cli,
    schema,
    target_cmd_with_progress_every,
)
from .test_ledger import USER_PROPS, USERS, sent_ids, user_lines, users_config

FIELDS = {"plan": "string", "seats": "integer"}


def last_report(config: dict) -> defaultdict[str, int]:
    """The last run's counts for the stream (0 for a count it does not have: a run with
    nothing to do for the stream reports none)."""
    reports = sorted((Path(config["state_dir"]) / "reports").glob("run-*.json"))
    return defaultdict(int, json.loads(reports[-1].read_text())["streams"].get(USERS, {}))


def run(config: dict, lines: list[str], tmp_path: Path) -> defaultdict[str, int]:
    result = run_cli(config, lines, tmp_path)
    assert result.returncode == 0, result.stderr
    return last_report(config)


def ledger_url(config: dict) -> str:
    return config.get("ledger_url") or default_url(config["state_dir"])


def plans(emulator) -> dict[str, str]:
    """The plan Pendo holds for each visitor that has one."""
    found = {k: v["custom"].get("plan") for k, v in emulator.objects("visitor").items()}
    return {k: plan for k, plan in found.items() if plan is not None}


def test_visitors_that_appear_between_runs_get_their_fields_with_no_row_from_the_tap(
    emulator, ledger_config, tmp_path
):
    """Run 1: 30 users, 12 not in Pendo yet. Between runs 5 of them log in. Run 2 (an
    incremental tap: 2 new rows only) sends those 5 from the pending queue; the other 7
    wait. Run 3 (no rows at all, only the SCHEMA) tries the 7 again."""
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", [f"v-{i}" for i in range(18)])
    config = users_config(ledger_config)
    first = run(config, user_lines(range(30), plan=lambda i: f"plan-{i}"), tmp_path)
    assert (first["sent"], first["skipped_unknown"]) == (18, 12)
    assert first["pending_retried"] == 0

    emulator.seed("visitor", [f"v-{i}" for i in (18, 19, 20, 21, 22, 30, 31)])
    second = run(config, user_lines([30, 31], plan=lambda i: f"plan-{i}"), tmp_path)
    assert (second["received"], second["sent"]) == (2, 2)
    assert (second["pending_retried"], second["pending_sent"], second["pending_left"]) == (
        12,
        5,
        7,
    )
    held = plans(emulator)
    assert all(held[f"v-{i}"] == f"plan-{i}" for i in [*range(23), 30, 31])
    assert not any(f"v-{i}" in held for i in range(23, 30))

    third = run(config, user_lines([]), tmp_path)
    assert (third["pending_retried"], third["pending_sent"], third["pending_left"]) == (7, 0, 7)

    path = tmp_path / "config.json"  # written by run_cli
    status = subprocess.run(
        [*TARGET_CMD, "--config", str(path), "ledger", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert f"{USERS}\tpending: no such visitor\t7" in status.stdout.splitlines()
    shown = subprocess.run(
        [*TARGET_CMD, "--config", str(path), "report"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "retried from pending" in shown.stdout
    assert "still pending" in shown.stdout


def test_a_newer_row_replaces_the_pending_one(emulator, ledger_config, tmp_path):
    emulator.seed("visitor", group="custom", fields=FIELDS)
    config = users_config(ledger_config)
    run(config, user_lines([1], plan=lambda i: "old"), tmp_path)
    emulator.seed("visitor", ["v-1"])
    writes_before = len(sent_ids(emulator))
    report = run(config, user_lines([1], plan=lambda i: "new"), tmp_path)
    assert plans(emulator)["v-1"] == "new"
    assert sent_ids(emulator)[writes_before:] == ["v-1"]  # once, the newer row only
    assert report["pending_retried"] == 0
    assert run(config, user_lines([]), tmp_path)["pending_retried"] == 0  # nothing left


def test_pending_rows_expire_after_retry_pending_days(emulator, ledger_config, tmp_path):
    emulator.seed("visitor", group="custom", fields=FIELDS)
    config = users_config({**ledger_config, "retry_pending_days": 30})
    run(config, user_lines([1, 2]), tmp_path)
    engine = sa.create_engine(ledger_url(config))
    with engine.begin() as conn:  # v-1 has waited 40 days
        conn.execute(
            sa.text("UPDATE row_state SET pending_since = :t WHERE row_key = 'v-1'"),
            {"t": "2000-01-01T00:00:00.000+00:00"},
        )
    emulator.seed("visitor", ["v-1", "v-2"])
    report = run(config, user_lines([]), tmp_path)
    assert (report["pending_expired"], report["pending_retried"], report["pending_sent"]) == (
        1,
        1,
        1,
    )
    assert "v-1" not in plans(emulator)
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM row_state WHERE pending IS NOT NULL"))
        assert left.scalar() == 0
    engine.dispose()


def test_a_mapping_change_drops_pending_values_instead_of_sending_stale_fields(
    emulator, ledger_config, tmp_path
):
    emulator.seed("visitor", group="custom", fields=FIELDS)
    run(users_config(ledger_config), user_lines([1]), tmp_path)
    emulator.seed("visitor", ["v-1"])
    remapped = users_config(ledger_config, custom_fields={"plan": "plan"})
    report = run(remapped, user_lines([]), tmp_path)
    assert (report["pending_invalidated"], report["pending_retried"]) == (1, 0)
    assert "v-1" not in plans(emulator)


def test_retry_pending_days_0_turns_retrying_off(emulator, ledger_config, tmp_path):
    emulator.seed("visitor", group="custom", fields=FIELDS)
    config = users_config({**ledger_config, "retry_pending_days": 0})
    run(config, user_lines([1]), tmp_path)
    emulator.seed("visitor", ["v-1"])
    assert run(config, user_lines([]), tmp_path)["pending_retried"] == 0
    assert "v-1" not in plans(emulator)


def test_a_value_pendo_failed_per_item_is_retried_and_a_refusal_is_not(
    emulator, ledger_config, tmp_path
):
    """Pendo failing one row's value in a 200 answer may pass later (retried); the row keeps
    its place in the rejects file of the run that failed it, not of every retry."""
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", ["v-1", "v-2"])
    emulator.reject_metadata("visitor", "plan", ["flaky"], "temporarily unavailable")
    config = users_config(ledger_config)
    first = run(config, user_lines([1, 2], plan=lambda i: "flaky" if i == 1 else "ok"), tmp_path)
    assert first["rejected"] == 1
    emulator.reset()
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", ["v-1", "v-2"])
    second = run(config, user_lines([]), tmp_path)
    assert (second["pending_retried"], second["pending_sent"], second["rejected"]) == (1, 1, 0)
    assert plans(emulator) == {"v-1": "flaky"}


def test_null_values_skip_leaves_what_pendo_holds_and_resends_nothing(
    emulator, ledger_config, tmp_path
):
    """`null_values: skip`: a null in the warehouse leaves Pendo's value; the row's hash leaves
    the skipped null out, so the next run finds it unchanged."""
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", ["v-1"])
    config = users_config(ledger_config)
    run(config, user_lines([1], plan=lambda i: "pro"), tmp_path)
    skipping = users_config(ledger_config, null_values="skip")
    first = run(skipping, user_lines([1], plan=lambda i: None), tmp_path)
    assert plans(emulator) == {"v-1": "pro"}
    assert emulator.objects("visitor")["v-1"]["custom"]["seats"] == 1  # the other field went
    assert first["sent"] == 1
    again = run(skipping, user_lines([1], plan=lambda i: None), tmp_path)
    assert (again["sent"], again["unchanged"]) == (0, 1)
    clearing = run(config, user_lines([1], plan=lambda i: None), tmp_path)
    assert clearing["sent"] == 1
    assert plans(emulator) == {}  # the default clears it


def test_a_row_queued_while_nulls_cleared_keeps_no_null_once_they_are_skipped(
    emulator, ledger_config, tmp_path
):
    """Queued under `clear` with a null plan; retried under `skip`: the plan Pendo got
    meanwhile stays, the other field arrives."""
    emulator.seed("visitor", group="custom", fields=FIELDS)
    run(users_config(ledger_config), user_lines([1], plan=lambda i: None), tmp_path)
    emulator.seed("visitor", ["v-1"])
    answer = requests.post(  # someone sets the plan in Pendo meanwhile
        f"{emulator.url}/api/v1/metadata/visitor/custom/value",
        json=[{"visitorId": "v-1", "values": {"plan": "kept"}}],
        headers={"x-pendo-integration-key": DEMO_INTEGRATION_KEY},
        timeout=10,
    )
    assert answer.status_code == 200
    skipping = users_config(ledger_config, null_values="skip")
    report = run(skipping, user_lines([]), tmp_path)
    assert (report["pending_retried"], report["pending_sent"]) == (1, 1)
    held = emulator.objects("visitor")["v-1"]["custom"]
    assert (held["plan"], held["seats"]) == ("kept", 1)


def test_incremental_syncs_over_days_leave_every_visitor_in_pendo_up_to_date(
    emulator, ledger_config, tmp_path
):
    """Days of incremental syncs: visitors log in (appear in Pendo) at random between runs,
    the tap sends only the rows changed since its bookmark. After every run, each visitor
    Pendo has holds the warehouse's latest values."""
    rng = random.Random(11)
    warehouse = {f"v-{i}": rng.choice(["free", "team", "pro"]) for i in range(120)}
    in_pendo = set(rng.sample(sorted(warehouse), 60))
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", sorted(in_pendo))
    config = users_config(ledger_config, custom_fields={"plan": "plan"})
    changed = sorted(warehouse)
    for _ in range(5):
        lines = [schema(USERS, USER_PROPS)]
        lines += [record(USERS, {"id": k, "plan": warehouse[k], "seats": 1}) for k in changed]
        run(config, lines, tmp_path)
        held = plans(emulator)
        assert {k: held.get(k) for k in in_pendo} == {k: warehouse[k] for k in in_pendo}
        newcomers = rng.sample(sorted(set(warehouse) - in_pendo), 12)
        emulator.seed("visitor", newcomers)
        in_pendo |= set(newcomers)
        changed = sorted(rng.sample(sorted(warehouse), 6))
        for k in changed:
            warehouse[k] = rng.choice(["free", "team", "pro", "enterprise"])


def ledger_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`target-pendo --config FILE ledger ARGS` with the config run_cli last wrote."""
    return subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json"), "ledger", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ledger_retry_sends_the_pending_queue_without_a_tap(emulator, ledger_config, tmp_path):
    """A team that fixed something in Pendo retries at once: `ledger retry --dry-run` shows
    what would be sent and sends nothing; `ledger retry` sends it, a run of its own with its
    report; what Pendo still does not have stays pending."""
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", ["v-0", "v-1"])
    config = users_config(ledger_config)
    first = run(config, user_lines(range(6), plan=lambda i: f"plan-{i}"), tmp_path)
    assert (first["sent"], first["skipped_unknown"]) == (2, 4)
    emulator.seed("visitor", ["v-2", "v-3"])
    writes = len(emulator.metadata_writes())

    dry = ledger_cli(tmp_path, "retry", "--stream", USERS, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert len(emulator.metadata_writes()) == writes  # nothing sent
    assert last_report(config)["pending_retried"] == 4
    payloads = Path(config["state_dir"]) / "dry_run"
    recorded = "".join(p.read_text() for p in payloads.rglob("*.jsonl"))
    assert all(f'"v-{i}"' in recorded for i in range(2, 6))
    assert dry.stdout == ""  # no STATE: the retry has no tap's position to confirm

    done = ledger_cli(tmp_path, "retry", "--stream", USERS)
    assert done.returncode == 0, done.stderr
    report = last_report(config)
    assert (report["pending_retried"], report["pending_sent"], report["pending_left"]) == (4, 2, 2)
    assert report["received"] == 0
    assert plans(emulator) == {f"v-{i}": f"plan-{i}" for i in range(4)}
    status = ledger_cli(tmp_path, "status")
    assert f"{USERS}\tpending: no such visitor\t2" in status.stdout.splitlines()


def test_ledger_retry_names_what_it_cannot_retry(emulator, ledger_config, tmp_path):
    config = {
        **users_config(ledger_config),
        "streams": {
            USERS: {"sync": "visitor", "custom_fields": {"plan": "plan"}},
            "events": {"event_name": "x", "visitor_id_column": "id"},
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    never = ledger_cli(tmp_path, "retry", "--stream", USERS)
    assert never.returncode == 1
    assert f"no SCHEMA of stream '{USERS}'" in never.stderr
    assert "run a sync of the stream once" in never.stderr
    events = ledger_cli(tmp_path, "retry", "--stream", "events")
    assert events.returncode == 1
    assert "stream 'events' is not an object stream" in events.stderr
    bare = ledger_cli(tmp_path, "retry")
    assert bare.returncode == 2
    assert "retry needs --stream NAME" in bare.stderr
    for result in (never, events):
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_progress_lines_count_the_retry_as_it_goes(emulator, ledger_config, tmp_path):
    """A retry of the queue that takes a while shows in the progress lines: how many rows were
    sent again from the queue so far, and how many Pendo took."""
    emulator.seed("visitor", group="custom", fields=FIELDS)
    config = users_config({**ledger_config, "max_concurrency": 1})
    config["streams"][USERS]["batch_size"] = 10
    run(config, user_lines(range(60)), tmp_path)  # none in Pendo: 60 pending
    emulator.seed("visitor", [f"v-{i}" for i in range(60)])
    emulator.latency = 0.1  # 12 calls (two groups of 6), 0.1 s each
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [*target_cmd_with_progress_every(0.2), "--config", str(tmp_path / "config.json")],
        input=lines_to_text(user_lines([])),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    progress = [x for x in result.stderr.splitlines() if f"Progress of stream '{USERS}'" in x]
    assert any("retried from pending" in x for x in progress), result.stderr
    assert last_report(config)["pending_sent"] == 60
