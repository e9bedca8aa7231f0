"""target_pendo.mapping.fields: ObjectPlan (configured names matched against Pendo's field
schema, rows coerced to field values) and pendo_type_for."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from target_pendo.errors import StreamConfigError
from target_pendo.mapping.fields import FieldTarget, ObjectPlan, pendo_type_for
from target_pendo.mapping.rows import RowRejected

from ..helpers import INF, JAN_1_2024_MS, NAN, objects_spec

# --- ObjectPlan --------------------------------------------------------------------------------

# Revision 1's lowercase shape; SCHEMA below is the same in Pendo's capitalised shape.
SCHEMA_LOWERCASE: dict[str, dict[str, dict[str, Any]]] = {
    "agent": {
        "email": {"type": "string", "displayName": "email", "isDeleted": False},
        "seats": {"type": "integer"},
        "plantier": {"type": "string"},
        "oldfield": {"type": "string", "isDeleted": True},
    },
    "custom": {
        "plantier": {
            "type": "string",
            "displayName": "planTier",
            "isHidden": False,
            "isDeleted": False,
        },
        "mrr": {"type": "float"},
        "active": {"type": "boolean"},
        "renewal": {"type": "time"},
        "tags": {"type": "list"},
        "notes": {"type": ""},
        "legacy": {"type": "integer", "isDeleted": True},
    },
}


def capitalised(schema: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Pendo's shape: `Type`, `DisplayName`, ... capitalised, the `is...` flags camelCase."""
    big = {"type": "Type", "displayName": "DisplayName"}
    return {
        group: {
            name: {big.get(k, k): v for k, v in attrs.items()} for name, attrs in fields.items()
        }
        for group, fields in schema.items()
    }


SCHEMA = {
    **capitalised(SCHEMA_LOWERCASE),
    "auto": {"lastvisit": {"Type": "time", "isCalculated": True}},
    "pendo": {"donotprocess": {"Type": "boolean"}},
}
COLUMNS = [
    "id",
    "email_col",
    "seats_col",
    "plan_col",
    "mrr",
    "active",
    "renewal",
    "tags",
    "notes",
    "_sdc_batched_at",
    "_sdc_deleted_at",
]


def build(columns: list[str] | None = None, schema: Any = None, **raw: Any) -> ObjectPlan:
    return ObjectPlan.build(
        objects_spec(**raw),
        COLUMNS if columns is None else columns,
        SCHEMA if schema is None else schema,
    )


def summary(plan: ObjectPlan) -> list[tuple[str, str, str, str | None]]:
    return [(t.group, t.key, t.column, t.type) for t in plan.targets]


def config_error(columns: list[str] | None = None, schema: Any = None, **raw: Any) -> str:
    with pytest.raises(StreamConfigError) as info:
        build(columns, schema, **raw)
    assert info.value.stream == "users"
    message = str(info.value)
    assert message.startswith("stream 'users': ")
    return message


def test_configured_names_match_case_insensitively_and_write_lowercase_keys() -> None:
    plan = build(
        custom_fields={"planTier": "plan_col", "MRR": "mrr"},
        agent_fields={"EMAIL": "email_col"},
    )
    assert summary(plan) == [
        ("agent", "email", "email_col", "string"),
        ("custom", "plantier", "plan_col", "string"),
        ("custom", "mrr", "mrr", "float"),
    ]
    row = {"id": "u-1", "email_col": "a@b.c", "plan_col": "pro", "mrr": "99.5"}
    assert plan.row_values(row) == (
        "u-1",
        {"agent": {"email": "a@b.c"}, "custom": {"plantier": "pro", "mrr": 99.5}},
    )


def test_schema_keys_in_mixed_case_still_match_and_the_key_written_is_lowercase() -> None:
    schema = {"custom": {"PlanTier": {"type": "string"}}}
    plan = build(schema=schema, custom_fields={"PLANTIER": "plan_col"})
    assert summary(plan) == [("custom", "plantier", "plan_col", "string")]
    assert plan.row_values({"id": "u-1", "plan_col": "pro"}) == (
        "u-1",
        {"custom": {"plantier": "pro"}},
    )


def test_default_mapping_sends_every_column_but_id_and_sdc_as_custom_fields() -> None:
    columns = ["id", "PlanTier", "mrr", "_sdc_batched_at", "_sdc_extracted_at", "active"]
    plan = build(columns)
    assert summary(plan) == [
        ("custom", "plantier", "PlanTier", "string"),
        ("custom", "mrr", "mrr", "float"),
        ("custom", "active", "active", "boolean"),
    ]
    assert plan.groups == ("custom",)
    assert plan.new_agent_fields == []
    row = {"id": "u-9", "PlanTier": "pro", "mrr": 3, "active": "yes", "_sdc_batched_at": "x"}
    assert plan.row_values(row) == (
        "u-9",
        {"custom": {"plantier": "pro", "mrr": 3.0, "active": True}},
    )


def test_default_mapping_leaves_out_a_custom_id_column() -> None:
    plan = build(["user_id", "mrr"], id_column="user_id")
    assert summary(plan) == [("custom", "mrr", "mrr", "float")]
    assert plan.id_column == "user_id"


def test_default_mapping_of_unknown_column_is_a_missing_custom_field() -> None:
    message = config_error(["id", "mrr", "favourite_colour"], create_missing_fields=True)
    assert "custom field 'favourite_colour' does not exist in Pendo's visitor fields" in message
    assert "Settings > Data Mappings" in message


def test_default_mapping_with_only_id_and_sdc_columns_maps_nothing() -> None:
    assert (
        config_error(["id", "_sdc_batched_at"]) == "stream 'users': maps no columns to Pendo fields"
    )


def test_empty_field_maps_map_nothing() -> None:
    assert config_error(agent_fields={}) == "stream 'users': maps no columns to Pendo fields"
    assert config_error(agent_fields={}, custom_fields={}) == (
        "stream 'users': maps no columns to Pendo fields"
    )


def test_only_agent_fields_given_means_no_default_custom_fields() -> None:
    plan = build(agent_fields={"email": "email_col"})
    assert summary(plan) == [("agent", "email", "email_col", "string")]
    assert plan.groups == ("agent",)


def test_missing_custom_field_points_to_data_mappings_and_the_setting() -> None:
    message = config_error(custom_fields={"noSuch": "mrr"})
    assert message == (
        "stream 'users': custom field 'nosuch' does not exist in Pendo's visitor fields; "
        "create it in Pendo (Settings > Data Mappings), set 'create_missing_fields': true to "
        "have target-pendo create it, or fix the name in 'custom_fields'"
    )


def test_missing_custom_field_pendo_did_not_create_is_an_error() -> None:
    message = config_error(custom_fields={"noSuch": "mrr"}, create_missing_fields=True)
    assert message == (
        "stream 'users': custom field 'nosuch' does not exist in Pendo's visitor fields and "
        "Pendo did not create it through its schema route; create it in Pendo under "
        "Settings > Data Mappings"
    )


def test_both_schema_shapes_give_the_same_plan() -> None:
    fields = {"custom_fields": {"planTier": "plan_col", "mrr": "mrr", "renewal": "renewal"}}
    assert summary(build(schema=SCHEMA, **fields)) == summary(
        build(schema=SCHEMA_LOWERCASE, **fields)
    )
    assert [t.type for t in build(schema=SCHEMA, **fields).targets] == ["string", "float", "time"]


@pytest.mark.parametrize(
    ("answered", "read_as", "raw", "sent"),
    [("date", "time", "2024-01-01T00:00:00Z", JAN_1_2024_MS), ("number", "float", "12.5", 12.5)],
)
def test_type_aliases_behave_as_their_type(answered: str, read_as: str, raw: str, sent) -> None:
    schema = {"custom": {"when": {"Type": answered}}}
    plan = build(schema=schema, custom_fields={"when": "renewal"})
    assert plan.targets[0].type == read_as
    assert plan.row_values({"id": "u", "renewal": raw})[1] == {"custom": {"when": sent}}


def test_capitalised_type_wins_over_lowercase() -> None:
    schema = {"custom": {"mrr": {"Type": "float", "type": "string"}}}
    assert build(schema=schema, custom_fields={"mrr": "mrr"}).targets[0].type == "float"


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ({"type": ["string", "null"]}, "string"),
        ({"type": "string", "format": "date-time"}, "time"),
        ({"type": ["null", "string"], "format": "date"}, "time"),
        ({"type": ["integer", "null"]}, "number"),
        ({"type": "number"}, "number"),
        ({"type": ["integer", "number"]}, "number"),
        ({"type": ["boolean", "null"]}, "boolean"),
        ({"type": ["array", "null"]}, None),
        ({"type": "object"}, None),
        ({"type": ["string", "integer"]}, "string"),
        ({}, "string"),
    ],
)
def test_pendo_type_for_a_column(column: dict[str, Any], expected: str | None) -> None:
    assert pendo_type_for(column) == expected


@pytest.mark.parametrize("create", [False, True])
def test_deleted_custom_field_counts_as_missing(create: bool) -> None:
    message = config_error(custom_fields={"legacy": "mrr"}, create_missing_fields=create)
    assert "custom field 'legacy' does not exist" in message
    assert "Settings > Data Mappings" in message


def test_missing_custom_field_when_the_schema_has_no_custom_group() -> None:
    message = config_error(schema={"agent": SCHEMA["agent"]}, custom_fields={"mrr": "mrr"})
    assert "custom field 'mrr' does not exist" in message


def test_missing_agent_field_without_create_names_field_and_setting() -> None:
    message = config_error(agent_fields={"nickName": "notes"})
    assert message == (
        "stream 'users': agent field 'nickname' does not exist in Pendo's visitor fields; "
        "create it in Pendo (Settings > Data Mappings), set 'create_missing_fields': true to "
        "have target-pendo create it, or fix the name in 'agent_fields'"
    )


def test_deleted_agent_field_counts_as_missing() -> None:
    message = config_error(agent_fields={"oldField": "notes"})
    assert "agent field 'oldfield' does not exist" in message
    assert "create_missing_fields" in message
    plan = build(agent_fields={"oldField": "notes"}, create_missing_fields=True)
    assert summary(plan) == [("agent", "oldfield", "notes", None)]


def test_missing_agent_field_with_create_becomes_a_new_untyped_field() -> None:
    plan = build(
        agent_fields={"nickName": "notes", "email": "email_col", "Score": "mrr"},
        create_missing_fields=True,
    )
    assert summary(plan) == [
        ("agent", "nickname", "notes", None),
        ("agent", "email", "email_col", "string"),
        ("agent", "score", "mrr", None),
    ]
    assert plan.new_agent_fields == ["nickname", "score"]
    new = plan.targets[0]
    assert isinstance(new, FieldTarget)
    assert new.type is None
    row = {"id": 7, "notes": {"a": NAN, "b": Decimal("2.50")}, "email_col": 5, "mrr": Decimal("3")}
    assert plan.row_values(row) == (
        "7",
        {"agent": {"nickname": {"a": None, "b": 2.5}, "email": "5", "score": 3}},
    )
    assert plan.row_values({"id": "u", "mrr": NAN, "notes": [1, INF]})[1]["agent"] == {
        "nickname": [1, None],
        "score": None,
    }


def test_field_with_empty_type_is_known_but_untyped() -> None:
    plan = build(custom_fields={"notes": "notes"})
    assert summary(plan) == [("custom", "notes", "notes", "")]
    assert plan.new_agent_fields == []
    assert plan.row_values({"id": "u", "notes": Decimal("4")}) == ("u", {"custom": {"notes": 4}})


def test_id_column_missing_from_schema() -> None:
    message = config_error(id_column="user_id")
    assert message.startswith(
        "stream 'users': id_column names column 'user_id', which is not in the stream's schema"
    )


def test_field_column_missing_from_schema() -> None:
    message = config_error(custom_fields={"planTier": "plan"})
    assert message.startswith(
        "stream 'users': custom_fields.planTier names column 'plan', which is not in the "
        "stream's schema"
    )
    message = config_error(agent_fields={"email": "mail"}, create_missing_fields=True)
    assert "agent_fields.email names column 'mail'" in message


def test_two_columns_writing_one_field_by_case_is_an_error() -> None:
    message = config_error(custom_fields={"planTier": "plan_col", "PLANTIER": "notes"})
    assert message == (
        "stream 'users': columns 'plan_col' and 'notes' both write custom field 'plantier' "
        "(Pendo field names ignore case)"
    )


def test_default_mapping_with_two_columns_differing_by_case_is_an_error() -> None:
    message = config_error(["id", "mrr", "MRR"])
    assert "columns 'mrr' and 'MRR' both write custom field 'mrr'" in message


def test_same_key_in_agent_and_custom_groups_is_allowed() -> None:
    plan = build(agent_fields={"plantier": "plan_col"}, custom_fields={"planTier": "plan_col"})
    assert summary(plan) == [
        ("agent", "plantier", "plan_col", "string"),
        ("custom", "plantier", "plan_col", "string"),
    ]
    assert plan.groups == ("agent", "custom")
    assert plan.row_values({"id": "u", "plan_col": "pro"}) == (
        "u",
        {"agent": {"plantier": "pro"}, "custom": {"plantier": "pro"}},
    )


@pytest.mark.parametrize(
    ("sync", "kind", "id_key"),
    [
        ("visitor", "visitor", "visitorId"),
        ("account", "account", "accountId"),
        ("parent_account", "parentAccount", "accountId"),
    ],
)
def test_plan_kind_and_id_key(sync: str, kind: str, id_key: str) -> None:
    plan = build(sync=sync, custom_fields={"mrr": "mrr"})
    assert plan.stream == "users"
    assert plan.kind == kind
    assert plan.id_key == id_key
    message = config_error(sync=sync, custom_fields={"nope": "mrr"})
    assert f"does not exist in Pendo's {kind} fields" in message


def test_row_values_coerces_every_type() -> None:
    plan = build(
        agent_fields={"seats": "seats_col"},
        custom_fields={
            "planTier": "plan_col",
            "mrr": "mrr",
            "active": "active",
            "renewal": "renewal",
            "tags": "tags",
        },
    )
    row = {
        "id": "acct-1",
        "seats_col": "12",
        "plan_col": 42,
        "mrr": Decimal("10.25"),
        "active": "No",
        "renewal": "2024-01-01",
        "tags": '["a", 1]',
        "unmapped": "ignored",
    }
    assert plan.row_values(row) == (
        "acct-1",
        {
            "agent": {"seats": 12},
            "custom": {
                "plantier": "42",
                "mrr": 10.25,
                "active": False,
                "renewal": JAN_1_2024_MS,
                "tags": ["a", 1],
            },
        },
    )


@pytest.mark.parametrize(("raw_id", "expected"), [(42, "42"), ("u-42", "u-42"), (42.0, "42")])
def test_row_values_id_is_text(raw_id: Any, expected: str) -> None:
    plan = build(custom_fields={"mrr": "mrr"})
    object_id, values = plan.row_values({"id": raw_id, "mrr": 1})
    assert object_id == expected
    assert type(object_id) is str
    assert values == {"custom": {"mrr": 1.0}}


@pytest.mark.parametrize("row", [{"id": None, "mrr": 1}, {"mrr": 1}, {"id": " ", "mrr": 1}])
def test_row_values_without_id_is_rejected_on_the_id_column(row: dict[str, Any]) -> None:
    plan = build(custom_fields={"mrr": "mrr"})
    with pytest.raises(RowRejected) as info:
        plan.row_values(row)
    assert info.value.field == "id"
    assert "'id'" in info.value.reason


def test_row_values_rejects_on_a_custom_id_column() -> None:
    plan = build(["user_id", "mrr"], id_column="user_id", custom_fields={"mrr": "mrr"})
    with pytest.raises(RowRejected) as info:
        plan.row_values({"user_id": None, "mrr": 1})
    assert info.value.field == "user_id"
    assert info.value.reason == "'user_id' is missing or null"
    with pytest.raises(RowRejected) as info:
        plan.row_values({"user_id": True, "mrr": 1})
    assert info.value.field == "user_id"


def test_uncoercible_value_rejects_the_row_naming_column_value_and_field() -> None:
    plan = build(agent_fields={"seats": "seats_col"}, custom_fields={"mrr": "mrr"})
    with pytest.raises(RowRejected) as info:
        plan.row_values({"id": "u-1", "seats_col": "lots", "mrr": 1})
    assert info.value.field == "seats_col"
    assert info.value.reason == (
        "column 'seats_col' value 'lots' is not a number, so it cannot go into agent field "
        "'seats' (integer)"
    )
    assert str(info.value) == info.value.reason
    with pytest.raises(RowRejected) as info:
        plan.row_values({"id": "u-1", "seats_col": 1, "mrr": NAN})
    assert info.value.field == "mrr"
    assert info.value.reason == (
        "column 'mrr' value nan is not a finite number, so it cannot go into custom field "
        "'mrr' (float)"
    )


def test_uncoercible_value_message_uses_repr_of_structures() -> None:
    plan = build(custom_fields={"planTier": "plan_col"})
    with pytest.raises(RowRejected) as info:
        plan.row_values({"id": "u-1", "plan_col": {"k": "v"}})
    assert info.value.field == "plan_col"
    assert "value {'k': 'v'} is a structure, not text" in info.value.reason
    assert "custom field 'plantier' (string)" in info.value.reason


def test_none_values_clear_the_field() -> None:
    plan = build(
        agent_fields={"seats": "seats_col", "new": "notes"},
        custom_fields={"active": "active", "renewal": "renewal"},
        create_missing_fields=True,
    )
    row = {"id": "u", "seats_col": None, "notes": None, "active": None, "renewal": None}
    assert plan.row_values(row) == (
        "u",
        {"agent": {"seats": None, "new": None}, "custom": {"active": None, "renewal": None}},
    )


def test_column_absent_from_the_row_leaves_the_field_alone() -> None:
    plan = build(custom_fields={"mrr": "mrr", "active": "active"})
    assert plan.row_values({"id": "u", "mrr": 2}) == ("u", {"custom": {"mrr": 2.0}})
    assert plan.row_values({"id": "u", "mrr": 2, "active": None}) == (
        "u",
        {"custom": {"mrr": 2.0, "active": None}},
    )


@pytest.mark.parametrize(
    ("raw", "groups"),
    [
        ({"custom_fields": {"mrr": "mrr"}}, ("custom",)),
        ({"agent_fields": {"email": "email_col"}}, ("agent",)),
        ({"agent_fields": {"email": "email_col"}, "custom_fields": {}}, ("agent",)),
        (
            {"custom_fields": {"mrr": "mrr"}, "agent_fields": {"email": "email_col"}},
            ("agent", "custom"),
        ),
    ],
)
def test_groups_lists_only_groups_with_fields(raw: dict[str, Any], groups: tuple[str, ...]) -> None:
    assert build(**raw).groups == groups


def test_plan_is_immutable() -> None:
    plan = build(custom_fields={"mrr": "mrr"})
    with pytest.raises(AttributeError):
        plan.kind = "account"  # type: ignore[misc]


def test_the_deleted_column_is_not_sent_by_the_default_mapping():
    """With neither agent_fields nor custom_fields, every column goes to a custom field of its
    name, but the id, the _sdc_ columns and the soft-delete flag."""
    schema = {"custom": {"plan": {"Type": "string"}, "is_deleted": {"Type": "boolean"}}}
    plan = build(
        ["id", "plan", "is_deleted"], schema, delete_behavior="clear", deleted_column="is_deleted"
    )
    assert [t.column for t in plan.targets] == ["plan"]
    assert [t.column for t in build(["id", "plan", "is_deleted"], schema).targets] == [
        "plan",
        "is_deleted",
    ]
