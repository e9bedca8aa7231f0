"""The emulator's strict defaults and every switch (../shared/pendo-api.md rev. 3), over HTTP.

Each test would fail if the behaviour it names were missing: the defaults are the realistic
Pendo, each switch one alternative reading of the contract a client must also survive.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
import requests

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator
from pendo_emulator.state import NotFound
from pendo_emulator.switches import Switches

KEY = "x-pendo-integration-key"
API = {KEY: DEMO_INTEGRATION_KEY, "Content-Type": "application/json"}
TIMEOUT = 5
DAY_MS = 24 * 3600 * 1000
CAPITALISED = {"Type", "DisplayName", "ElementType", "ElementFormat", "Dirty"}
CAMEL = {
    "isHidden",
    "isDeleted",
    "isCalculated",
    "isPerApp",
    "isPromoted",
    "neverIndex",
    "sample",
}


def now_ms() -> int:
    return int(time.time() * 1000)


def post_values(
    url: str,
    items: Any,
    kind: str = "visitor",
    group: str = "custom",
    query: str = "",
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    data = raw if raw is not None else json.dumps(items).encode()
    return requests.post(
        f"{url}/api/v1/metadata/{kind}/{group}/value{query}",
        data=data,
        headers=API if headers is None else headers,
        timeout=TIMEOUT,
    )


def get_schema(url: str, kind: str = "visitor") -> requests.Response:
    return requests.get(f"{url}/api/v1/metadata/schema/{kind}", headers=API, timeout=TIMEOUT)


def create_fields(
    url: str, fields: Any, kind: str = "visitor", group: str = "custom", **kwargs: Any
) -> requests.Response:
    headers = kwargs.pop("headers", API)
    data = kwargs.pop("raw", None) or json.dumps(fields).encode()
    return requests.post(
        f"{url}/api/v1/metadata/schema/{kind}/{group}", data=data, headers=headers, timeout=TIMEOUT
    )


def delete_field(
    url: str, name: str, kind: str = "visitor", group: str = "custom"
) -> requests.Response:
    return requests.delete(
        f"{url}/api/v1/metadata/schema/{kind}/{group}/{name}", headers=API, timeout=TIMEOUT
    )


def items(*ids: str, **values: Any) -> list[dict[str, Any]]:
    return [{"visitorId": i, "values": dict(values)} for i in ids]


def track(url: str, key: str = DEMO_TRACK_SECRET, **overrides: Any) -> requests.Response:
    body: dict[str, Any] = {
        "type": "track",
        "event": "Report Exported",
        "visitorId": "u-1",
        "timestamp": now_ms(),
        "properties": {"plan": "pro"},
        "context": {},
    }
    body.update(overrides)
    return requests.post(
        url + "/data/track",
        data=json.dumps(body).encode(),
        headers={KEY: key, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )


@pytest.fixture
def plan_visitors(emulator: Emulator) -> Emulator:
    """Visitors v-1, v-2 and a custom string field `plan`."""
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", ["v-1", "v-2"])
    return emulator


# --- field schema ----------------------------------------------------------------------------
def test_schema_has_capitalised_attributes_and_realistic_groups(emulator: Emulator) -> None:
    emulator.seed("visitor", group="agent", fields={"email": "string"})
    emulator.seed("visitor", group="custom", fields={"planTier": "string"})
    response = get_schema(emulator.url)
    assert response.status_code == 200
    schema = response.json()
    assert {"auto", "agent", "custom", "pendo"} <= set(schema)
    email = schema["agent"]["email"]
    assert set(email) == CAPITALISED | CAMEL
    assert email["Type"] == "string"
    assert email["isDeleted"] is False
    assert "type" not in email
    assert schema["custom"]["plantier"]["DisplayName"] == "planTier"
    assert schema["auto"]["lastvisit"]["Type"] == "time"
    assert schema["auto"]["firstvisit"]["Type"] == "time"
    assert schema["pendo"]["donotprocess"]["Type"] == "boolean"
    assert "auto" in get_schema(emulator.url, "account").json()


def test_schema_lowercase_switch_is_revision_one_shape(emulator: Emulator) -> None:
    emulator.seed("visitor", group="custom", fields={"planTier": "integer"})
    emulator.set_switches(schema_case="lowercase")
    entry = get_schema(emulator.url).json()["custom"]["plantier"]
    assert entry["type"] == "integer"
    assert entry["displayName"] == "planTier"
    assert "Type" not in entry
    assert "DisplayName" not in entry
    assert entry["isDeleted"] is False
    assert emulator.schema("visitor")["custom"]["plantier"]["type"] == "integer"


def test_seed_accepts_every_schema_type_and_answers_date_as_date(emulator: Emulator) -> None:
    types = ["string", "boolean", "integer", "float", "time", "date", "list", ""]
    emulator.seed("visitor", group="agent", fields={f"f{n}": t for n, t in enumerate(types)})
    agent = get_schema(emulator.url).json()["agent"]
    assert [agent[f"f{n}"]["Type"] for n in range(len(types))] == types
    with pytest.raises(ValueError, match="agent"):
        emulator.seed("visitor", group="custom", fields={"tags": "list"})
    with pytest.raises(ValueError, match="type"):
        emulator.seed("visitor", group="custom", fields={"x": "number"})


def test_seed_can_create_a_deleted_field_in_python_and_over_http(emulator: Emulator) -> None:
    emulator.seed("visitor", group="custom", fields={"old": {"type": "string", "isDeleted": True}})
    response = requests.post(
        emulator.url + "/_emulator/seed",
        json={
            "kind": "account",
            "group": "custom",
            "fields": {"Gone": {"Type": "time", "isDeleted": True}},
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert get_schema(emulator.url).json()["custom"]["old"]["isDeleted"] is True
    gone = get_schema(emulator.url, "account").json()["custom"]["gone"]
    assert (gone["Type"], gone["DisplayName"], gone["isDeleted"]) == ("time", "Gone", True)


# --- field create / delete routes ---------------------------------------------------------------
def test_create_field_route_makes_lowercase_field_with_empty_200(emulator: Emulator) -> None:
    response = create_fields(
        emulator.url, [{"name": "planTier", "displayname": "planTier", "type": "string"}]
    )
    assert response.status_code == 200
    assert response.content == b""
    entry = get_schema(emulator.url).json()["custom"]["plantier"]
    assert (entry["Type"], entry["DisplayName"], entry["isDeleted"]) == (
        "string",
        "planTier",
        False,
    )
    assert emulator.request_counts()["POST /api/v1/metadata/schema/visitor/custom"] == 1


@pytest.mark.parametrize(("switch", "expected"), [(None, "float"), ("integer", "integer")])
def test_create_field_number_becomes_float_or_switched(
    emulator: Emulator, switch: str | None, expected: str
) -> None:
    if switch:
        emulator.set_switches(number_field_type=switch)
    response = create_fields(emulator.url, [{"name": "seats", "type": "number"}], group="agent")
    assert response.status_code == 200
    assert get_schema(emulator.url).json()["agent"]["seats"]["Type"] == expected


def test_create_field_time_and_boolean(emulator: Emulator) -> None:
    fields = [{"name": "signedUp", "type": "time"}, {"name": "trial", "type": "boolean"}]
    assert create_fields(emulator.url, fields).status_code == 200
    custom = get_schema(emulator.url).json()["custom"]
    assert (custom["signedup"]["Type"], custom["trial"]["Type"]) == ("time", "boolean")


@pytest.mark.parametrize("field_type", ["integer", "float", "date", "text", None])
def test_create_field_refuses_undocumented_type_names(
    emulator: Emulator, field_type: str | None
) -> None:
    fields = [{"name": "ok", "type": "string"}, {"name": "bad", "type": field_type}]
    response = create_fields(emulator.url, fields)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "type" in response.text
    assert "ok" not in get_schema(emulator.url).json()["custom"]  # all or nothing


def test_create_field_schema_types_switch(emulator: Emulator) -> None:
    emulator.set_switches(field_create_types="schema")
    fields = [{"name": "n", "type": "integer"}, {"name": "d", "type": "date"}]
    assert create_fields(emulator.url, fields).status_code == 200
    assert create_fields(emulator.url, [{"name": "tags", "type": "list"}]).status_code == 400
    assert create_fields(emulator.url, [{"name": "t", "type": "list"}], group="agent").ok
    assert create_fields(emulator.url, [{"name": "bad", "type": "text"}]).status_code == 400
    custom = get_schema(emulator.url).json()["custom"]
    assert (custom["n"]["Type"], custom["d"]["Type"]) == ("integer", "date")


@pytest.mark.parametrize(
    "raw",
    [b"{oops", b'{"name": "x", "type": "string"}', b"[]", b'["x"]', b'[{"type": "string"}]'],
    ids=["malformed", "object", "empty", "not-objects", "no-name"],
)
def test_create_field_bad_body_is_400(emulator: Emulator, raw: bytes) -> None:
    response = create_fields(emulator.url, None, raw=raw)
    assert response.status_code == 400
    assert get_schema(emulator.url).json()["custom"] == {}


def test_create_field_text_body_switch(emulator: Emulator) -> None:
    emulator.set_switches(field_route_body="text")
    response = create_fields(emulator.url, [{"name": "plan", "type": "string"}])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "plan" in response.text
    deleted = delete_field(emulator.url, "plan")
    assert deleted.status_code == 200
    assert "plan" in deleted.text


def test_create_field_needs_write_key(emulator: Emulator) -> None:
    fields = [{"name": "plan", "type": "string"}]
    wrong = create_fields(emulator.url, fields, headers={KEY: "wrong"})
    assert wrong.status_code == 403
    assert wrong.content == b""
    with Emulator(integration_keys={"ro": False}) as emu:
        assert create_fields(emu.url, fields, headers={KEY: "ro"}).status_code == 403
        assert emu.schema("visitor")["custom"] == {}


def test_delete_route_marks_field_deleted_and_create_undeletes_keeping_type(
    plan_visitors: Emulator,
) -> None:
    url = plan_visitors.url
    response = delete_field(url, "Plan")
    assert response.status_code == 200
    assert response.content == b""
    assert get_schema(url).json()["custom"]["plan"]["isDeleted"] is True
    assert plan_visitors.request_counts()["DELETE /api/v1/metadata/schema/visitor/custom/Plan"] == 1
    assert post_values(url, items("v-1", plan="pro")).status_code == 400
    assert create_fields(url, [{"name": "plan", "type": "boolean"}]).status_code == 200
    entry = get_schema(url).json()["custom"]["plan"]
    assert (entry["isDeleted"], entry["Type"]) == (False, "string")
    assert post_values(url, items("v-1", plan="pro")).json()["updated"] == 1


def test_delete_unknown_field_is_404(emulator: Emulator) -> None:
    assert delete_field(emulator.url, "nothing").status_code == 404


def test_fields_route_takes_faults(emulator: Emulator) -> None:
    emulator.inject(route="fields", status=503)
    assert create_fields(emulator.url, [{"name": "a", "type": "string"}]).status_code == 503
    assert create_fields(emulator.url, [{"name": "a", "type": "string"}]).status_code == 200


# --- metadata writes: the 200 answer ----------------------------------------------------------
def test_metadata_200_answer_has_the_documented_keys_only(plan_visitors: Emulator) -> None:
    response = post_values(plan_visitors.url, items("v-1", "v-2", "u-x", plan="pro"))
    assert response.status_code == 200
    assert response.json() == {
        "total": 3,
        "updated": 2,
        "failed": 1,
        "missing": ["u-x"],
        "errors": [],
    }
    assert plan_visitors.objects("visitor")["v-1"]["custom"] == {"plan": "pro"}
    assert "u-x" not in plan_visitors.objects("visitor")
    assert plan_visitors.metadata_writes() == [
        {
            "kind": "visitor",
            "group": "custom",
            "ids": ["v-1", "v-2", "u-x"],
            "updated": ["v-1", "v-2"],
        }
    ]


@pytest.mark.parametrize(("query", "switch"), [("?create=true", None), ("", "create")])
def test_unknown_ids_created_with_create_flag_or_switch(
    plan_visitors: Emulator, query: str, switch: str | None
) -> None:
    if switch:
        plan_visitors.set_switches(unknown_ids=switch)
    answer = post_values(plan_visitors.url, items("new-1", plan="pro"), query=query).json()
    assert (answer["updated"], answer["missing"]) == (1, [])
    assert plan_visitors.objects("visitor")["new-1"]["custom"] == {"plan": "pro"}


# --- metadata writes: missing field mappings --------------------------------------------------
@pytest.mark.parametrize("deleted", [False, True], ids=["unknown", "deleted"])
def test_missing_custom_field_fails_whole_batch_with_400(
    plan_visitors: Emulator, deleted: bool
) -> None:
    if deleted:
        plan_visitors.seed(
            "visitor", group="custom", fields={"planTier": {"type": "string", "isDeleted": True}}
        )
    batch = [*items("v-1", plan="pro"), {"visitorId": "v-2", "values": {"planTier": "gold"}}]
    response = post_values(plan_visitors.url, batch)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "missing field mappings" in response.text
    assert "plantier" in response.text
    assert plan_visitors.objects("visitor")["v-1"]["custom"] == {}
    assert plan_visitors.metadata_writes() == []


def test_missing_field_item_switch_fails_only_that_item(plan_visitors: Emulator) -> None:
    plan_visitors.set_switches(missing_field="item")
    batch = [*items("v-1", plan="pro"), {"visitorId": "v-2", "values": {"nope": 1}}]
    answer = post_values(plan_visitors.url, batch).json()
    assert (answer["updated"], answer["failed"]) == (1, 1)
    assert answer["errors"][0]["visitorId"] == "v-2"
    assert "nope" in answer["errors"][0]["error"]
    assert plan_visitors.objects("visitor")["v-1"]["custom"] == {"plan": "pro"}


@pytest.mark.parametrize(
    "raw",
    [
        b"{nope",
        b'{"visitorId": "v-1", "values": {}}',
        b'["v-1"]',
        b'[{"values": {"plan": "x"}}]',
        b'[{"visitorId": 1, "values": {}}]',
        b'[{"visitorId": "v-1", "values": ["x"]}]',
        b'[{"visitorId": "v-1", "values": {"plan": "ok"}}, {"visitorId": "v-2"}]',
    ],
    ids=["malformed", "object", "strings", "no-id", "int-id", "values-list", "one-bad"],
)
def test_malformed_metadata_body_is_400_and_writes_nothing(
    plan_visitors: Emulator, raw: bytes
) -> None:
    response = post_values(plan_visitors.url, None, raw=raw)
    assert response.status_code == 400
    assert "malformed" in response.text
    assert plan_visitors.objects("visitor")["v-1"]["custom"] == {}


def test_account_items_use_account_id(emulator: Emulator) -> None:
    emulator.seed("account", ["acme"], group="custom", fields={"arr": "float"})
    batch = [{"accountId": "acme", "values": {"arr": "lots"}}]
    answer = post_values(emulator.url, batch, kind="account").json()
    assert answer["errors"] == [{"accountId": "acme", "error": "value for arr is not a number"}]
    wrong_key = post_values(emulator.url, items("acme", arr=1.0), kind="account")
    assert wrong_key.status_code == 400


# --- metadata writes: agent fields --------------------------------------------------------------
def test_unknown_agent_field_is_created_typed_from_value(emulator: Emulator) -> None:
    emulator.seed("visitor", ["v-1"])
    values = {"nickName": "Al", "logins": 3, "score": 1.5, "beta": True, "tags": ["a"]}
    answer = post_values(emulator.url, items("v-1", **values), group="agent").json()
    assert answer["updated"] == 1
    agent = get_schema(emulator.url).json()["agent"]
    types = {k: agent[k]["Type"] for k in ("nickname", "logins", "score", "beta", "tags")}
    assert types == {
        "nickname": "string",
        "logins": "integer",
        "score": "float",
        "beta": "boolean",
        "tags": "list",
    }
    assert agent["nickname"]["DisplayName"] == "nickName"
    assert set(agent["nickname"]) == CAPITALISED | CAMEL


def test_block_undefined_agent_fields_discards_silently(emulator: Emulator) -> None:
    emulator.seed("visitor", ["v-1"])
    emulator.set_switches(block_undefined_agent_fields=True)
    answer = post_values(emulator.url, items("v-1", nickName="Al"), group="agent").json()
    assert (answer["updated"], answer["failed"]) == (1, 0)
    assert "nickname" not in get_schema(emulator.url).json()["agent"]
    assert emulator.objects("visitor")["v-1"]["agent"] == {}
    # a field made through the create route is accepted even while the block is on [C]
    create_fields(emulator.url, [{"name": "nickName", "type": "string"}], group="agent")
    post_values(emulator.url, items("v-1", nickName="Al"), group="agent")
    assert emulator.objects("visitor")["v-1"]["agent"] == {"nickname": "Al"}


def test_deleted_agent_field_is_missing_by_default(emulator: Emulator) -> None:
    emulator.seed("visitor", ["v-1"])
    emulator.seed("visitor", group="agent", fields={"email": {"type": "string", "isDeleted": True}})
    response = post_values(emulator.url, items("v-1", email="a@b.c"), group="agent")
    assert response.status_code == 400
    assert "missing field mappings" in response.text
    assert "email" in response.text


def test_deleted_agent_field_recreate_switch(emulator: Emulator) -> None:
    emulator.seed("visitor", ["v-1"])
    emulator.seed("visitor", group="agent", fields={"email": {"type": "string", "isDeleted": True}})
    emulator.set_switches(deleted_agent_field="recreate")
    response = post_values(emulator.url, items("v-1", email="a@b.c"), group="agent")
    assert response.json()["updated"] == 1
    assert emulator.schema("visitor")["agent"]["email"]["isDeleted"] is False
    assert emulator.objects("visitor")["v-1"]["agent"] == {"email": "a@b.c"}


# --- metadata writes: values that do not fit --------------------------------------------------
@pytest.mark.parametrize(
    ("field_type", "good", "bad"),
    [
        ("string", "x" * 1499, "x" * 1500),
        ("string", "pro", 12),
        ("integer", 12, "12"),
        ("integer", -3, 1.5),
        ("integer", 0, True),
        ("float", 2, "2.5"),
        ("float", 2.5, False),
        ("boolean", False, "yes"),
        ("boolean", True, 1),
        ("time", 1735776000000, "last tuesday"),
        ("time", "2025-01-02T03:04:05+00:00", -1),
        ("time", 0, 1.7e12),
        ("date", "2025-01-02", "02/01/2025"),
        ("list", ["a"], "a"),
    ],
)
def test_bad_value_fails_only_its_item_by_default(
    emulator: Emulator, field_type: str, good: Any, bad: Any
) -> None:
    group = "agent" if field_type == "list" else "custom"
    emulator.seed("visitor", ["v-1", "v-2"], group=group, fields={"f": field_type})
    batch = [
        {"visitorId": "v-1", "values": {"f": good}},
        {"visitorId": "v-2", "values": {"f": bad}},
    ]
    response = post_values(emulator.url, batch, group=group)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["total"], answer["updated"], answer["failed"]) == (2, 1, 1)
    assert answer["missing"] == []
    (error,) = answer["errors"]
    assert error["visitorId"] == "v-2"
    assert "value for f" in error["error"]
    stored = emulator.objects("visitor")
    assert stored["v-1"][group] == {"f": good}
    assert stored["v-2"][group] == {}


def test_bad_value_batch_switch_is_400_naming_first_bad_item(plan_visitors: Emulator) -> None:
    plan_visitors.set_switches(bad_value="batch")
    batch = [*items("v-1", plan="pro"), *items("v-2", plan=7), *items("v-1", plan=8)]
    response = post_values(plan_visitors.url, batch)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "v-2" in response.text
    assert "item 1" in response.text
    assert plan_visitors.objects("visitor")["v-1"]["custom"] == {}


@pytest.mark.parametrize(("mode", "status"), [("item", 200), ("batch", 400)])
def test_metadata_rules_follow_the_bad_value_switch(
    plan_visitors: Emulator, mode: str, status: int
) -> None:
    plan_visitors.set_switches(bad_value=mode)
    plan_visitors.reject_metadata("visitor", "Plan", ["legacy"], "plan value is not allowed")
    response = post_values(
        plan_visitors.url, [*items("v-1", plan="pro"), *items("v-2", plan="legacy")]
    )
    assert response.status_code == status
    if status == 200:
        assert response.json()["errors"] == [
            {"visitorId": "v-2", "error": "plan value is not allowed"}
        ]
        assert plan_visitors.objects("visitor")["v-1"]["custom"] == {"plan": "pro"}
    else:
        assert "plan value is not allowed" in response.text
        assert plan_visitors.objects("visitor")["v-1"]["custom"] == {}


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("object", [{"visitorId": "v-2", "error": "value for plan is not a string"}]),
        ("string", ["v-2: value for plan is not a string"]),
        ("string_no_id", ["value for plan is not a string"]),
        ("absent", None),
    ],
)
def test_error_shape_switch(plan_visitors: Emulator, shape: str, expected: Any) -> None:
    plan_visitors.set_switches(error_shape=shape)
    batch = [*items("v-1", plan="pro"), *items("v-2", plan=3), *items("u-x", plan="pro")]
    answer = post_values(plan_visitors.url, batch).json()
    assert answer.get("errors") == expected
    assert ("errors" in answer) == (expected is not None)
    assert (answer["total"], answer["updated"], answer["failed"]) == (3, 1, 2)
    assert answer["missing"] == ["u-x"]


@pytest.mark.parametrize(
    ("mode", "status", "stored"),
    [("clear", 200, None), ("ignore", 200, "pro"), ("invalid", 200, "pro")],
)
def test_null_value_switch(plan_visitors: Emulator, mode: str, status: int, stored: Any) -> None:
    post_values(plan_visitors.url, items("v-1", plan="pro"))
    plan_visitors.set_switches(null_value=mode)
    response = post_values(plan_visitors.url, items("v-1", plan=None))
    assert response.status_code == status
    assert plan_visitors.objects("visitor")["v-1"]["custom"]["plan"] == stored
    assert response.json()["failed"] == (1 if mode == "invalid" else 0)


# --- metadata writes: 200 that is not Pendo's answer -------------------------------------------
@pytest.mark.parametrize("body", ["html", "empty_object"])
def test_non_json_200_does_not_write_by_default(plan_visitors: Emulator, body: str) -> None:
    plan_visitors.set_switches(ok_body=body)
    response = post_values(plan_visitors.url, items("v-1", plan="pro"))
    assert response.status_code == 200
    if body == "html":
        assert response.headers["Content-Type"].startswith("text/html")
        assert "<html>" in response.text
        assert "proxy" in response.text
    else:
        assert response.json() == {}
    assert plan_visitors.objects("visitor")["v-1"]["custom"] == {}
    assert plan_visitors.metadata_writes() == []


def test_non_json_200_written_sub_switch(plan_visitors: Emulator) -> None:
    plan_visitors.set_switches(ok_body="html", ok_body_writes=True)
    response = post_values(plan_visitors.url, items("v-1", plan="pro"))
    assert response.headers["Content-Type"].startswith("text/html")
    assert plan_visitors.objects("visitor")["v-1"]["custom"] == {"plan": "pro"}
    # refusals are still refusals: only a 200's body is replaced
    assert post_values(plan_visitors.url, items("v-1", nope=1)).status_code == 400


# --- metadata writes: the 408 budget ------------------------------------------------------------
def test_default_budget_is_5000_items(emulator: Emulator) -> None:
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    batch = [{"visitorId": f"v-{i}", "values": {}} for i in range(5001)]
    response = post_values(emulator.url, batch)
    assert response.status_code == 408
    assert "5-minute" in response.text
    assert post_values(emulator.url, batch[:5000]).status_code == 200


def test_budget_switch_408_writes_nothing(plan_visitors: Emulator) -> None:
    plan_visitors.set_switches(item_budget=2)
    response = post_values(plan_visitors.url, items("v-1", "v-2", "v-1", plan="pro"))
    assert response.status_code == 408
    assert plan_visitors.objects("visitor")["v-1"]["custom"] == {}
    assert post_values(plan_visitors.url, items("v-1", "v-2", plan="pro")).status_code == 200


def test_budget_partial_write_switch(plan_visitors: Emulator) -> None:
    plan_visitors.seed("visitor", ["v-3"])
    plan_visitors.set_switches(item_budget=2, budget_partial_write=True)
    response = post_values(plan_visitors.url, items("v-1", "v-2", "v-3", plan="pro"))
    assert response.status_code == 408
    stored = plan_visitors.objects("visitor")
    assert [stored[i]["custom"] for i in ("v-1", "v-2", "v-3")] == [
        {"plan": "pro"},
        {"plan": "pro"},
        {},
    ]


# --- a field deleted while a run goes ------------------------------------------------------------
def test_field_deleted_after_n_accepted_writes(plan_visitors: Emulator) -> None:
    plan_visitors.delete_field_after("visitor", "custom", "Plan", after=2)
    url = plan_visitors.url
    post_values(url, items("v-1", plan=1))  # a 200 with a per-item error still counts
    assert post_values(url, items("v-1", plan="pro")).status_code == 200
    assert plan_visitors.schema("visitor")["custom"]["plan"]["isDeleted"] is True
    response = post_values(url, items("v-2", plan="pro"))
    assert response.status_code == 400
    assert "plan" in response.text


def test_field_deletion_schedule_over_http(plan_visitors: Emulator) -> None:
    response = requests.post(
        plan_visitors.url + "/_emulator/field-deletions",
        json={"kind": "visitor", "group": "custom", "field": "plan", "after": 1},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert post_values(plan_visitors.url, items("v-1", plan="pro")).status_code == 200
    assert post_values(plan_visitors.url, items("v-1", plan="pro")).status_code == 400
    with pytest.raises(NotFound, match="no custom field"):
        plan_visitors.delete_field("visitor", "custom", "other")


# --- parent accounts ----------------------------------------------------------------------
def test_parent_account_ids_and_routes(emulator: Emulator) -> None:
    emulator.seed(
        "account", ["acme::emea", "acme::apac"], group="custom", fields={"tier": "string"}
    )
    emulator.seed("parentAccount", group="custom", fields={"tier": "string"})
    assert set(emulator.objects("parentAccount")) == {"acme"}
    child_only = post_values(emulator.url, [{"accountId": "emea", "values": {}}], kind="account")
    assert child_only.json()["missing"] == ["emea"]
    full = post_values(
        emulator.url, [{"accountId": "acme::emea", "values": {"tier": "gold"}}], kind="account"
    )
    assert full.json()["updated"] == 1
    parent = post_values(
        emulator.url, [{"accountId": "acme", "values": {"tier": "gold"}}], kind="parentAccount"
    )
    assert parent.json()["updated"] == 1
    assert get_schema(emulator.url, "parentAccount").status_code == 200


def test_parent_account_routes_switch_404(emulator: Emulator) -> None:
    emulator.set_switches(parent_account_routes=False)
    batch = [{"accountId": "acme", "values": {}}]
    assert post_values(emulator.url, batch, kind="parentAccount").status_code == 404
    assert get_schema(emulator.url, "parentAccount").status_code == 404
    fields = [{"name": "a", "type": "string"}]
    assert create_fields(emulator.url, fields, kind="parentAccount").status_code == 404
    assert post_values(emulator.url, batch, kind="account").status_code == 200


# --- keys and error bodies ---------------------------------------------------------------------
def test_api_bad_key_status_switch(emulator: Emulator) -> None:
    headers = {KEY: "wrong"}
    assert post_values(emulator.url, [], headers=headers).status_code == 403
    emulator.set_switches(api_bad_key_status=401)
    response = post_values(emulator.url, [], headers=headers)
    assert response.status_code == 401
    assert response.content == b""


def test_track_bad_secret_status_switch(emulator: Emulator) -> None:
    assert track(emulator.url, key="wrong").status_code == 403
    emulator.set_switches(track_bad_secret_status=401)
    response = track(emulator.url, key="wrong")
    assert response.status_code == 401
    assert response.content == b""
    assert emulator.events() == []


@pytest.mark.parametrize("style", ["json", "empty"])
def test_error_body_switch(plan_visitors: Emulator, style: str) -> None:
    plan_visitors.set_switches(error_body=style)
    response = post_values(plan_visitors.url, items("v-1", nope=1))
    assert response.status_code == 400
    if style == "json":
        assert response.headers["Content-Type"] == "application/json"
        assert "missing field mappings" in response.json()["message"]
    else:
        assert response.content == b""
    assert track(plan_visitors.url, type="identify").status_code == 400


# --- Track: what Pendo would not process -------------------------------------------------------
def test_recent_event_is_processed(emulator: Emulator) -> None:
    assert track(emulator.url, properties={"_x": 1, "a1": 2, "__lead": 3}).status_code == 200
    (stored,) = emulator.events()
    assert stored["_processed"] is True
    assert "_unprocessed_reasons" not in stored


def test_event_older_than_seven_days_is_answered_200_but_not_processed(emulator: Emulator) -> None:
    emulator.define_event("Report Exported", 0)
    assert track(emulator.url, timestamp=now_ms() - 8 * DAY_MS).status_code == 200
    assert track(emulator.url, timestamp=now_ms() - 6 * DAY_MS).status_code == 200
    old, recent = emulator.events()
    assert old["_processed"] is False
    assert old["_unprocessed_reasons"] == ["timestamp is more than 7 days old"]
    assert recent["_processed"] is True


@pytest.mark.parametrize("name", ["1st", "with-dash", "a" * 33, "__both__", "__", "spa ce", "é"])
def test_invalid_property_name_is_not_processed(emulator: Emulator, name: str) -> None:
    assert track(emulator.url, properties={name: 1}).status_code == 200
    (stored,) = emulator.events()
    assert stored["_processed"] is False
    assert any("property name" in r for r in stored["_unprocessed_reasons"])


def test_properties_over_512_bytes_are_flagged(emulator: Emulator) -> None:
    track(emulator.url, properties={"notes": "x" * 520})
    (stored,) = emulator.events()
    assert stored["_processed"] is False
    assert "too large" in stored["_unprocessed_reasons"][0]


def test_backfill_before_event_name_was_defined_is_not_processed(emulator: Emulator) -> None:
    track(emulator.url, event="New Event")
    track(emulator.url, event="New Event", timestamp=now_ms() - 2 * DAY_MS)
    emulator.define_event("Old Event", now_ms() - 5 * DAY_MS)
    track(emulator.url, event="Old Event", timestamp=now_ms() - 2 * DAY_MS)
    first, backfill, defined = emulator.events()
    assert first["_processed"] is True
    assert backfill["_processed"] is False
    assert "before event 'New Event' was first defined" in backfill["_unprocessed_reasons"][0]
    assert defined["_processed"] is True
    response = requests.post(
        emulator.url + "/_emulator/define-event",
        json={"event": "Other", "at": 0},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200


# --- transport: redirects, received headers, rate limit ------------------------------------------
def test_redirect_fault_and_received_headers() -> None:
    with Emulator() as front, Emulator() as elsewhere:
        target = elsewhere.url + "/data/track"
        front.inject(route="track", status=307, location=target, times=2)
        manual = requests.post(
            front.url + "/data/track",
            json={},
            headers={KEY: DEMO_TRACK_SECRET},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert manual.status_code == 307
        assert manual.headers["Location"] == target
        followed = track(front.url)  # requests follows a 307 and keeps the custom header
        assert followed.status_code == 200
        assert followed.history[0].status_code == 307
        assert front.events() == []
        assert len(elsewhere.events()) == 1
        assert front.key_header_counts() == {"track": {"with_key": 2, "without_key": 0}}
        assert elsewhere.key_header_counts() == {"track": {"with_key": 1, "without_key": 0}}
        (received,) = elsewhere.received("track")
        assert received["key_present"] is True
        assert received["headers"][KEY] == DEMO_TRACK_SECRET
        requests.post(target, json={}, timeout=TIMEOUT)
        counts = requests.get(elsewhere.url + "/_emulator/key-headers", timeout=TIMEOUT).json()
        assert counts == {"routes": {"track": {"with_key": 1, "without_key": 1}}}
        log = requests.get(elsewhere.url + "/_emulator/received?route=track", timeout=TIMEOUT)
        assert [r["key_present"] for r in log.json()["received"]] == [True, False]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_fault_needs_location(emulator: Emulator, status: int) -> None:
    with pytest.raises(ValueError, match="location"):
        emulator.inject(route="metadata", status=status)
    emulator.inject(route="metadata", status=status, location="http://127.0.0.1:9/x")
    response = requests.post(
        emulator.url + "/api/v1/metadata/visitor/custom/value",
        data=b"[]",
        headers=API,
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code == status
    assert response.headers["Location"] == "http://127.0.0.1:9/x"
    assert response.content == b""


def test_rate_limit_is_per_key_and_endpoint_without_retry_after() -> None:
    with Emulator(rate_limit=4) as emu, requests.Session() as session:
        verify = [
            session.get(emu.url + "/api/v1/token/verify", headers=API, timeout=TIMEOUT)
            for _ in range(8)
        ]
        assert [r.status_code for r in verify[:4]] == [200] * 4
        limited = [r for r in verify if r.status_code == 429]
        assert limited
        assert all("Retry-After" not in r.headers for r in limited)
        # the same key on another endpoint has its own budget
        schema = session.get(emu.url + "/api/v1/metadata/schema/visitor", headers=API, timeout=5)
        assert schema.status_code == 200
        assert emu.rate_limited() == {"verify": len(limited)}
        answer = requests.get(emu.url + "/_emulator/rate-limited", timeout=TIMEOUT).json()
        assert answer == {"rate_limited": {"verify": len(limited)}}


def test_rate_limit_scope_key_and_retry_after_switches() -> None:
    switches = {"rate_limit_scope": "key", "rate_limit_retry_after": 3}
    with Emulator(rate_limit=3, switches=switches) as emu, requests.Session() as session:
        for _ in range(3):
            session.get(emu.url + "/api/v1/token/verify", headers=API, timeout=TIMEOUT)
        schema = session.get(emu.url + "/api/v1/metadata/schema/visitor", headers=API, timeout=5)
        assert schema.status_code == 429
        assert schema.headers["Retry-After"] == "3"
        assert emu.rate_limited() == {"schema": 1}


# --- switches API ------------------------------------------------------------------------------
def test_switches_listed_with_defaults_values_and_docs(emulator: Emulator) -> None:
    answer = requests.get(emulator.url + "/_emulator/switches", timeout=TIMEOUT).json()
    assert answer["switches"] == Switches().as_dict()
    names = {f.name for f in dataclasses.fields(Switches)}
    assert set(answer["help"]) == names
    for name, described in answer["help"].items():
        assert described["default"] == answer["switches"][name]
        assert len(described["doc"]) > 40, name
    assert answer["help"]["bad_value"]["values"] == ["item", "batch"]
    assert answer["switches"]["item_budget"] == 5000


def test_switches_set_over_http_and_validated(plan_visitors: Emulator) -> None:
    url = plan_visitors.url + "/_emulator/switches"
    changed = requests.post(url, json={"bad_value": "batch", "item_budget": 100}, timeout=5)
    assert changed.status_code == 200
    assert changed.json()["switches"]["bad_value"] == "batch"
    assert plan_visitors.switches.item_budget == 100
    assert post_values(plan_visitors.url, items("v-1", plan=3)).status_code == 400
    for bad in ({"bad_value": "some"}, {"no_such": 1}, {"item_budget": 0}, ["x"]):
        assert requests.post(url, json=bad, timeout=TIMEOUT).status_code == 400
    assert plan_visitors.switches.bad_value == "batch"


def test_switches_python_api_and_reset_restores_the_started_ones() -> None:
    with Emulator(switches={"schema_case": "lowercase"}) as emu:
        assert emu.switches.schema_case == "lowercase"
        emu.set_switches(error_shape="absent", schema_case="capitalised")
        with pytest.raises(dataclasses.FrozenInstanceError):
            emu.switches.error_shape = "object"  # type: ignore[misc]
        with pytest.raises(ValueError, match="error_shape"):
            emu.set_switches(error_shape="xml")
        emu.reset()
        assert emu.switches == Switches(schema_case="lowercase")
    with Emulator(switches=Switches(bad_value="batch")) as emu:
        requests.post(emu.url + "/_emulator/switches", json={"bad_value": "item"}, timeout=5)
        requests.post(emu.url + "/_emulator/reset", timeout=TIMEOUT)
        assert emu.switches.bad_value == "batch"
    with pytest.raises(ValueError, match="unknown switch"):
        Emulator(switches={"colour": "red"})


def test_reset_restores_builtin_schema_and_clears_new_logs(plan_visitors: Emulator) -> None:
    plan_visitors.delete_field_after("visitor", "custom", "plan", after=5)
    track(plan_visitors.url)
    plan_visitors.reset()
    schema = plan_visitors.schema("visitor")
    assert schema["custom"] == {}
    assert "lastvisit" in schema["auto"]
    assert plan_visitors.received() == []
    assert plan_visitors.key_header_counts() == {}
    assert plan_visitors.metadata_writes() == []
