"""The ledger's database goes away mid-run: a PostgreSQL restarted or its backends terminated
(a managed database's maintenance, a failover, an admin), a server that cannot be reached, a
disk that fills under SQLite. Each ends the run with exit code 1 and one error line, no library
traceback; nothing is lost, and the rerun resends only the calls that were in flight.

Chosen: a lost ledger connection fails the run (it does not reconnect). The stream's lease is a
PostgreSQL session lock, gone with the session; writing on after a reconnect, without it, could
let a second run sync the same stream at once. The rerun takes the lease anew and picks up from
what the ledger recorded.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..netenv import require_namespaces
from ..pg import PostgresServer
from ..singer import TARGET_CMD, lines_to_text, record, schema, state

EVENTS = "events"
N_EVENTS = 1500
MAX_CONCURRENCY = 8  # at most this many calls are on the wire at once


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this module's own: these tests restart it."""
    server = PostgresServer()
    yield server
    server.stop()


def events_config(base_config: dict, **extra: object) -> dict:
    return {
        **base_config,
        "max_requests_per_second": 300,  # slow enough that the outage lands midway
        "batch_size_rows": 50,
        "max_concurrency": MAX_CONCURRENCY,
        "streams": {
            EVENTS: {
                "event_name_column": "event",
                "visitor_id_column": "user_id",
                "timestamp_column": "occurred_at",
            }
        },
        **extra,
    }


def input_file(tmp_path: Path) -> Path:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    lines = [schema(EVENTS)]
    lines += [
        record(EVENTS, {"id": i, "user_id": f"u-{i}", "event": "Exported", "occurred_at": at})
        for i in range(N_EVENTS)
    ]
    lines.append(state({"bookmarks": {EVENTS: {"id": N_EVENTS}}}))
    path = tmp_path / "events.singer.jsonl"
    path.write_text(lines_to_text(lines))
    return path


def start(config: dict, tmp_path: Path, singer: Path) -> subprocess.Popen[str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen(
        [*TARGET_CMD, "--config", str(path)],
        stdin=singer.open(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_events(emulator, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while len(emulator.events()) < at_least:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)


def assert_one_error_line(stderr: str, *needles: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("target-pendo: error:")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "Traceback" not in stderr, stderr
    assert len([line for line in stderr.splitlines() if "| ERROR" in line]) == 1, stderr
    library_lines = [
        line for line in stderr.splitlines() if "| sqlalchemy" in line or "| psycopg" in line
    ]
    assert library_lines == []


def assert_rerun_delivers_each_event_once_but_those_in_flight(
    emulator, config: dict, tmp_path: Path, singer: Path
) -> None:
    rerun = start(config, tmp_path, singer)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"bookmarks": {EVENTS: {"id": N_EVENTS}}}
    ids = Counter(e["properties"]["id"] for e in emulator.events())
    assert set(ids) == set(range(N_EVENTS))  # nothing lost
    duplicated = sum(n - 1 for n in ids.values())
    reports = sorted((Path(config["state_dir"]) / "reports").glob("run-*.json"))
    in_doubt = json.loads(reports[-1].read_text())["streams"][EVENTS]["in_doubt"]
    assert in_doubt <= MAX_CONCURRENCY  # only the calls then in flight
    assert duplicated <= in_doubt  # and only those may reach Pendo twice


@pytest.mark.parametrize("outage", ["restart", "terminate"])
def test_postgres_going_away_mid_run_is_one_line_and_the_rerun_loses_nothing(
    emulator, base_config, own_postgres, tmp_path, outage
):
    url = own_postgres.new_database()
    config = events_config(base_config, ledger_url=url)
    singer = input_file(tmp_path)
    run = start(config, tmp_path, singer)
    wait_for_events(emulator, 300)
    if outage == "restart":
        own_postgres.restart()
    else:
        own_postgres.terminate_backends(url.rsplit("/", 1)[1])
    out, err = run.communicate(timeout=60)
    assert run.returncode == 1, err
    assert out.strip() == ""  # no STATE: the input's only STATE came after rows not settled
    assert len(emulator.events()) < N_EVENTS
    assert_one_error_line(err, "the ledger at postgresql+psycopg://", "run again")
    assert_rerun_delivers_each_event_once_but_those_in_flight(emulator, config, tmp_path, singer)


def test_an_unreachable_ledger_server_is_one_line_before_anything_is_sent(
    emulator, base_config, tmp_path
):
    config = events_config(base_config, ledger_url="postgresql+psycopg://etl:pw-9876@127.0.0.1:1/x")
    run = start(config, tmp_path, input_file(tmp_path))
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1
    assert_one_error_line(err, "cannot open the ledger at postgresql+psycopg://etl:***@127.0.0.1:1")
    assert "pw-9876" not in err
    assert emulator.events() == []


def test_a_full_disk_under_the_sqlite_ledger_is_one_line_and_the_rerun_loses_nothing(
    emulator, base_config, tmp_path
):
    """The state folder on a 16 MB filesystem of its own (tmpfs, in a private mount table),
    nearly filled; the run fills the rest. Then space is freed and the same input rerun."""
    require_namespaces()
    disk = tmp_path / "disk"
    disk.mkdir()
    config = events_config(base_config, state_dir=str(disk / "state"), max_requests_per_second=0)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    singer = input_file(tmp_path)
    target = " ".join(f"'{part}'" for part in [*TARGET_CMD, "--config", str(config_path)])
    script = f"""
        mount -t tmpfs -o size=16m tmpfs '{disk}' || exit 90
        head -c 16000000 /dev/zero > '{disk}/filler'
        {target} < '{singer}' > '{tmp_path}/out1' 2> '{tmp_path}/err1'
        echo $? > '{tmp_path}/code1'
        rm '{disk}/filler'
        {target} < '{singer}' > '{tmp_path}/out2' 2> '{tmp_path}/err2'
        echo $? > '{tmp_path}/code2'
        cp -r '{disk}/state' '{tmp_path}/state-after'
    """
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "code1").read_text().strip() == "1"
    err = (tmp_path / "err1").read_text()
    assert_one_error_line(err, "cannot write the ledger at", "the disk is full")
    assert (tmp_path / "out1").read_text().strip() == ""
    assert (tmp_path / "code2").read_text().strip() == "0", (tmp_path / "err2").read_text()
    ids = Counter(e["properties"]["id"] for e in emulator.events())
    assert set(ids) == set(range(N_EVENTS))
    reports = sorted((tmp_path / "state-after" / "reports").glob("run-*.json"))
    in_doubt = json.loads(reports[-1].read_text())["streams"][EVENTS]["in_doubt"]
    assert in_doubt <= MAX_CONCURRENCY
    assert sum(n - 1 for n in ids.values()) <= in_doubt
