"""The sync ledger end to end, on SQLite and on a real PostgreSQL: events once, objects only
when changed, failures retried, deletes that follow the source behind a guard."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from target_pendo.errors import DeleteGuardError, StreamConfigError
from target_pendo.ledger import SCHEMA_VERSION, Ledger, default_url

from ..singer import TARGET_CMD, lines_to_text, record, run_cli, run_target, schema, state

EVENTS = "product_events"
TRACK = "POST /data/track"


def events_config(config: dict) -> dict:
    return {
        **config,
        "streams": {
            EVENTS: {
                "event_name_column": "event",
                "visitor_id_column": "user_id",
                "timestamp_column": "occurred_at",
            }
        },
    }


def event_lines(n: int, start: int = 0) -> list[str]:
    lines = [schema(EVENTS)]
    for i in range(start, start + n):
        row = {
            "id": i,
            "user_id": f"u-{i % 97}",
            "event": "Report Exported",
            "occurred_at": "2026-11-23T10:00:00Z",
            "plan": "pro",
        }
        lines.append(record(EVENTS, row))
        if i % 500 == 499:
            lines.append(state({"bookmarks": {EVENTS: {"id": i}}}))
    return lines


def ledger_of(config: dict) -> Ledger:
    return Ledger(config.get("ledger_url") or default_url(config["state_dir"]))


def test_same_file_twice_sends_each_event_once(emulator, ledger_config):
    config = events_config(ledger_config)
    lines = event_lines(1000)  # several drains' worth (2,000 events a drain would be one)
    config["batch_size_rows"] = 300
    run_target(config, lines)
    assert emulator.request_counts()[TRACK] == 1000
    _, second = run_target(config, lines)
    assert emulator.request_counts()[TRACK] == 1000  # 0 Track calls on the second run
    assert len(emulator.events()) == 1000
    counts = second.run_context.report.streams[EVENTS]
    assert (counts.received, counts.sent, counts.already_sent) == (1000, 0, 1000)


def test_duplicates_inside_one_run_are_sent_once(emulator, ledger_config):
    lines = event_lines(50) + event_lines(50)[1:]  # every row twice
    _, target = run_target(events_config(ledger_config), lines)
    assert len(emulator.events()) == 50
    assert target.run_context.report.streams[EVENTS].already_sent == 50


def test_events_stream_without_key_is_a_setup_error(emulator, ledger_config):
    config = events_config(ledger_config)
    with pytest.raises(Exception, match="primary_key_column"):
        run_target(config, [schema(EVENTS, key=[]), record(EVENTS, {"id": 1, "user_id": "u"})])
    assert emulator.request_counts() == {}


def test_primary_key_column_overrides_key_properties(emulator, ledger_config):
    config = events_config(ledger_config)
    config["streams"][EVENTS]["primary_key_column"] = "plan"
    run_target(config, event_lines(10))  # all rows share plan 'pro': one event
    assert len(emulator.events()) == 1


def test_rejected_events_are_retried_on_a_later_run(emulator, ledger_config):
    config = events_config(ledger_config)
    emulator.reject_track("visitorId", ["u-3"], "temporarily refused")
    run_target(config, event_lines(10))
    assert len(emulator.events()) == 9
    emulator.state.track_rules.clear()
    _, second = run_target(config, event_lines(10))
    assert sorted(e["properties"]["id"] for e in emulator.events()) == list(range(10))
    assert second.run_context.report.streams[EVENTS].sent == 1
    with ledger_of(config).engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT outcome, reason FROM sync_rows WHERE stream = :s AND row_key = '3' "
                "ORDER BY at"
            ),
            {"s": EVENTS},
        ).all()
        attempts = conn.execute(
            sa.text("SELECT status, attempts FROM row_state WHERE row_key = '3'")
        ).one()
    assert [r[0] for r in rows] == ["rejected", "sent"]
    assert "temporarily refused" in rows[0][1]
    assert tuple(attempts) == ("sent", 0)


def test_sync_log_answers_which_rows_failed_and_why(emulator, ledger_config):
    config = events_config(ledger_config)
    lines = event_lines(5)
    lines.append(
        record(
            EVENTS, {"id": 99, "user_id": None, "event": "E", "occurred_at": "2026-11-23T10:00:00Z"}
        )
    )
    run_target(config, lines)
    with ledger_of(config).engine.connect() as conn:
        failed = conn.execute(
            sa.text(
                "SELECT r.row_key, r.reason FROM sync_rows r JOIN sync_runs s "
                "ON s.run_id = r.run_id WHERE r.outcome = 'rejected' AND s.status = 'succeeded'"
            )
        ).all()
        runs = conn.execute(sa.text("SELECT status, report FROM sync_runs")).all()
    assert [(k, "'user_id' is missing or null" in reason) for k, reason in failed] == [("99", True)]
    assert len(runs) == 1
    assert runs[0][0] == "succeeded"
    assert json.loads(runs[0][1])["streams"][EVENTS]["sent"] == 5


def _write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def test_sigkill_midway_then_rerun_delivers_every_event(emulator, ledger_config, tmp_path):
    """Killed after about half: the rerun sends the rest; only calls in flight at the kill
    (marked in the ledger, counted "in doubt") can reach Pendo twice."""
    config = {**events_config(ledger_config), "max_requests_per_second": 400}
    config["batch_size_rows"] = 200  # several drains before the kill, several after
    singer = tmp_path / "events.singer.jsonl"
    singer.write_text(lines_to_text(event_lines(1500)))
    cfg = _write_config(tmp_path, config)
    with singer.open() as stdin:
        proc = subprocess.Popen(
            [*TARGET_CMD, "--config", str(cfg)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while len(emulator.state.events) < 600 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    first = len(emulator.events())
    assert 600 <= first < 1500, "the kill should land midway"

    with singer.open() as stdin:
        rerun = subprocess.run(
            [*TARGET_CMD, "--config", str(cfg)],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert rerun.returncode == 0, rerun.stderr
    ids = Counter(e["properties"]["id"] for e in emulator.events())
    assert set(ids) == set(range(1500))  # nothing lost
    reports = sorted((Path(config["state_dir"]) / "reports").glob("run-*.json"))
    in_doubt = json.loads(reports[-1].read_text())["streams"][EVENTS]["in_doubt"]
    duplicated = sum(n - 1 for n in ids.values())
    assert in_doubt <= config.get("max_concurrency", 8)  # only the calls then in flight
    assert duplicated <= in_doubt  # and only those may be doubled


# --- objects ----------------------------------------------------------------------------------
USERS = "users"
USER_PROPS = {
    "id": {"type": "string"},
    "plan": {"type": ["string", "null"]},
    "seats": {"type": ["integer", "null"]},
}


def users_config(config: dict, **spec: object) -> dict:
    return {
        **config,
        "streams": {
            USERS: {"sync": "visitor", "custom_fields": {"plan": "plan", "seats": "seats"}, **spec}
        },
    }


def seed_users(emulator, n: int) -> None:
    emulator.seed("visitor", group="custom", fields={"plan": "string", "seats": "integer"})
    emulator.seed("visitor", [f"v-{i}" for i in range(n)])


def user_lines(ids, plan=lambda i: "pro", full_table: bool = False) -> list[str]:
    lines = [schema(USERS, USER_PROPS)]
    if full_table:
        lines.append(json.dumps({"type": "ACTIVATE_VERSION", "stream": USERS, "version": 1}))
    lines += [record(USERS, {"id": f"v-{i}", "plan": plan(i), "seats": i % 10}) for i in ids]
    if full_table:
        lines.append(json.dumps({"type": "ACTIVATE_VERSION", "stream": USERS, "version": 1}))
    return lines


def sent_ids(emulator) -> list[str]:
    return [i for w in emulator.metadata_writes() for i in w["ids"]]


def test_only_changed_objects_are_sent(emulator, ledger_config):
    seed_users(emulator, 1000)
    config = users_config(ledger_config)
    run_target(config, user_lines(range(1000)))
    assert len(sent_ids(emulator)) == 1000
    changed = {7, 70, 170, 270, 370, 470, 570, 670, 770, 999}
    emulator.state.metadata_writes.clear()
    _, second = run_target(
        config, user_lines(range(1000), lambda i: "max" if i in changed else "pro")
    )
    assert sorted(sent_ids(emulator)) == sorted(f"v-{i}" for i in changed)
    assert emulator.objects("visitor")["v-70"]["custom"]["plan"] == "max"
    counts = second.run_context.report.streams[USERS]
    assert (counts.sent, counts.unchanged) == (10, 990)


def test_mapping_change_and_full_resync_resend(emulator, ledger_config):
    seed_users(emulator, 20)
    run_target(users_config(ledger_config), user_lines(range(20)))
    emulator.state.metadata_writes.clear()
    run_target(users_config(ledger_config, custom_fields={"plan": "plan"}), user_lines(range(20)))
    assert len(sent_ids(emulator)) == 20  # the mapping changed: everything again
    emulator.state.metadata_writes.clear()
    run_target(users_config(ledger_config, custom_fields={"plan": "plan"}), user_lines(range(20)))
    assert sent_ids(emulator) == []
    run_target(
        {**users_config(ledger_config, custom_fields={"plan": "plan"}), "full_resync": True},
        user_lines(range(20)),
    )
    assert len(sent_ids(emulator)) == 20


def test_unknown_visitors_created_later_are_filled_next_run(emulator, ledger_config):
    seed_users(emulator, 100)
    lines = user_lines(range(120))  # v-100..v-119 do not exist yet
    _, first = run_target(users_config(ledger_config), lines)
    assert first.run_context.report.streams[USERS].skipped_unknown == 20
    emulator.seed("visitor", [f"v-{i}" for i in range(100, 120)])
    emulator.state.metadata_writes.clear()
    _, second = run_target(users_config(ledger_config), lines)
    assert sorted(sent_ids(emulator)) == sorted(f"v-{i}" for i in range(100, 120))
    assert emulator.objects("visitor")["v-110"]["custom"] == {"plan": "pro", "seats": 0}
    counts = second.run_context.report.streams[USERS]
    assert (counts.sent, counts.unchanged, counts.skipped_unknown) == (20, 100, 0)


@pytest.mark.parametrize("behavior", ["clear", "delete", "nothing"])
def test_full_table_sync_missing_ids(emulator, ledger_config, behavior):
    seed_users(emulator, 100)
    config = users_config(ledger_config, delete_behavior=behavior)
    run_target(config, user_lines(range(100), full_table=True))
    gone = {3, 30, 31, 64, 99}
    states, target = run_target(
        config,
        [
            *user_lines([i for i in range(100) if i not in gone], full_table=True),
            state({"done": 1}),
        ],
    )
    stored = emulator.objects("visitor")
    if behavior == "clear":
        assert all(stored[f"v-{i}"]["custom"] == {"plan": None, "seats": None} for i in gone)
        assert stored["v-4"]["custom"] == {"plan": "pro", "seats": 4}
        assert target.run_context.report.streams[USERS].cleared == 5
    elif behavior == "delete":
        assert sorted(emulator.deleted("visitor")) == sorted(f"v-{i}" for i in gone)
        assert emulator.request_counts()["POST /api/v1/bulkdelete/visitor"] == 1
        assert len(stored) == 95
        assert target.run_context.report.streams[USERS].deleted == 5
    else:
        assert all(stored[f"v-{i}"]["custom"]["plan"] == "pro" for i in gone)
        assert emulator.deleted("visitor") == []
    assert states == [{"done": 1}]


def test_sdc_deleted_at_rows_are_deleted(emulator, ledger_config):
    seed_users(emulator, 10)
    config = users_config(ledger_config, delete_behavior="delete")
    run_target(config, user_lines(range(10)))
    props = {**USER_PROPS, "_sdc_deleted_at": {"type": ["string", "null"]}}
    lines = [
        schema(USERS, props),
        record(
            USERS,
            {"id": "v-2", "plan": "pro", "seats": 2, "_sdc_deleted_at": "2026-11-24T00:00:00Z"},
        ),
    ]
    run_target(config, lines)
    assert emulator.deleted("visitor") == ["v-2"]


def test_a_soft_delete_column_of_the_model_clears_its_rows(emulator, ledger_config):
    """`deleted_column`: the recipe for a model with a soft-delete flag, without a stream map:
    a row whose flag is set is cleared; one whose flag is false is an update."""
    seed_users(emulator, 5)
    config = users_config(ledger_config, delete_behavior="clear", deleted_column="is_deleted")
    props = {**USER_PROPS, "is_deleted": {"type": ["boolean", "null"]}}

    def rows(flags: dict[int, bool | None], plan: str) -> list[str]:
        return [schema(USERS, props)] + [
            record(USERS, {"id": f"v-{i}", "plan": plan, "seats": i, "is_deleted": flag})
            for i, flag in flags.items()
        ]

    run_target(config, rows(dict.fromkeys(range(5)), "pro"))
    run_target(config, rows({2: True, 3: False}, "team"))
    held = {k: v["custom"] for k, v in emulator.objects("visitor").items()}
    assert held["v-2"] == {"plan": None, "seats": None}  # cleared, not updated
    assert held["v-3"]["plan"] == "team"
    assert held["v-4"]["plan"] == "pro"
    assert "is_deleted" not in str(held)  # the flag itself is never sent


def test_a_null_sdc_deleted_at_typed_string_only_is_an_insert(emulator, ledger_config):
    """tap-postgres 0.10 (LOG_BASED) types `_sdc_deleted_at` {"type": ["string"]} and sends
    null on inserts: the row is sent, not rejected for its schema."""
    seed_users(emulator, 2)
    config = users_config(ledger_config, delete_behavior="delete")
    props = {**USER_PROPS, "_sdc_deleted_at": {"type": ["string"]}}
    row = {"id": "v-1", "plan": "pro", "seats": 1, "_sdc_deleted_at": None}
    _, target = run_target(config, [schema(USERS, props), record(USERS, row)])
    counts = target.run_context.report.counts(USERS)
    assert (counts.sent, counts.rejected, counts.deleted) == (1, 0, 0)
    assert emulator.objects("visitor")["v-1"]["custom"]["plan"] == "pro"


def test_a_deleted_column_needs_a_delete_behavior_and_a_column(emulator, ledger_config):
    with pytest.raises(StreamConfigError, match="'delete_behavior' is 'nothing'"):
        run_target(users_config(ledger_config, deleted_column="is_deleted"), user_lines([1]))
    config = users_config(ledger_config, delete_behavior="clear", deleted_column="gone_at")
    with pytest.raises(StreamConfigError, match="deleted_column names column 'gone_at'"):
        run_target(config, user_lines([1]))


def test_emptied_table_is_refused_by_the_guard(emulator, ledger_config):
    seed_users(emulator, 50)
    config = users_config(ledger_config, delete_behavior="delete")
    run_target(config, user_lines(range(50), full_table=True))
    with pytest.raises(DeleteGuardError) as err:
        run_target(config, [*user_lines([], full_table=True), state({"s": 1})])
    assert "max_delete_fraction" in str(err.value)
    assert "50 of the 50" in str(err.value)
    assert emulator.deleted("visitor") == []
    assert len(emulator.objects("visitor")) == 50


def test_no_deletes_during_full_resync(emulator, ledger_config):
    seed_users(emulator, 10)
    config = users_config(ledger_config, delete_behavior="delete")
    run_target(config, user_lines(range(10), full_table=True))
    run_target({**config, "full_resync": True}, user_lines(range(9), full_table=True))
    assert emulator.deleted("visitor") == []


def test_parent_account_delete_is_a_setup_error(emulator, ledger_config):
    config = {
        **ledger_config,
        "streams": {"p": {"sync": "parent_account", "delete_behavior": "delete"}},
    }
    with pytest.raises(Exception, match="parent accounts"):
        run_target(config, [])


def test_ledger_reset_forgets_a_stream(emulator, ledger_config, tmp_path):
    config = events_config(ledger_config)
    run_target(config, event_lines(20))
    cfg = _write_config(tmp_path, config)
    reset = subprocess.run(
        [*TARGET_CMD, "ledger", "reset", "--stream", EVENTS, "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert reset.returncode == 0, reset.stderr
    assert f"forgot 20 key(s) of stream '{EVENTS}'" in reset.stdout
    assert emulator.request_counts()[TRACK] == 20  # reset sends nothing
    run_target(config, event_lines(20))
    assert emulator.request_counts()[TRACK] == 40


def test_ledger_schema_is_versioned(tmp_path):
    url = default_url(tmp_path)
    first = Ledger(url)
    assert first.schema_version() == SCHEMA_VERSION == 4
    first.close()
    again = Ledger(url)  # opening an up-to-date ledger migrates nothing
    assert again.schema_version() == SCHEMA_VERSION
    with again.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_meta SET value = '99' WHERE name = 'schema_version'"))
    again.close()
    with pytest.raises(Exception, match="newer than this target-pendo"):
        Ledger(url)


def test_unchanged_objects_stay_unchanged_across_processes(emulator, ledger_config, tmp_path):
    """The diff hash must not depend on the process (a real sync is a new process each time)."""
    seed_users(emulator, 5)
    config = users_config(ledger_config)
    lines = user_lines(range(5))
    for _ in range(2):
        result = run_cli(config, lines, tmp_path)
        assert result.returncode == 0, result.stderr
    assert len(sent_ids(emulator)) == 5
    reports = sorted((Path(config["state_dir"]) / "reports").glob("run-*.json"))
    assert json.loads(reports[-1].read_text())["streams"][USERS]["unchanged"] == 5


def test_an_id_twice_in_a_batch_sends_its_last_row(emulator, ledger_config):
    seed_users(emulator, 3)
    lines = [
        schema(USERS, USER_PROPS),
        record(USERS, {"id": "v-1", "plan": "old", "seats": 1}),
        record(USERS, {"id": "v-2", "plan": "pro", "seats": 2}),
        record(USERS, {"id": "v-1", "plan": "new", "seats": 9}),
    ]
    _, target = run_target(users_config(ledger_config), lines)
    assert emulator.objects("visitor")["v-1"]["custom"] == {"plan": "new", "seats": 9}
    assert sorted(sent_ids(emulator)) == ["v-1", "v-2"]
    counts = target.run_context.report.streams[USERS]
    assert (counts.sent, counts.superseded) == (2, 1)
