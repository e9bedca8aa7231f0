"""Object sync end to end: Singer rows -> metadata bulk updates -> emulator."""

from __future__ import annotations

import math

import pytest

from pendo_emulator import Emulator
from target_pendo.errors import PendoAuthError, StreamConfigError

from ..singer import read_log, record, run_cli, run_target, schema, state

USERS_SCHEMA = {
    "id": {"type": ["string", "integer"]},
    "email": {"type": ["string", "null"]},
    "plan": {"type": ["string", "null"]},
    "seats": {"type": ["integer", "string", "null"]},
    "mrr": {"type": ["number", "null"]},
    "is_trial": {"type": ["boolean", "string", "null"]},
    "signed_up_at": {"type": ["string", "null"]},
    "tags": {"type": ["array", "null"], "items": {"type": "string"}},
}
VISITOR_FIELDS = {
    "custom": {
        "plan": "string",
        "seats": "integer",
        "mrr": "float",
        "isTrial": "boolean",
        "signedUpAt": "time",
    },
    "agent": {"email": "string", "tags": "list"},  # list fields are agent-only in Pendo
}
USERS_SPEC = {
    "sync": "visitor",
    "id_column": "id",
    "agent_fields": {"email": "email", "tags": "tags"},
    "custom_fields": {
        "plan": "plan",
        "seats": "seats",
        "mrr": "mrr",
        "isTrial": "is_trial",
        "signedUpAt": "signed_up_at",
    },
}


def seed_fields(emulator: Emulator, kind: str, fields: dict[str, dict[str, str]]) -> None:
    for group, group_fields in fields.items():
        emulator.seed(kind, group=group, fields=group_fields)


def user_row(i: int, **overrides: object) -> dict:
    row = {
        "id": f"v-{i}",
        "email": f"user{i}@example.com",
        "plan": ("free", "team", "enterprise")[i % 3],
        "seats": i % 50,
        "mrr": i * 1.25,
        "is_trial": i % 2 == 0,
        "signed_up_at": "2025-01-02T03:04:05Z",
        "tags": [f"t{i % 4}"],
    }
    row.update(overrides)
    return row


def metadata_posts(emulator: Emulator) -> dict[str, int]:
    return {k: v for k, v in emulator.request_counts().items() if "/metadata/" in k and "POST" in k}


def test_ten_thousand_visitors_with_unknown_ids(emulator, base_config):
    """The issue's acceptance run: 37 unknown of 10,000 -> 9,963 updated, 37 listed."""
    seed_fields(emulator, "visitor", VISITOR_FIELDS)
    unknown = set(range(5, 10_000, 271))  # 37 ids Pendo does not have
    assert len(unknown) == 37
    emulator.seed("visitor", [f"v-{i}" for i in range(10_000) if i not in unknown])
    lines = [schema("users", USERS_SCHEMA)]
    lines += [record("users", user_row(i)) for i in range(10_000)]
    lines.append(state({"bookmarks": {"users": {"id": 9999}}}))
    config = {**base_config, "streams": {"users": USERS_SPEC}}

    states, target = run_target(config, lines)

    stored = emulator.objects("visitor")
    assert len(stored) == 9_963
    for i in (1, 2, 3, 4999, 9999):
        assert stored[f"v-{i}"] == {
            "agent": {"email": f"user{i}@example.com", "tags": [f"t{i % 4}"]},
            "custom": {
                "plan": ("free", "team", "enterprise")[i % 3],
                "seats": i % 50,
                "mrr": i * 1.25,
                "istrial": i % 2 == 0,
                "signedupat": 1735787045000,
            },
        }
    assert all(f"v-{i}" not in stored for i in unknown)
    counts = target.run_context.report.streams["users"]
    assert (counts.received, counts.sent, counts.skipped_unknown, counts.rejected) == (
        10_000,
        9_963,
        37,
        0,
    )
    assert sorted(target.run_context.report.unknown_ids["users"]) == sorted(
        f"v-{i}" for i in unknown
    )
    unknown_file = read_log(base_config["state_dir"], "unknown", "users")
    assert sorted(u["id"] for u in unknown_file) == sorted(f"v-{i}" for i in unknown)
    assert {u["kind"] for u in unknown_file} == {"visitor"}
    # one call per group per 500 rows; unknown ids skip the custom call
    posts = metadata_posts(emulator)
    assert posts == {
        "POST /api/v1/metadata/visitor/agent/value": 20,
        "POST /api/v1/metadata/visitor/custom/value": 20,
    }
    assert emulator.request_counts()["GET /api/v1/metadata/schema/visitor"] == 1
    assert states == [{"bookmarks": {"users": {"id": 9999}}}]


@pytest.mark.parametrize(
    ("sync", "kind"), [("account", "account"), ("parent_account", "parentAccount")]
)
def test_accounts_and_parent_accounts(emulator, base_config, sync, kind):
    seed_fields(
        emulator, kind, {"custom": {"tier": "string", "arr": "float"}, "agent": {"name": "string"}}
    )
    emulator.seed(kind, [f"a-{i}" for i in range(1, 60)])  # a-0 is unknown
    props = {
        "account_id": {"type": "string"},
        "tier": {"type": "string"},
        "arr": {"type": "number"},
        "name": {"type": "string"},
    }
    spec = {
        "sync": sync,
        "id_column": "account_id",
        "agent_fields": {"name": "name"},
        "custom_fields": {"tier": "tier", "arr": "arr"},
        "batch_size": 25,
    }
    lines = [schema("accts", props, key=["account_id"])]
    lines += [
        record("accts", {"account_id": f"a-{i}", "tier": "gold", "arr": i * 10.0, "name": f"A{i}"})
        for i in range(60)
    ]
    _, target = run_target({**base_config, "streams": {"accts": spec}}, lines)
    stored = emulator.objects(kind)
    assert len(stored) == 59
    assert stored["a-7"] == {"agent": {"name": "A7"}, "custom": {"tier": "gold", "arr": 70.0}}
    assert target.run_context.report.unknown_ids["accts"] == ["a-0"]
    posts = metadata_posts(emulator)
    assert posts == {
        f"POST /api/v1/metadata/{kind}/agent/value": 3,
        f"POST /api/v1/metadata/{kind}/custom/value": 3,
    }


def test_split_retries_isolate_bad_rows_within_the_bound(emulator, base_config):
    """500 rows, 3 values Pendo refuses -> 497 updated, 3 rejected, <= 1 + 2*3*9 calls."""
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", [f"v-{i}" for i in range(500)])
    bad = {17: "legacy-1", 250: "legacy-2", 499: "legacy-3"}
    emulator.reject_metadata("visitor", "plan", list(bad.values()), "plan value is not allowed")
    spec = {"sync": "visitor", "custom_fields": {"plan": "plan"}}
    lines = [schema("users", {"id": {"type": "string"}, "plan": {"type": "string"}})]
    lines += [record("users", {"id": f"v-{i}", "plan": bad.get(i, "pro")}) for i in range(500)]
    _, target = run_target({**base_config, "streams": {"users": spec}}, lines)

    stored = emulator.objects("visitor")
    updated = [k for k, v in stored.items() if v["custom"].get("plan") == "pro"]
    assert len(updated) == 497
    assert all(not stored[f"v-{i}"]["custom"] for i in bad)
    rejects = read_log(base_config["state_dir"], "rejects", "users")
    assert sorted(r["key"] for r in rejects) == sorted(f"v-{i}" for i in bad)
    assert all("plan value is not allowed" in r["reason"] for r in rejects)
    calls = metadata_posts(emulator)["POST /api/v1/metadata/visitor/custom/value"]
    assert calls <= 1 + 2 * 3 * math.ceil(math.log2(500))
    counts = target.run_context.report.streams["users"]
    assert (counts.sent, counts.rejected) == (497, 3)


def test_values_are_coerced_and_uncoercible_ones_reject_only_their_row(emulator, base_config):
    seed_fields(emulator, "visitor", VISITOR_FIELDS)
    emulator.seed("visitor", ["v-1", "v-2", "v-3"])
    rows = [
        user_row(1, seats="12", is_trial="yes", signed_up_at="2025-01-02"),
        user_row(2, seats="twelve"),
        user_row(3, mrr=None),
    ]
    lines = [schema("users", USERS_SCHEMA)] + [record("users", r) for r in rows]
    run_target({**base_config, "streams": {"users": USERS_SPEC}}, lines)
    stored = emulator.objects("visitor")
    assert stored["v-1"]["custom"]["seats"] == 12
    assert stored["v-1"]["custom"]["istrial"] is True
    assert stored["v-1"]["custom"]["signedupat"] == 1735776000000
    assert stored["v-3"]["custom"]["mrr"] is None
    assert stored["v-2"] == {"agent": {}, "custom": {}}
    (reject,) = read_log(base_config["state_dir"], "rejects", "users")
    assert reject["field"] == "seats"
    assert "'twelve'" in reject["reason"]
    assert "custom field 'seats'" in reject["reason"]


def test_field_names_match_case_insensitively_and_default_to_custom(emulator, base_config):
    emulator.seed("visitor", group="custom", fields={"planTier": "string", "seats": "integer"})
    emulator.seed("visitor", ["v-1"])
    props = {
        "id": {"type": "string"},
        "PlanTier": {"type": "string"},
        "seats": {"type": "integer"},
        "_sdc_batched_at": {"type": ["string", "null"]},
    }
    lines = [schema("users", props), record("users", {"id": "v-1", "PlanTier": "gold", "seats": 3})]
    run_target({**base_config, "streams": {"users": {"sync": "visitor"}}}, lines)
    assert emulator.objects("visitor")["v-1"]["custom"] == {"plantier": "gold", "seats": 3}


def test_missing_custom_field_fails_before_sending(emulator, base_config):
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", ["v-1"])
    spec = {"sync": "visitor", "custom_fields": {"plan": "plan", "region": "plan"}}
    lines = [
        schema("users", {"id": {"type": "string"}, "plan": {"type": "string"}}),
        record("users", {"id": "v-1", "plan": "x"}),
    ]
    with pytest.raises(StreamConfigError) as err:
        run_target({**base_config, "streams": {"users": spec}}, lines)
    message = str(err.value)
    assert "custom field 'region'" in message
    assert "Settings > Data Mappings" in message
    assert metadata_posts(emulator) == {}


def test_missing_agent_field_needs_the_setting(emulator, base_config, tmp_path):
    emulator.seed("visitor", ["v-1"])
    spec = {"sync": "visitor", "agent_fields": {"nickname": "plan"}}
    lines = [
        schema("users", {"id": {"type": "string"}, "plan": {"type": "string"}}),
        record("users", {"id": "v-1", "plan": "Bo"}),
        state({"s": 1}),
    ]
    result = run_cli({**base_config, "streams": {"users": spec}}, lines, tmp_path)
    assert result.returncode == 1
    assert "agent field 'nickname'" in result.stderr
    assert "create_missing_fields" in result.stderr
    assert result.stdout.strip() == ""
    assert metadata_posts(emulator) == {}


CREATE_SCHEMA = {
    "id": {"type": "string"},
    "nick": {"type": ["string", "null"]},
    "plan": {"type": ["string", "null"]},
    "seats": {"type": ["integer", "null"]},
    "active": {"type": ["boolean", "null"]},
    "since": {"type": ["string", "null"], "format": "date-time"},
    "tags": {"type": ["array", "null"], "items": {"type": "string"}},
}
CREATE_SPEC = {
    "sync": "visitor",
    "agent_fields": {"nickName": "nick"},
    "custom_fields": {"planTier": "plan", "seats": "seats", "active": "active", "since": "since"},
    "create_missing_fields": True,
}


def test_create_missing_fields_through_the_schema_route_typed_from_the_columns(
    emulator, base_config, caplog
):
    caplog.set_level("INFO")
    emulator.seed("visitor", ["v-1"])
    row = {"id": "v-1", "nick": "Bo", "plan": "pro", "seats": 12, "active": True}
    row["since"] = "2024-01-01T00:00:00Z"
    lines = [schema("users", CREATE_SCHEMA), record("users", row)]
    _, target = run_target({**base_config, "streams": {"users": CREATE_SPEC}}, lines)
    schema_now = emulator.schema("visitor")
    assert schema_now["agent"]["nickname"]["Type"] == "string"
    assert schema_now["agent"]["nickname"]["DisplayName"] == "nickName"
    custom = schema_now["custom"]
    assert {k: custom[k]["Type"] for k in ("plantier", "seats", "active", "since")} == {
        "plantier": "string",
        "seats": "float",  # created as "number", which Pendo types as a float
        "active": "boolean",
        "since": "time",
    }
    assert emulator.objects("visitor")["v-1"] == {
        "agent": {"nickname": "Bo"},
        "custom": {"plantier": "pro", "seats": 12.0, "active": True, "since": 1704067200000},
    }
    counts = target.run_context.report.streams["users"]
    assert (counts.sent, counts.fields_created) == (1, 5)
    assert "created visitor agent field 'nickname' (string)" in caplog.text
    created = [r for r in emulator.received() if r["method"] == "POST" and "/schema/" in r["path"]]
    assert len(created) == 2  # one call per group


def test_an_agent_list_column_is_written_by_value_and_blocked_fields_are_warned_about(
    emulator, base_config, caplog
):
    emulator.seed("visitor", ["v-1"])
    emulator.set_switches(block_undefined_agent_fields=True)
    spec = {"sync": "visitor", "agent_fields": {"labels": "tags"}, "create_missing_fields": True}
    lines = [schema("users", CREATE_SCHEMA), record("users", {"id": "v-1", "tags": ["a", "b"]})]
    run_target({**base_config, "streams": {"users": spec}}, lines)
    assert "labels" not in emulator.schema("visitor").get("agent", {})
    assert "Block undefined agent metadata fields" in caplog.text
    assert "'labels'" in caplog.text


def test_an_agent_list_column_creates_its_field_by_writing_it(emulator, base_config):
    emulator.seed("visitor", ["v-1"])
    spec = {"sync": "visitor", "agent_fields": {"labels": "tags"}, "create_missing_fields": True}
    lines = [schema("users", CREATE_SCHEMA), record("users", {"id": "v-1", "tags": ["a", "b"]})]
    run_target({**base_config, "streams": {"users": spec}}, lines)
    assert emulator.schema("visitor")["agent"]["labels"]["Type"] == "list"
    assert emulator.objects("visitor")["v-1"]["agent"] == {"labels": ["a", "b"]}


def test_a_custom_field_no_pendo_type_can_hold_is_a_setup_error(emulator, base_config):
    spec = {"sync": "visitor", "custom_fields": {"labels": "tags"}, "create_missing_fields": True}
    with pytest.raises(StreamConfigError, match="column 'tags' holds arrays or objects"):
        run_target({**base_config, "streams": {"users": spec}}, [schema("users", CREATE_SCHEMA)])


def test_a_deleted_field_is_undeleted_by_create_missing_fields(emulator, base_config):
    emulator.seed("visitor", ["v-1"])
    emulator.seed("visitor", group="custom", fields={"plan": {"type": "string", "isDeleted": True}})
    spec = {"sync": "visitor", "custom_fields": {"plan": "plan"}, "create_missing_fields": True}
    lines = [schema("users", CREATE_SCHEMA), record("users", {"id": "v-1", "plan": "pro"})]
    run_target({**base_config, "streams": {"users": spec}}, lines)
    assert emulator.schema("visitor")["custom"]["plan"]["isDeleted"] is False
    assert emulator.objects("visitor")["v-1"]["custom"] == {"plan": "pro"}


def test_row_without_id_is_rejected_locally(emulator, base_config):
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", ["v-1"])
    props = {"id": {"type": ["string", "null"]}, "plan": {"type": "string"}}
    lines = [
        schema("users", props, key=["plan"]),
        record("users", {"id": None, "plan": "a"}),
        record("users", {"id": "v-1", "plan": "b"}),
    ]
    _, target = run_target({**base_config, "streams": {"users": {"sync": "visitor"}}}, lines)
    assert emulator.objects("visitor")["v-1"]["custom"] == {"plan": "b"}
    counts = target.run_context.report.streams["users"]
    assert (counts.sent, counts.rejected) == (1, 1)


def test_objects_need_the_integration_key(emulator, base_config):
    config = {**base_config, "integration_key": None, "streams": {"users": {"sync": "visitor"}}}
    with pytest.raises(PendoAuthError, match="integration_key"):
        run_target(config, [schema("users", {"id": {"type": "string"}})])


def test_wrong_integration_key_names_the_setting(emulator, base_config, tmp_path):
    config = {
        **base_config,
        "integration_key": "not-the-key-77",
        "streams": {"users": {"sync": "visitor"}},
    }
    lines = [schema("users", {"id": {"type": "string"}, "plan": {"type": "string"}})]
    result = run_cli(config, lines, tmp_path)
    assert result.returncode == 1
    assert "integration_key" in result.stderr
    assert "not-the-key-77" not in result.stderr
