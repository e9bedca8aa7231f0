"""What a run leaves under state_dir is its owner's alone, whatever the umask: folders 0700,
files 0600 (rejects with whole rows, call logs with bodies, reports, the SQLite ledger and its
journal and lock files). Through the real CLI under umask 022, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

from ..singer import TARGET_CMD, read_rejects, record, run_cli, schema
from .test_ledger import USER_PROPS, USERS, seed_users, users_config

EVENTS = "events"
EVENT_SPEC = {"event_name_column": "event", "visitor_id_column": "user_id"}


def run_with_umask(config: dict, lines: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return run_cli(config, lines, tmp_path, umask=0o022)


def sync_lines() -> list[str]:
    """Events (one rejected: no visitor) and users (one unknown to Pendo)."""
    lines = [schema(EVENTS)]
    lines += [
        record(EVENTS, {"id": i, "user_id": None if i == 2 else f"u-{i}", "event": "E"})
        for i in range(5)
    ]
    lines += [schema(USERS, USER_PROPS)]
    lines += [record(USERS, {"id": f"v-{i}", "plan": "pro", "seats": i}) for i in range(4)]
    return lines


def test_every_folder_and_file_a_run_leaves_is_the_owners_alone(emulator, ledger_config, tmp_path):
    seed_users(emulator, 3)  # v-3 is unknown to Pendo
    config = users_config({**ledger_config, "call_log": True})
    config["streams"][EVENTS] = EVENT_SPEC
    result = run_with_umask(config, sync_lines(), tmp_path)
    assert result.returncode == 0, result.stderr
    state_dir = Path(config["state_dir"])
    found = [state_dir, *state_dir.rglob("*")]
    names = {p.name for p in found}
    assert {"rejects", "unknown", "calls", "reports"} <= names
    if "ledger_url" not in ledger_config:  # SQLite: the file, its journal and locks too
        assert {"ledger.sqlite3", "ledger.sqlite3.locks"} <= names
    for path in found:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{path} is {oct(mode)}"


def test_an_existing_state_dir_others_can_read_gets_a_warning_naming_the_fix(
    emulator, base_config, tmp_path
):
    state_dir = Path(base_config["state_dir"])
    state_dir.mkdir(parents=True)
    state_dir.chmod(0o755)
    config = {**base_config, "streams": {EVENTS: EVENT_SPEC}}
    result = run_with_umask(config, sync_lines()[:6], tmp_path)
    assert result.returncode == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if "other users" in line)
    assert f"chmod -R go-rwx {state_dir}" in warning
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o755  # not changed behind the user's back


def test_rejects_include_values_false_keeps_key_field_and_reason_only(
    emulator, base_config, tmp_path
):
    config = {
        **base_config,
        "streams": {EVENTS: EVENT_SPEC},
        "rejects_include_values": False,
    }
    lines = [
        schema(EVENTS),
        record(EVENTS, {"id": 1, "user_id": None, "event": "private-event-name-77"}),
    ]
    result = run_with_umask(config, lines, tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = read_rejects(config["state_dir"], EVENTS)
    assert set(line) >= {"key", "field", "reason"}
    assert "record" not in line
    assert "private-event-name-77" not in json.dumps(line)
    del config["rejects_include_values"]  # the default keeps the row
    assert run_with_umask(config, lines, tmp_path).returncode == 0
    kept = read_rejects(config["state_dir"], EVENTS)[-1]
    assert kept["record"]["event"] == "private-event-name-77"


def test_unchanged_full_syncs_grow_the_ledger_with_changes_not_with_runs(
    emulator, base_config, tmp_path
):
    """Four full syncs of the same 3,000 visitors: the first sends them, the next three find
    them unchanged (counted, marked seen, no sync_rows line each), and the SQLite ledger
    grows by at most 10 % of its size after the first."""
    seed_users(emulator, 3000)
    config = users_config(base_config)
    lines = [schema(USERS, USER_PROPS)]
    lines += [record(USERS, {"id": f"v-{i}", "plan": "pro", "seats": i % 9}) for i in range(3000)]
    ledger = Path(config["state_dir"]) / "ledger.sqlite3"

    def size() -> int:  # the file and its write-ahead log, as a backup would copy them
        return sum(p.stat().st_size for p in ledger.parent.glob("ledger.sqlite3*") if p.is_file())

    sizes = []
    for _ in range(4):
        result = run_with_umask(config, lines, tmp_path)
        assert result.returncode == 0, result.stderr
        sizes.append(size())
    report = json.loads(
        sorted((Path(config["state_dir"]) / "reports").glob("*.json"))[-1].read_text()
    )
    assert report["streams"][USERS]["unchanged"] == 3000
    assert sizes[-1] <= 1.1 * sizes[0], sizes


def test_rejects_include_values_false_keeps_values_out_of_the_report_and_ledger_too(
    emulator, base_config, tmp_path
):
    """A reason quotes the value Pendo's field could not hold: with the setting off, that
    value is in no file the target writes (rejects, report JSON, report page, ledger)."""
    seed_users(emulator, 2)
    config = {**users_config(base_config), "rejects_include_values": False}
    props = {**USER_PROPS, "seats": {"type": ["string", "null"]}}
    lines = [
        schema(USERS, props),
        record(USERS, {"id": "v-1", "plan": "pro", "seats": "private-value-77"}),
    ]
    result = run_with_umask(config, lines, tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = read_rejects(config["state_dir"], USERS)
    assert "seats" in line["reason"]
    page = tmp_path / "report.html"
    shown = subprocess.run(
        [*TARGET_CMD, "--config", str(tmp_path / "config.json"), "report", "--html", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    state_dir = Path(config["state_dir"])
    for path in [page, *state_dir.rglob("*")]:
        if path.is_file():
            assert b"private-value-77" not in path.read_bytes(), path
    assert "private-value-77" not in shown.stdout + result.stderr
