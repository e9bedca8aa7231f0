"""Object sync against every Pendo answer shape the contract (revision 3) allows.

Each test runs the real target against the emulator switched to one reading of the contract,
then runs it a second time on the same input, and asserts the promise that matters: every row
is either in Pendo with its typed value or in the rejects file with a reason, and no row the
ledger recorded as sent is missing from Pendo (the second run does not re-send "unchanged"
rows, so a row wrongly recorded as sent would stay missing).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from pendo_emulator import Emulator
from target_pendo.errors import PendoNotFoundError

from ..singer import read_rejects, record, run_cli, run_target, schema, state

STREAM = "users"
# A CSV-like tap: every column is text, so each value must be coerced to its field's type.
COLUMNS = {
    "id": {"type": "string"},
    "plan": {"type": ["string", "null"]},
    "seats": {"type": ["string", "null"]},
    "active": {"type": ["string", "null"]},
    "since": {"type": ["string", "null"]},
    "mrr": {"type": ["string", "null"]},
}
FIELDS = {
    "plan": "string",
    "seats": "integer",
    "active": "boolean",
    "since": "time",
    "mrr": "float",
}
SPEC = {"sync": "visitor", "custom_fields": {name: name for name in FIELDS}}
REFUSED = {17: "forbidden-1", 150: "forbidden-2", 299: "forbidden-3"}  # Pendo refuses these
LOCAL = {40: {"seats": "twelve"}, 41: {"since": "not a date"}, 42: {"plan": "x" * 1600}}
JAN_2_2025_MS = 1735776000000


def row(i: int) -> dict[str, Any]:
    values = {
        "id": f"v-{i}",
        "plan": REFUSED.get(i, ("free", "team", "pro")[i % 3]),
        "seats": str(i % 50),
        "active": ("yes", "no")[i % 2],
        "since": "2025-01-02",
        "mrr": f"{i}.5",
    }
    values.update(LOCAL.get(i, {}))
    return values


def typed(i: int) -> dict[str, Any]:
    return {
        "plan": ("free", "team", "pro")[i % 3],
        "seats": i % 50,
        "active": i % 2 == 0,
        "since": JAN_2_2025_MS,
        "mrr": i + 0.5,
    }


def seed(emulator: Emulator, n: int) -> None:
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", [f"v-{i}" for i in range(n)])
    emulator.reject_metadata("visitor", "plan", list(REFUSED.values()), "plan value not allowed")


def lines(n: int) -> list[str]:
    out = [schema(STREAM, COLUMNS)] + [record(STREAM, row(i)) for i in range(n)]
    return [*out, state({"bookmarks": {STREAM: n}})]


def value_posts(emulator: Emulator) -> int:
    return sum(
        n for route, n in emulator.request_counts().items() if route.endswith("/custom/value")
    )


def assert_every_row_in_pendo_or_rejected(
    emulator: Emulator, state_dir: str, n: int, bad: set[int]
) -> None:
    stored = emulator.objects("visitor")
    rejected = {r["key"] for r in read_rejects(state_dir, STREAM)}
    assert rejected == {f"v-{i}" for i in bad}
    for i in range(n):
        if i in bad:
            assert stored[f"v-{i}"]["custom"] == {}, i  # nothing of a rejected row landed
        else:
            assert stored[f"v-{i}"]["custom"] == typed(i), i
    assert all(r["reason"] for r in read_rejects(state_dir, STREAM))


SHAPES = [
    pytest.param({}, id="default: per-item errors as objects"),
    pytest.param({"schema_case": "lowercase"}, id="lowercase schema"),
    pytest.param({"bad_value": "batch"}, id="a bad value fails the whole call"),
    pytest.param({"bad_value": "batch", "error_body": "json"}, id="whole-call 400, JSON body"),
    pytest.param({"bad_value": "batch", "error_body": "empty"}, id="whole-call 400, no body"),
    pytest.param({"error_shape": "string"}, id="errors as strings with ids"),
    pytest.param({"error_shape": "string_no_id"}, id="errors as strings without ids"),
    pytest.param({"error_shape": "absent"}, id="no errors key, only counts"),
]


@pytest.mark.parametrize("switches", SHAPES)
def test_every_row_lands_typed_or_is_rejected_in_every_answer_shape(
    emulator: Emulator, base_config: dict, switches: dict
) -> None:
    n = 300
    emulator.set_switches(**switches)
    seed(emulator, n)
    config = {**base_config, "streams": {STREAM: SPEC}}
    states, target = run_target(config, lines(n))
    bad = set(REFUSED) | set(LOCAL)
    assert_every_row_in_pendo_or_rejected(emulator, config["state_dir"], n, bad)
    counts = target.run_context.report.streams[STREAM]
    assert (counts.received, counts.sent, counts.rejected) == (n, n - len(bad), len(bad))
    assert states == [{"bookmarks": {STREAM: n}}]
    first_calls = value_posts(emulator)
    k = len(REFUSED)
    assert first_calls <= 1 + 2 * k * math.ceil(math.log2(n - len(LOCAL)))

    # The second run sends only the rejected rows again (and Pendo refuses them again): no
    # row recorded as sent is missing from Pendo, or this would find it.
    _, again = run_target(config, lines(n))
    assert_every_row_in_pendo_or_rejected(emulator, config["state_dir"], n, bad)
    counts = again.run_context.report.streams[STREAM]
    assert (counts.unchanged, counts.sent) == (n - len(bad), 0)
    assert value_posts(emulator) - first_calls <= 1 + 2 * k * math.ceil(math.log2(k))


@pytest.mark.parametrize("body", ["html", "empty_object"])
@pytest.mark.parametrize("written", [False, True])
def test_a_200_that_is_not_pendos_json_confirms_nothing(
    emulator: Emulator, base_config: dict, tmp_path, body: str, written: bool
) -> None:
    n = 50
    emulator.set_switches(ok_body=body, ok_body_writes=written)
    seed(emulator, n)
    config = {**base_config, "streams": {STREAM: SPEC}}
    result = run_cli(config, lines(n), tmp_path)
    assert result.returncode == 1
    assert result.stdout.strip() == ""  # no STATE past rows Pendo did not confirm
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("target-pendo: error:")]
    assert "not with its JSON answer" in line
    assert "'api_url'" in line
    assert "Traceback" not in result.stderr
    # Pendo comes back to its senses: the rerun sends every row, none was taken as sent
    emulator.set_switches(ok_body="json")
    states, target = run_target(config, lines(n))
    bad = {i for i in set(REFUSED) | set(LOCAL) if i < n}
    assert_every_row_in_pendo_or_rejected(emulator, config["state_dir"], n, bad)
    assert target.run_context.report.streams[STREAM].sent == n - len(bad)
    assert states == [{"bookmarks": {STREAM: n}}]


def test_a_thousand_rows_under_a_hundred_item_budget_all_land(
    emulator: Emulator, base_config: dict, caplog
) -> None:
    caplog.set_level("INFO")
    n = 1000
    emulator.set_switches(item_budget=100)
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", [f"v-{i}" for i in range(n)])
    config = {**base_config, "streams": {STREAM: SPEC}}
    good = [record(STREAM, {**row(i), "plan": ("free", "team", "pro")[i % 3]}) for i in range(n)]
    local_ok = [g for i, g in enumerate(good) if i not in LOCAL]
    _, target = run_target(config, [schema(STREAM, COLUMNS), *local_ok])
    stored = emulator.objects("visitor")
    assert all(stored[f"v-{i}"]["custom"] == typed(i) for i in range(n) if i not in LOCAL)
    counts = target.run_context.report.streams[STREAM]
    assert counts.sent == n - len(LOCAL)
    timeouts = emulator.request_counts().get("POST /api/v1/metadata/visitor/custom/value", 0)
    writes = len(emulator.metadata_writes())
    assert writes >= math.ceil((n - len(LOCAL)) / 100)
    # two concurrent 500-row calls each halve down: a handful of 408s, never the same size
    assert timeouts - writes <= 8
    assert "calls now carry at most" in caplog.text


@pytest.mark.parametrize("missing_field", ["batch", "item"])
def test_a_field_deleted_while_the_run_goes(
    emulator: Emulator, base_config: dict, tmp_path, missing_field: str
) -> None:
    n = 2000
    emulator.set_switches(missing_field=missing_field)
    emulator.seed("visitor", group="custom", fields=FIELDS)
    emulator.seed("visitor", [f"v-{i}" for i in range(n)])
    emulator.delete_field_after("visitor", "custom", "mrr", after=1)
    config = {**base_config, "streams": {STREAM: SPEC}, "max_concurrency": 2}
    good = [{**row(i), "plan": "pro", "seats": "1", "since": None} for i in range(n)]
    batch = [schema(STREAM, COLUMNS), *(record(STREAM, g) for g in good)]
    batch.append(state({"done": True}))
    if missing_field == "batch":
        # Pendo answers 400 "missing field mappings": the run stops within a few calls
        result = run_cli(config, batch, tmp_path)
        assert result.returncode == 1
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("target-pendo: error:")]
        assert "custom field 'mrr'" in line
        assert "stream 'users'" in line
        assert result.stdout.strip() == ""
        refused_after_delete = value_posts(emulator) - len(emulator.metadata_writes())
        assert refused_after_delete <= 4  # one per worker in flight, not a bisection
    else:
        # Pendo fails each item alone: each row is rejected with Pendo's reason, none lost
        run_target(config, batch)
        rejects = read_rejects(config["state_dir"], STREAM)
        assert rejects
        assert all("mrr" in r["reason"] for r in rejects)
    # Pendo gets the field back; the rerun delivers every row not confirmed before
    emulator.seed("visitor", group="custom", fields={"mrr": "float"})
    run_target(config, batch)
    stored = emulator.objects("visitor")
    assert all(stored[f"v-{i}"]["custom"]["mrr"] == i + 0.5 for i in range(n))


def test_parent_account_routes_that_do_not_exist_say_they_are_unverified(
    emulator: Emulator, base_config: dict
) -> None:
    emulator.set_switches(parent_account_routes=False)
    spec = {"sync": "parent_account", "custom_fields": {"tier": "plan"}}
    config = {**base_config, "streams": {"parents": spec}}
    with pytest.raises(PendoNotFoundError) as info:
        run_target(config, [schema("parents", COLUMNS)])
    assert "not publicly documented" in str(info.value)
    assert "region" not in str(info.value)


def test_most_account_ids_missing_hints_at_parent_account_ids(
    emulator: Emulator, base_config: dict, caplog
) -> None:
    emulator.seed("account", group="custom", fields={"plan": "string"})
    emulator.seed("account", [f"parent::a-{i}" for i in range(20)])  # parent accounts are on
    spec = {"sync": "account", "custom_fields": {"plan": "plan"}}
    records = [record("accounts", {"id": f"a-{i}", "plan": "pro"}) for i in range(20)]
    config = {**base_config, "streams": {"accounts": spec}}
    run_target(config, [schema("accounts", COLUMNS), *records])
    assert "ParentAccountID::childAccountID" in caplog.text


@pytest.mark.parametrize("route", ["metadata", "track"])
def test_a_redirect_is_not_followed_and_no_key_reaches_its_target(
    emulator: Emulator, base_config: dict, tmp_path, route: str
) -> None:
    with Emulator() as elsewhere:
        emulator.inject(route=route, status=307, location=f"{elsewhere.url}/collect", times=None)
        emulator.seed("visitor", group="custom", fields=FIELDS)
        emulator.seed("visitor", ["v-1"])
        if route == "metadata":
            stream, spec, body = STREAM, SPEC, {**row(1), "plan": "pro"}
        else:
            stream = "events"
            spec = {"event_name": "Seen", "visitor_id_column": "id", "primary_key_column": "id"}
            body = row(1)
        config = {**base_config, "streams": {stream: spec}}
        result = run_cli(
            config, [schema(stream, COLUMNS), record(stream, body), state({"x": 1})], tmp_path
        )
        assert result.returncode == 1
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("target-pendo: error:")]
        assert "307" in line
        assert "never follows a redirect" in line
        assert result.stdout.strip() == ""
        assert elsewhere.received() == []
        assert emulator.events() == []


def test_keys_are_refused_over_plain_http_to_another_host(base_config: dict, tmp_path) -> None:
    config = {**base_config, "api_url": "http://pendo.example.com", "streams": {STREAM: SPEC}}
    result = run_cli(config, [schema(STREAM, COLUMNS)], tmp_path)
    assert result.returncode == 1
    assert "https://" in result.stderr
    assert "'api_url'" in result.stderr
    assert "Traceback" not in result.stderr
