"""target_pendo.mapping.coerce: each Pendo field type's coercer, what it accepts and rejects."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from target_pendo.mapping.coerce import COERCERS, CoercionError, coerce, coercer_for
from target_pendo.pendo.api import MAX_TEXT_CHARS

from ..helpers import INF, JAN_1_2024_MS, NAN

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
