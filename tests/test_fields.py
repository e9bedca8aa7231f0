"""Pure unit tests for object syncs: value coercion, field plans, object specs, metadata answers.

No network, no SDK: `coerce`, `ObjectPlan`, `parse_stream_spec` and `MetadataAnswer.parse` are
exercised directly with hand-built inputs (a real `requests.Response` for the answers).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from target_pendo.coerce import COERCERS, CoercionError, coerce, coercer_for
from target_pendo.errors import ConfigError, StreamConfigError
from target_pendo.fields import FieldTarget, ObjectPlan, pendo_type_for
from target_pendo.mapping import RowRejected
from target_pendo.pendo.answers import MetadataAnswer, Verdict, reconcile
from target_pendo.pendo.api import MAX_TEXT_CHARS
from target_pendo.redact import Redactor
from target_pendo.settings import ObjectsSpec, parse_stream_spec

NAN = float("nan")
INF = float("inf")
JAN_1_2024_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
ALL_TYPES = ("string", "integer", "float", "boolean", "time", "list", "", None, "unknown")


def _coercion_message(field_type: str | None, value: Any) -> str:
    with pytest.raises(CoercionError) as info:
        coerce(field_type, value)
    return str(info.value)


# --- coerce: general ---------------------------------------------------------------------------


def test_coercion_error_is_a_value_error() -> None:
    assert issubclass(CoercionError, ValueError)
    with pytest.raises(ValueError, match=r"^is not a number$"):
        coerce("integer", "abc")


def test_every_pendo_type_has_its_own_coercer() -> None:
    assert set(COERCERS) == {"string", "integer", "float", "boolean", "time", "list"}
    for field_type, function in COERCERS.items():
        assert coercer_for(field_type) is function
    assert coercer_for("") is coercer_for(None) is coercer_for("unknown")
    assert coercer_for("") not in COERCERS.values()


@pytest.mark.parametrize("field_type", ALL_TYPES)
def test_none_stays_none_for_every_type(field_type: str | None) -> None:
    assert coerce(field_type, None) is None


# --- coerce: string ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("", ""),
        ("  padded  ", "  padded  "),
        ("ünïcödé ✓", "ünïcödé ✓"),
        (12, "12"),
        (-7, "-7"),
        (1.5, "1.5"),
        (3.0, "3.0"),
        (Decimal("1.50"), "1.5"),
        (Decimal("12"), "12"),
        (True, "true"),
        (False, "false"),
        (dt.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05Z"),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2024-01-02T03:04:05Z"),
        (
            dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-01-02T03:04:05+02:00",
        ),
        (dt.date(2024, 1, 2), "2024-01-02"),
        ("x" * (MAX_TEXT_CHARS - 1), "x" * 1499),
    ],
)
def test_string_accepts(value: Any, expected: str) -> None:
    result = coerce("string", value)
    assert type(result) is str
    assert result == expected


@pytest.mark.parametrize("value", [{"a": 1}, {}, [1, 2], [], (1,), {"a"}])
def test_string_rejects_structures(value: Any) -> None:
    assert _coercion_message("string", value) == "is a structure, not text"


def test_string_limit_is_1500_characters() -> None:
    assert MAX_TEXT_CHARS == 1500
    assert _coercion_message("string", "x" * 1500) == (
        "is 1500 characters; Pendo text fields hold under 1500"
    )
    assert _coercion_message("string", "é" * 2000) == (
        "is 2000 characters; Pendo text fields hold under 1500"
    )


def test_string_limit_applies_to_converted_numbers_too() -> None:
    big = 10 ** (MAX_TEXT_CHARS - 1)  # 1500 digits once written out
    assert "1500 characters" in _coercion_message("string", big)
    assert coerce("string", big // 10) == "1" + "0" * 1498


@pytest.mark.parametrize("value", [NAN, INF, Decimal("NaN")])
def test_string_never_writes_the_text_none_for_nan(value: Any) -> None:
    try:
        result = coerce("string", value)
    except CoercionError:
        return  # rejecting NaN is fine
    assert result != "None"


def test_string_rejects_frozenset_like_set() -> None:
    with pytest.raises(CoercionError, match="structure"):
        coerce("string", frozenset({"a"}))


# --- coerce: integer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        (0, 0),
        (-3, -3),
        (2**63 - 1, 2**63 - 1),
        (-(2**63), -(2**63)),
        (12.0, 12),
        (-0.0, 0),
        (Decimal("12"), 12),
        (Decimal("12.000"), 12),
        ("12", 12),
        (" 12 ", 12),
        ("\t-7\n", -7),
        ("+5", 5),
        ("12.0", 12),
        ("1e3", 1000),
        (str(2**63 - 1), 2**63 - 1),
    ],
)
def test_integer_accepts(value: Any, expected: int) -> None:
    result = coerce("integer", value)
    assert type(result) is int
    assert result == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "is not a whole number"),
        (Decimal("1.5"), "is not a whole number"),
        ("1.5", "is not a whole number"),
        (NAN, "is not a finite number"),
        (INF, "is not a finite number"),
        (-INF, "is not a finite number"),
        (Decimal("NaN"), "is not a finite number"),
        ("nan", "is not a finite number"),
        ("inf", "is not a finite number"),
        (2**63, "is too large for a Pendo integer (64-bit)"),
        (10**40, "is too large for a Pendo integer (64-bit)"),
        (str(10**40), "is too large for a Pendo integer (64-bit)"),
        ("1e999999999", "is too large for a Pendo integer (64-bit)"),
        ("abc", "is not a number"),
        ("", "is not a number"),
        ("   ", "is not a number"),
        ("1,000", "is not a number"),
        (True, "is a boolean, not an integer"),
        (False, "is a boolean, not an integer"),
        ([1], "is a list, not an integer"),
        ({"a": 1}, "is a dict, not an integer"),
        (dt.date(2024, 1, 1), "is a date, not an integer"),
    ],
)
def test_integer_rejects(value: Any, message: str) -> None:
    assert _coercion_message("integer", value) == message


def test_integer_signalling_nan_raises_coercion_error() -> None:
    with pytest.raises(ValueError) as info:
        coerce("integer", Decimal("sNaN"))
    assert isinstance(info.value, CoercionError)


# --- coerce: float -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),
        (0, 0.0),
        (2.5, 2.5),
        (-1e-9, -1e-9),
        (Decimal("2.5"), 2.5),
        (Decimal("10"), 10.0),
        ("2.5", 2.5),
        (" -1e3 ", -1000.0),
        ("7", 7.0),
        (".5", 0.5),
    ],
)
def test_float_accepts(value: Any, expected: float) -> None:
    result = coerce("float", value)
    assert type(result) is float
    assert result == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (NAN, "is not a finite number"),
        (INF, "is not a finite number"),
        (-INF, "is not a finite number"),
        (Decimal("NaN"), "is not a finite number"),
        (Decimal("Infinity"), "is not a finite number"),
        ("nan", "is not a finite number"),
        ("inf", "is not a finite number"),
        ("1e400", "is not a finite number"),
        (10**400, "is not a number"),
        ("abc", "is not a number"),
        ("", "is not a number"),
        ("1,5", "is not a number"),
        (True, "is a boolean, not a number"),
        (False, "is a boolean, not a number"),
        ([1.0], "is a list, not a number"),
        ({"a": 1.0}, "is a dict, not a number"),
    ],
)
def test_float_rejects(value: Any, message: str) -> None:
    assert _coercion_message("float", value) == message


# --- coerce: boolean ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        *((text, True) for text in ("true", "TRUE", "True", "t", "T", "yes", "YES", "Yes")),
        *((text, True) for text in ("y", "Y", "1", " yes ", "\ttrue\n")),
        *((text, False) for text in ("false", "FALSE", "False", "f", "F", "no", "NO", "No")),
        *((text, False) for text in ("n", "N", "0", " no ")),
    ],
)
def test_boolean_accepts(value: Any, expected: bool) -> None:
    assert coerce("boolean", value) is expected


@pytest.mark.parametrize(
    "value",
    [2, -1, 1.0, 0.0, Decimal("1"), "maybe", "", "on", "off", "2", "truthy", [True], {"a": 1}],
)
def test_boolean_rejects(value: Any) -> None:
    assert _coercion_message("boolean", value) == "is not a boolean (true/false, yes/no, 1/0)"


# --- coerce: time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 1, 1),
        dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.date(2024, 1, 1),
        1_704_067_200,
        1_704_067_200.0,
        JAN_1_2024_MS,
        Decimal("1704067200"),
        "1704067200",
        "1704067200000",
        "2024-01-01T00:00:00Z",
        "2024-01-01T02:00:00+02:00",
        "2024-01-01",
        " 2024-01-01T00:00:00 ",
    ],
)
def test_time_becomes_epoch_ms(value: Any) -> None:
    result = coerce("time", value)
    assert type(result) is int
    assert result == JAN_1_2024_MS


def test_time_keeps_milliseconds_from_fractional_seconds() -> None:
    assert coerce("time", 1_704_067_200.5) == JAN_1_2024_MS + 500
    assert coerce("time", "2024-01-01T00:00:00.250Z") == JAN_1_2024_MS + 250


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "",
        "2024-13-01",
        True,
        [JAN_1_2024_MS],
        {"t": 1},
        NAN,
        INF,
        dt.datetime(1960, 1, 1),
        -1,
    ],
)
def test_time_rejects(value: Any) -> None:
    message = _coercion_message("time", value)
    assert message.startswith("is not a date: ")
    assert repr(value) in message or type(value).__name__ in message


# --- coerce: list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1, "a"], [1, "a"]),
        ([], []),
        ((1, 2), [1, 2]),
        ({"a"}, ["a"]),
        (frozenset({3}), [3]),
        ('["a", 1]', ["a", 1]),
        ("  [true, null]", [True, None]),
        ("[]", []),
        ([Decimal("1.5"), Decimal("2"), NAN], [1.5, 2, None]),
        ([dt.date(2024, 1, 2), {"k": INF}], ["2024-01-02", {"k": None}]),
    ],
)
def test_list_accepts(value: Any, expected: list[Any]) -> None:
    result = coerce("list", value)
    assert type(result) is list
    assert result == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a,b", "is not a list"),
        ("", "is not a list"),
        ('{"a": 1}', "is not a list"),
        ("[1,", "is not a JSON list"),
        ("[a, b]", "is not a JSON list"),
        ({"a": 1}, "is not a list"),
        (5, "is not a list"),
        (True, "is not a list"),
    ],
)
def test_list_rejects(value: Any, message: str) -> None:
    assert _coercion_message("list", value) == message


# --- coerce: untyped and unknown fields --------------------------------------------------------


@pytest.mark.parametrize("field_type", ["", None, "unknown", "STRING"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (12, 12),
        (True, True),
        (1.5, 1.5),
        (NAN, None),
        (INF, None),
        (Decimal("2"), 2),
        (Decimal("2.5"), 2.5),
        (Decimal("NaN"), None),
        (dt.datetime(2024, 1, 1), "2024-01-01T00:00:00Z"),
        ({"a": INF, "b": [Decimal("1")]}, {"a": None, "b": [1]}),
        ((1, NAN), [1, None]),
    ],
)
def test_untyped_values_pass_through_json_safe(
    field_type: str | None, value: Any, expected: Any
) -> None:
    result = coerce(field_type, value)
    assert result == expected
    assert type(result) is type(expected)


# --- coerce: properties ------------------------------------------------------------------------


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
@example(0)
@example(-(2**63))
def test_integer_roundtrips_ints_and_their_text(x: int) -> None:
    assert coerce("integer", x) == x
    assert coerce("integer", str(x)) == x


@given(st.floats(allow_nan=False, allow_infinity=False))
@example(-0.0)
@example(5e-324)
@example(1.7976931348623157e308)
def test_float_keeps_finite_floats(f: float) -> None:
    result = coerce("float", f)
    assert type(result) is float
    assert result == f


@given(st.text(max_size=MAX_TEXT_CHARS - 1))
@example("")
@example("x" * (MAX_TEXT_CHARS - 1))
def test_string_keeps_text_under_the_limit(t: str) -> None:
    assert coerce("string", t) == t


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


def objects_spec(sync: str = "visitor", **raw: Any) -> ObjectsSpec:
    spec = parse_stream_spec("users", {"sync": sync, **raw})
    assert isinstance(spec, ObjectsSpec)
    return spec


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


# --- parse_stream_spec for object syncs --------------------------------------------------------


@pytest.mark.parametrize("sync", ["visitor", "account", "parent_account"])
def test_object_spec_defaults(sync: str) -> None:
    spec = parse_stream_spec("users", {"sync": sync})
    assert spec == ObjectsSpec(
        stream="users",
        sync=sync,
        id_column="id",
        custom_fields=None,
        agent_fields=None,
        create_missing_fields=False,
        batch_size=500,
    )
    assert spec.kind == {"visitor": "visitor", "account": "account"}.get(sync, "parentAccount")


def test_object_spec_full() -> None:
    raw = {
        "sync": "account",
        "id_column": "account_id",
        "custom_fields": {"planTier": "plan"},
        "agent_fields": {"name": "account_name"},
        "create_missing_fields": True,
        "batch_size": 10_000,
    }
    assert parse_stream_spec("accounts", raw) == ObjectsSpec(
        stream="accounts",
        sync="account",
        id_column="account_id",
        custom_fields={"planTier": "plan"},
        agent_fields={"name": "account_name"},
        create_missing_fields=True,
        batch_size=10_000,
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [({"id_column": ""}, "id"), ({"id_column": None}, "id")]
)
def test_object_spec_blank_id_column_falls_back_to_id(raw: dict[str, Any], expected: str) -> None:
    spec = objects_spec(**raw)
    assert spec.id_column == expected


def _spec_error(raw: dict[str, Any]) -> str:
    with pytest.raises(StreamConfigError) as info:
        parse_stream_spec("users", raw)
    assert isinstance(info.value, ConfigError)
    assert info.value.stream == "users"
    return str(info.value)


def test_object_spec_unknown_key_is_named() -> None:
    message = _spec_error({"sync": "visitor", "id_colum": "x"})
    assert message.startswith(
        "stream 'users': unknown setting(s) ['id_colum'] for a 'visitor' stream"
    )
    assert "'batch_size'" in message  # valid keys listed
    message = _spec_error({"sync": "account", "event_name": "x"})
    assert "unknown setting(s) ['event_name'] for a 'account' stream" in message


@pytest.mark.parametrize("batch_size", [0, -1, 10_001, 1.5, 500.0, True, False, "500", None])
def test_object_spec_bad_batch_size(batch_size: Any) -> None:
    assert _spec_error({"sync": "visitor", "batch_size": batch_size}) == (
        f"stream 'users': 'batch_size' must be a whole number from 1 to 10000, got {batch_size!r}"
    )


@pytest.mark.parametrize("batch_size", [1, 10_000])
def test_object_spec_batch_size_bounds(batch_size: int) -> None:
    assert objects_spec(batch_size=batch_size).batch_size == batch_size


@pytest.mark.parametrize("create", ["yes", "true", 1, 0, None])
def test_object_spec_create_missing_fields_must_be_a_bool(create: Any) -> None:
    assert _spec_error({"sync": "visitor", "create_missing_fields": create}) == (
        f"stream 'users': 'create_missing_fields' must be true or false, got {create!r}"
    )


@pytest.mark.parametrize("key", ["custom_fields", "agent_fields"])
@pytest.mark.parametrize("value", [{"plan": 5}, {"plan": ""}, {"plan": None}, ["plan"], "plan"])
def test_object_spec_field_maps_must_map_to_column_names(key: str, value: Any) -> None:
    assert _spec_error({"sync": "visitor", key: value}) == (
        f"stream 'users': '{key}' must map names to column names (strings), got {value!r}"
    )


def test_object_spec_id_column_must_be_text() -> None:
    assert _spec_error({"sync": "visitor", "id_column": 5}) == (
        "stream 'users': 'id_column' must be a string, got 5"
    )


def test_object_spec_unknown_sync() -> None:
    message = _spec_error({"sync": "visitors"})
    assert "'sync' must be 'events' or one of ['visitor', 'account', 'parent_account']" in message
    assert message.endswith("got 'visitors'")


# --- MetadataAnswer.parse and reconcile ---------------------------------------------------------


def parse(body: bytes, secrets: tuple[str, ...] = ()) -> MetadataAnswer | None:
    return MetadataAnswer.parse(body, Redactor(secrets))


def verdict(body: bytes, ids: list[str]) -> Verdict:
    answer = parse(body)
    assert answer is not None
    return reconcile(answer, ids)


def test_answer_with_missing_ids() -> None:
    answer = parse(b'{"total":2,"updated":1,"failed":1,"missing":["u-43"]}')
    assert answer == MetadataAnswer(2, 1, 1, frozenset({"u-43"}), ())
    assert verdict(b'{"total":2,"updated":1,"failed":1,"missing":["u-43"]}', ["u-42", "u-43"]) == (
        Verdict(confirmed=frozenset({"u-42"}), missing=frozenset({"u-43"}))
    )


def test_answer_missing_ids_become_text() -> None:
    answer = parse(b'{"updated":0,"missing":[42,"a-1"]}')
    assert answer is not None
    assert answer.missing == frozenset({"42", "a-1"})


def test_errors_as_dicts_are_tied_to_their_ids() -> None:
    body = (
        b'{"total":4,"updated":1,"failed":3,"errors":['
        b'{"id":"u-1","error":"field plan: not a string"},'
        b'{"visitorId":"u-2","message":"bad value"},'
        b'{"accountId":77,"error":"nope"}]}'
    )
    result = verdict(body, ["u-1", "u-2", "77", "u-4"])
    assert result.failed == {"u-1": "field plan: not a string", "u-2": "bad value", "77": "nope"}
    assert result.confirmed == frozenset({"u-4"})
    assert result.unresolved == ()


def test_errors_as_strings_with_the_id_are_tied() -> None:
    body = (
        b'{"total":3,"updated":2,"failed":1,"errors":["u-44: value for plantier is not a number"]}'
    )
    result = verdict(body, ["u-4", "u-44", "u-444"])
    assert result.failed == {"u-44": "u-44: value for plantier is not a number"}
    assert result.confirmed == frozenset({"u-4", "u-444"})


def test_an_id_inside_an_error_text_is_matched_as_a_whole_token() -> None:
    body = b'{"updated":2,"failed":1,"errors":["value for plan of visitor u-44 is too long"]}'
    result = verdict(body, ["u-4", "u-44", "u-444"])
    assert result.failed == {"u-44": "value for plan of visitor u-44 is too long"}


def test_untied_failures_leave_the_other_rows_unresolved() -> None:
    body = b'{"total":5,"updated":3,"failed":2,"errors":["boom","boom again"]}'
    result = verdict(body, ["a", "b", "c", "d", "e"])
    assert result.confirmed == frozenset()
    assert result.unresolved == ("a", "b", "c", "d", "e")
    assert result.untied == 2
    assert "boom" in result.untied_reason


def test_errors_absent_so_only_the_counts_tell() -> None:
    result = verdict(b'{"total":4,"updated":3,"failed":1,"missing":[]}', ["a", "b", "c", "d"])
    assert result.unresolved == ("a", "b", "c", "d")
    assert result.untied == 1
    assert "gave no reason" in result.untied_reason


def test_failed_beyond_missing_and_errors_is_untied() -> None:
    body = b'{"total":4,"updated":1,"failed":3,"missing":["a"],"errors":[{"id":"b","error":"x"}]}'
    result = verdict(body, ["a", "b", "c", "d"])
    assert result.missing == frozenset({"a"})
    assert result.failed == {"b": "x"}
    assert result.unresolved == ("c", "d")
    assert result.untied == 1


def test_when_every_unnamed_row_failed_no_bisecting_is_needed() -> None:
    result = verdict(b'{"total":3,"updated":0,"failed":3}', ["a", "b", "c"])
    assert result.unresolved == ()
    assert set(result.failed) == {"a", "b", "c"}


def test_updated_short_of_the_rows_is_untied_even_without_failed() -> None:
    result = verdict(b'{"updated":2}', ["a", "b", "c"])
    assert result.unresolved == ("a", "b", "c")
    assert result.untied == 1


def test_counts_that_explain_everything_confirm_the_rest() -> None:
    body = b'{"total":3,"updated":1,"failed":2,"missing":["a"],"errors":["b: no"]}'
    result = verdict(body, ["a", "b", "c"])
    assert result == Verdict(
        confirmed=frozenset({"c"}), missing=frozenset({"a"}), failed={"b": "b: no"}
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"<html>proxy says hello</html>",
        b"[1, 2]",
        b'"ok"',
        b"null",
        b"{}",
        b'{"total":3}',
        b'{"updated":null,"failed":null,"missing":[]}',
        b'{"updated":"n/a"}',
        b"[" * 10_000,
    ],
)
def test_a_body_that_is_not_pendos_answer_confirms_nothing(body: bytes) -> None:
    assert parse(body) is None


def test_answer_redacts_secrets_in_error_texts() -> None:
    body = (
        b'{"updated":0,"errors":['
        b'{"id":"u-1","error":"key supersecretkey rejected"},'
        b'"bad key supersecretkey, twice supersecretkey",'
        b'{"error":"no id, supersecretkey"},'
        b'{"id":"u-2","detail":"supersecretkey"}]}'
    )
    answer = parse(body, ("supersecretkey",))
    assert answer is not None
    assert "supersecretkey" not in repr(answer)
    assert ("u-1", "key *** rejected") in answer.errors


def test_redactor_masks_only_secrets_of_four_characters_or_more() -> None:
    redact = Redactor(["abc", "supersecretkey", None, ""])
    assert redact("abc supersecretkey") == "abc ***"
    assert redact("supersecretkey") == "***"


@pytest.mark.parametrize(("updated", "expected"), [(b"3", 3), (b'"3"', 3), (b"0", 0)])
def test_answer_updated_count(updated: bytes, expected: int) -> None:
    answer = parse(b'{"updated":' + updated + b"}")
    assert answer is not None
    assert answer.updated == expected
    assert type(answer.updated) is int


@given(
    n=st.integers(1, 40),
    data=st.data(),
)
def test_property_reconcile_never_confirms_a_failed_row(n: int, data: st.DataObject) -> None:
    ids = [f"id-{i}" for i in range(n)]
    failed = set(data.draw(st.lists(st.sampled_from(ids), unique=True)))
    missing = set(data.draw(st.lists(st.sampled_from(ids), unique=True))) - failed
    shown = set(data.draw(st.lists(st.sampled_from(sorted(failed) or ["-"]), unique=True)))
    shape = data.draw(st.sampled_from(["dict", "string", "anonymous", "absent"]))
    errors: list[object] = []
    for i in sorted(failed):
        if shape == "dict":
            errors.append({"visitorId": i, "error": "bad"} if i in shown else {"error": "bad"})
        elif shape == "string":
            errors.append(f"{i}: bad" if i in shown else "bad")
        elif shape == "anonymous":
            errors.append("bad")
    body = {
        "total": n,
        "updated": n - len(failed) - len(missing),
        "failed": len(failed) + len(missing),
        "missing": sorted(missing),
    }
    if shape != "absent":
        body["errors"] = errors
    result = verdict(json.dumps(body).encode(), ids)
    assert not result.confirmed & (failed | missing)
    assert result.missing == missing
    assert set(result.failed) <= failed
    assert failed <= set(result.failed) | set(result.unresolved)
    every = result.confirmed | result.missing | set(result.failed) | set(result.unresolved)
    assert every == set(ids)
