"""target_pendo.mapping.rows: to_epoch_ms, property names, JSON encoding, ids and EventPlan."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import string
import time
import uuid
from decimal import Decimal

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from target_pendo.config import EventsSpec, is_valid_property_name
from target_pendo.errors import StreamConfigError
from target_pendo.mapping.rows import (
    EventPlan,
    RowRejected,
    default_property_names,
    dumps,
    json_safe,
    sanitize_property_name,
    to_epoch_ms,
    to_id,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_MS = dt.timedelta(milliseconds=1)
# 10000-01-01T00:00:00Z in ms, computed here rather than imported.
END_MS = (dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC) - EPOCH) // ONE_MS + 1
STRICT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
PLUS2 = dt.timezone(dt.timedelta(hours=2))
MINUS5 = dt.timezone(dt.timedelta(hours=-5))

# 2024-01-02T03:04:05.678Z, worked out by hand: 2024-01-01T00:00Z is 1704067200 s,
# plus one day (86400 s) plus 3 h 4 min 5 s (11045 s), plus 678 ms.
REF_MS = 1_704_164_645_678
REF_DAY_MS = 1_704_153_600_000  # 2024-01-02T00:00:00Z


def _strict_loads(data: bytes) -> object:
    def no_constants(name: str) -> object:
        raise AssertionError(f"non-strict JSON constant {name} in output")

    return json.loads(data.decode("utf-8"), parse_constant=no_constants)


# --- to_epoch_ms: accepted values ------------------------------------------------------------


def test_reference_constants_are_consistent():
    assert END_MS == 253_402_300_800_000
    assert (dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC) - EPOCH) // ONE_MS == REF_MS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # datetimes
        (dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC), REF_MS),
        (dt.datetime(2024, 1, 2, 5, 4, 5, 678000, tzinfo=PLUS2), REF_MS),
        (dt.datetime(2024, 1, 1, 22, 4, 5, 678000, tzinfo=MINUS5), REF_MS),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 678000), REF_MS),  # naive = UTC
        (dt.datetime(1970, 1, 1), 0),
        (dt.datetime(1970, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))), 0),
        (dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC), END_MS - 1),
        # dates: midnight UTC
        (dt.date(2024, 1, 2), REF_DAY_MS),
        (dt.date(1970, 1, 1), 0),
        (dt.date(1970, 1, 2), 86_400_000),
        # epoch seconds (below 1e11) vs epoch milliseconds (at or above 1e11)
        (0, 0),
        (1_704_164_645, 1_704_164_645_000),
        (REF_MS, REF_MS),
        (99_999_999_999, 99_999_999_999_000),
        (100_000_000_000, 100_000_000_000),
        (1_704_164_645.678, REF_MS),
        (float(REF_MS), REF_MS),
        (1_704_164_645.6784, REF_MS),  # sub-ms part rounds to nearest
        (1_704_164_645.6786, REF_MS + 1),
        (Decimal("1704164645.678"), REF_MS),
        (Decimal(REF_MS), REF_MS),
        (Decimal("1.704164645678E+9"), REF_MS),
        # numeric strings
        ("1704164645", 1_704_164_645_000),
        ("  1704164645  ", 1_704_164_645_000),
        ("1704164645678", REF_MS),
        ("1704164645.678", REF_MS),
        ("+1704164645.678", REF_MS),
        ("1.704164645678e9", REF_MS),
        ("1.704164645678E12", REF_MS),
        ("0", 0),
        # ISO 8601 strings
        ("2024-01-02T03:04:05.678Z", REF_MS),
        ("2024-01-02T03:04:05.678+00:00", REF_MS),
        ("2024-01-02T05:04:05.678+02:00", REF_MS),
        ("2024-01-01T22:04:05.678-05:00", REF_MS),
        ("2024-01-02T03:04:05.678", REF_MS),  # naive = UTC
        ("2024-01-02 03:04:05.678Z", REF_MS),
        ("2024-01-02T03:04:05.678000Z", REF_MS),
        ("2024-01-02T03:04:05Z", REF_MS - 678),
        ("  2024-01-02T03:04:05.678Z\n", REF_MS),
        ("2024-01-02", REF_DAY_MS),
        ("1970-01-01T00:00:00Z", 0),
        ("9999-12-31T23:59:59.999Z", END_MS - 1),
    ],
)
def test_to_epoch_ms_exact_values(value, expected):
    result = to_epoch_ms(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        "",
        "   ",
        "not a date",
        "2024-13-01",
        "2024-01-02T25:00:00Z",
        "yesterday",
        "12:30",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e400",  # float('1e400') is inf
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        # before 1970
        -1,
        -1.5,
        "-1",
        "-1704164645",
        dt.date(1969, 12, 31),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999000),
        dt.datetime(1970, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "1969-12-31T23:59:59.999Z",
        "1969-12-31",
        # at or after 10000-01-01T00:00Z
        253_402_300_800_000,
        "9999-12-31T23:59:59.999-01:00",
        # not a timestamp type at all
        {},
        {"ts": 1},
        [REF_MS],
        (REF_MS,),
        b"1704164645",
        object(),
        dt.time(12, 30),
    ],
)
def test_to_epoch_ms_rejects(value):
    with pytest.raises(ValueError):
        to_epoch_ms(value)


@pytest.fixture
def local_tz_not_utc(monkeypatch):
    """Run with a process time zone 3 h east of UTC, so naive != local would show."""
    monkeypatch.setenv("TZ", "XYZ-03")
    time.tzset()
    assert time.timezone == -3 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_tz_not_utc")
def test_naive_values_are_utc_not_local_time():
    assert to_epoch_ms(dt.datetime(2024, 1, 2, 3, 4, 5, 678000)) == REF_MS
    assert to_epoch_ms("2024-01-02T03:04:05.678") == REF_MS
    assert to_epoch_ms(dt.date(2024, 1, 2)) == REF_DAY_MS
    assert to_epoch_ms("2024-01-02") == REF_DAY_MS
    assert dumps(dt.datetime(2024, 1, 2, 3, 4, 5)) == b'"2024-01-02T03:04:05Z"'


def test_to_epoch_ms_error_messages_name_the_problem():
    with pytest.raises(ValueError, match="not a timestamp"):
        to_epoch_ms(True)
    with pytest.raises(ValueError, match="ISO 8601"):
        to_epoch_ms("garbage")
    with pytest.raises(ValueError, match="1970-01-01"):
        to_epoch_ms(dt.date(1969, 1, 1))
    with pytest.raises(ValueError, match="dict"):
        to_epoch_ms({"a": 1})
    with pytest.raises(ValueError, match="finite"):
        to_epoch_ms(float("nan"))


def test_to_epoch_ms_huge_int_raises_value_error():
    with pytest.raises(ValueError):
        to_epoch_ms(10**400)


# --- to_epoch_ms: properties -------------------------------------------------------------------

_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
# Local wall times a day inside the range so that no offset can push UTC outside 1970..9999.
_AWARE_MS_DATETIMES = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(9999, 12, 30, 23, 59, 59, 999999),
    timezones=_OFFSETS,
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@given(moment=_AWARE_MS_DATETIMES)
@example(moment=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
@example(moment=dt.datetime(1973, 3, 3, 9, 46, 40, tzinfo=dt.UTC))  # exactly 1e11 ms
@example(moment=dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC))
@example(moment=dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=PLUS2))
def test_to_epoch_ms_agrees_across_representations(moment):
    expected = (moment - EPOCH) // ONE_MS  # exact integer arithmetic, no floats
    assert to_epoch_ms(moment) == expected
    assert to_epoch_ms(moment.isoformat()) == expected
    assert to_epoch_ms(moment.isoformat(timespec="milliseconds")) == expected
    assert to_epoch_ms(moment.astimezone(dt.UTC).replace(tzinfo=None)) == expected  # naive
    assert round(moment.timestamp() * 1000) == expected
    if expected >= 100_000_000_000:  # below 1e11 a bare number means seconds
        assert to_epoch_ms(expected) == expected
        assert to_epoch_ms(str(expected)) == expected
        assert to_epoch_ms(float(expected)) == expected
        assert to_epoch_ms(Decimal(expected)) == expected


@given(seconds=st.integers(min_value=0, max_value=99_999_999_999))
@example(seconds=0)
@example(seconds=99_999_999_999)
def test_epoch_seconds_become_milliseconds(seconds):
    expected = seconds * 1000
    assert to_epoch_ms(seconds) == expected
    assert to_epoch_ms(str(seconds)) == expected
    assert to_epoch_ms(EPOCH + dt.timedelta(seconds=seconds)) == expected


# --- property names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("plan-tier", "plan_tier"),
        ("plan tier", "plan_tier"),
        ("2fa_enabled", "_2fa_enabled"),
        ("a  b", "a_b"),
        ("a - . b", "a_b"),
        ("a_-b", "a__b"),
        ("Signup Date", "Signup_Date"),
        ("plan_tier", "plan_tier"),
        ("_private", "_private"),
        ("", "_"),
        ("   ", "_"),
        ("é", "_"),
        ("café", "caf_"),
        ("9", "_9"),
        ("-9", "_9"),
        ("x" * 32, "x" * 32),
        ("__id__", "id__"),
        ("__", "_"),
        ("____", "_"),
        ("__2__", "_2__"),
        ("__private", "__private"),
        ("trailing__", "trailing__"),
        ("--x--", "_x_"),
    ],
)
def test_sanitize_property_name_examples(column, expected):
    assert sanitize_property_name(column) == expected


def test_sanitize_property_name_long_name_gets_prefix_and_hash():
    column = "customer lifetime value in euros (rounded)"
    digest = hashlib.sha1(column.encode("utf-8")).hexdigest()[:8]
    assert sanitize_property_name(column) == "customer_lifetime_value_" + digest
    assert len(sanitize_property_name(column)) == 32
    # 33 valid characters is already too long
    assert (
        sanitize_property_name("y" * 33) == "y" * 23 + "_" + hashlib.sha1(b"y" * 33).hexdigest()[:8]
    )


@given(column=st.text())
@example(column="")
@example(column="0" * 100)
@example(column="ß" * 50)
@example(column="a\n")
def test_sanitize_property_name_always_valid_and_deterministic(column):
    name = sanitize_property_name(column)
    assert is_valid_property_name(name)
    assert STRICT_NAME.fullmatch(name)  # settings' own check has a `$` quirk (test_settings.py)
    assert sanitize_property_name(column) == name
    assert sanitize_property_name(name) == name  # idempotent


@given(name=st.from_regex(STRICT_NAME, fullmatch=True))
def test_sanitize_keeps_valid_names(name):
    assume(not (name.startswith("__") and name.endswith("__")))
    assert is_valid_property_name(name)
    assert sanitize_property_name(name) == name


@given(
    prefix=st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=40, max_size=40),
    suffixes=st.lists(st.text(), min_size=2, max_size=2, unique=True),
)
def test_long_names_sharing_a_prefix_stay_distinct(prefix, suffixes):
    first, second = (sanitize_property_name(prefix + s) for s in suffixes)
    assert first != second
    assert len(first) == len(second) == 32
    assert first[:24] == second[:24]


def test_sanitize_long_name_with_lone_surrogate():
    assert STRICT_NAME.fullmatch(sanitize_property_name("a" * 40 + "\ud800"))


def test_default_property_names_maps_name_to_column():
    assert default_property_names("s", ["plan-tier", "2fa", "ok"]) == {
        "plan_tier": "plan-tier",
        "_2fa": "2fa",
        "ok": "ok",
    }
    assert default_property_names("s", []) == {}


def test_default_property_names_collision_is_a_config_error():
    with pytest.raises(StreamConfigError) as info:
        default_property_names("orders", ["id", "plan-tier", "plan tier"])
    message = str(info.value)
    assert info.value.stream == "orders"
    assert "stream 'orders'" in message
    assert "'plan-tier'" in message
    assert "'plan tier'" in message
    assert "'plan_tier'" in message
    assert "'properties'" in message


# --- JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 1, 2, 3, 4, 5), '"2024-01-02T03:04:05Z"'),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 678000), '"2024-01-02T03:04:05.678000Z"'),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), '"2024-01-02T03:04:05Z"'),
        (dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=PLUS2), '"2024-01-02T05:04:05+02:00"'),
        (dt.date(2024, 1, 2), '"2024-01-02"'),
        (dt.time(3, 4, 5), '"03:04:05"'),
        (Decimal("42"), "42"),
        (Decimal("42.000"), "42"),
        (Decimal("-0"), "0"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1.5"), "1.5"),
        (Decimal("-0.25"), "-0.25"),
        (Decimal("NaN"), "null"),
        (Decimal("sNaN"), "null"),
        (Decimal("Infinity"), "null"),
        (Decimal("-Infinity"), "null"),
        (float("nan"), "null"),
        (float("inf"), "null"),
        (float("-inf"), "null"),
        (1.5, "1.5"),
        (
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
            '"12345678-1234-5678-1234-567812345678"',
        ),
        (b"\x00\xffhi", '"AP9oaQ=="'),
        (bytearray(b"hi"), '"aGk="'),
        (memoryview(b"hi"), '"aGk="'),
        (frozenset({7}), "[7]"),
        ((1, "a"), '[1,"a"]'),
        ({"a": {"b": [1, {"c": None}]}}, '{"a":{"b":[1,{"c":null}]}}'),
        ({"name": "café"}, '{"name":"café"}'),
        ({1: True}, '{"1":true}'),
    ],
)
def test_dumps_exact(value, expected):
    data = dumps(value)
    assert isinstance(data, bytes)
    assert data == expected.encode("utf-8")
    _strict_loads(data)


def test_dumps_nan_nested_in_dicts_and_lists_becomes_null():
    nan, inf = float("nan"), float("inf")
    value = {
        "a": [1.0, nan, {"b": inf, "c": [-inf, 2]}],
        "d": {"e": {"f": nan}},
        "when": dt.datetime(2024, 1, 2, 3, 4, 5),
        "amount": Decimal("2.50"),
        "count": Decimal("3"),
        "bad": Decimal("NaN"),
        "tags": {"x"},
        "raw": b"hi",
        "pair": (nan, 1),
    }
    assert _strict_loads(dumps(value)) == {
        "a": [1.0, None, {"b": None, "c": [None, 2]}],
        "d": {"e": {"f": None}},
        "when": "2024-01-02T03:04:05Z",
        "amount": 2.5,
        "count": 3,
        "bad": None,
        "tags": ["x"],
        "raw": "aGk=",
        "pair": [None, 1],
    }


def test_dumps_same_output_with_or_without_a_nan_elsewhere():
    """The NaN fallback path must encode everything else exactly like the fast path."""
    base = {
        "when": dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
        "local": dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=PLUS2),
        "day": dt.date(2024, 1, 2),
        "n": Decimal("10"),
        "f": Decimal("0.5"),
        "id": uuid.UUID(int=1),
        "raw": b"\x01",
        "nested": {"list": [1, "two", None, True]},
    }
    fast = _strict_loads(dumps(base))
    slow = _strict_loads(dumps({**base, "zz": float("nan")}))
    assert slow == {**fast, "zz": None}


def test_dumps_set_becomes_list_of_its_members():
    assert sorted(_strict_loads(dumps({3, 1, 2}))) == [1, 2, 3]
    assert sorted(_strict_loads(dumps({"s": {1.0, float("inf")}}))["s"], key=str) == [1.0, None]


def test_json_safe_returns_plain_values():
    nan = float("nan")
    result = json_safe(
        {
            "d": Decimal("1.5"),
            "i": Decimal("7"),
            "n": nan,
            1: (1, 2),
            "s": frozenset({"only"}),
            "t": dt.datetime(2024, 1, 2),
            "b": True,
            "u": uuid.UUID(int=0),
        }
    )
    assert result == {
        "d": 1.5,
        "i": 7,
        "n": None,
        "1": [1, 2],
        "s": ["only"],
        "t": "2024-01-02T00:00:00Z",
        "b": True,
        "u": "00000000-0000-0000-0000-000000000000",
    }
    assert type(result["i"]) is int
    assert result["b"] is True
    assert json_safe([nan, [float("-inf")], "x"]) == [None, [None], "x"]
    assert json_safe(None) is None
    assert json_safe(b"hi") == base64.b64encode(b"hi").decode("ascii")


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.datetimes()
    | st.dates()
    | st.binary()
    | st.uuids()
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(value=_JSON_VALUES)
def test_dumps_is_always_strict_json(value):
    decoded = _strict_loads(dumps(value))
    assert decoded == _strict_loads(dumps(json_safe(value)))


# --- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("42", "42"),
        (" padded ", " padded "),
        (42, "42"),
        (0, "0"),
        (-7, "-7"),
        (10**20, "100000000000000000000"),
        (42.0, "42"),
        (-3.0, "-3"),
        (Decimal("42"), "42"),
        (Decimal("42.00"), "42"),
    ],
)
def test_to_id_accepts(value, expected):
    assert to_id(value, "user_id") == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "missing or null"),
        ("", "empty"),
        ("   ", "empty"),
        ("\t\n", "empty"),
        (True, "boolean"),
        (False, "boolean"),
        (1.5, "string or an integer"),
        (float("nan"), "string or an integer"),
        (float("inf"), "string or an integer"),
        (Decimal("0.5"), "string or an integer"),
        ({"id": 1}, "string or an integer"),
        ([1], "string or an integer"),
    ],
)
def test_to_id_rejects(value, words):
    with pytest.raises(RowRejected) as info:
        to_id(value, "user_id")
    assert info.value.field == "user_id"
    assert "'user_id'" in info.value.reason
    assert words in info.value.reason
    assert str(info.value) == info.value.reason


# --- EventPlan ------------------------------------------------------------------------------

COLUMNS = [
    "user_id",
    "account_id",
    "ts",
    "event",
    "ip",
    "agent",
    "plan-tier",
    "Signup Date",
    "_sdc_batched_at",
    "_sdc_deleted_at",
    "2fa_enabled",
]


def _spec(**overrides) -> EventsSpec:
    fields = {
        "stream": "signups",
        "visitor_id_column": "user_id",
        "event_name_column": "event",
        "account_id_column": "account_id",
        "timestamp_column": "ts",
        "context_columns": {"ip": "ip", "userAgent": "agent"},
    }
    fields.update(overrides)
    return EventsSpec(**fields)


def _row(**overrides) -> dict:
    row = {
        "user_id": 42,
        "account_id": "acme",
        "ts": "2024-01-02T03:04:05.678Z",
        "event": "Signed Up",
        "ip": "10.0.0.1",
        "agent": "curl/8",
        "plan-tier": "gold",
        "Signup Date": dt.date(2024, 1, 1),
        "_sdc_batched_at": "2024-01-03T00:00:00Z",
        "_sdc_deleted_at": None,
        "2fa_enabled": True,
    }
    row.update(overrides)
    return row


def test_build_default_properties_skip_used_and_singer_columns():
    plan = EventPlan.build(_spec(), COLUMNS)
    assert plan.stream == "signups"
    assert plan.visitor_column == "user_id"
    assert plan.account_column == "account_id"
    assert plan.timestamp_column == "ts"
    assert plan.event_name is None
    assert plan.event_name_column == "event"
    assert plan.properties == (
        ("plan_tier", "plan-tier"),
        ("Signup_Date", "Signup Date"),
        ("_2fa_enabled", "2fa_enabled"),
    )
    assert plan.context == (("ip", "ip"), ("userAgent", "agent"))


def test_track_body_full_row():
    plan = EventPlan.build(_spec(), COLUMNS)
    body = plan.track_body(_row(), now_ms=1)
    assert body == {
        "type": "track",
        "event": "Signed Up",
        "visitorId": "42",
        "accountId": "acme",
        "timestamp": REF_MS,
        "properties": {
            "plan_tier": "gold",
            "Signup_Date": dt.date(2024, 1, 1),
            "_2fa_enabled": True,
        },
        "context": {"ip": "10.0.0.1", "userAgent": "curl/8"},
    }
    assert _strict_loads(dumps(body))["properties"]["Signup_Date"] == "2024-01-01"


def test_track_body_static_event_name_and_now_ms():
    spec = _spec(
        event_name="Page Viewed",
        event_name_column=None,
        timestamp_column=None,
        account_id_column=None,
        context_columns={},
    )
    plan = EventPlan.build(spec, ["user_id", "event", "ts", "n"])
    # event and ts are not used by this spec, so they become properties
    assert plan.properties == (("event", "event"), ("ts", "ts"), ("n", "n"))
    body = plan.track_body({"user_id": "u1", "event": "x", "ts": "garbage", "n": 3}, now_ms=123)
    assert body == {
        "type": "track",
        "event": "Page Viewed",
        "visitorId": "u1",
        "timestamp": 123,
        "properties": {"event": "x", "ts": "garbage", "n": 3},
        "context": {},
    }


def test_track_body_event_name_column_value_is_text():
    plan = EventPlan.build(_spec(), COLUMNS)
    assert plan.track_body(_row(event=7), now_ms=0)["event"] == "7"


@pytest.mark.parametrize("account", [None, ""])
def test_track_body_omits_account_when_null(account):
    plan = EventPlan.build(_spec(), COLUMNS)
    body = plan.track_body(_row(account_id=account), now_ms=0)
    assert "accountId" not in body
    assert body["visitorId"] == "42"
    row = _row()
    del row["account_id"]
    assert "accountId" not in plan.track_body(row, now_ms=0)


def test_track_body_integer_account_becomes_text():
    plan = EventPlan.build(_spec(), COLUMNS)
    assert plan.track_body(_row(account_id=9), now_ms=0)["accountId"] == "9"


def test_track_body_context_skips_nulls_and_stringifies():
    plan = EventPlan.build(_spec(), COLUMNS)
    body = plan.track_body(_row(ip=None, agent=5), now_ms=0)
    assert body["context"] == {"userAgent": "5"}


def test_track_body_timestamp_forms():
    plan = EventPlan.build(_spec(), COLUMNS)
    assert plan.track_body(_row(ts=1_704_164_645), now_ms=0)["timestamp"] == 1_704_164_645_000
    assert plan.track_body(_row(ts=REF_MS), now_ms=0)["timestamp"] == REF_MS
    assert plan.track_body(_row(ts=dt.date(2024, 1, 2)), now_ms=0)["timestamp"] == REF_DAY_MS
    assert plan.track_body(_row(ts="2024-01-02T05:04:05.678+02:00"), 0)["timestamp"] == REF_MS


def test_build_explicit_properties_used_as_given():
    spec = _spec(properties={"plan": "plan-tier", "when": "ts", "sdc": "_sdc_batched_at"})
    plan = EventPlan.build(spec, COLUMNS)
    assert plan.properties == (("plan", "plan-tier"), ("when", "ts"), ("sdc", "_sdc_batched_at"))
    body = plan.track_body(_row(), now_ms=0)
    assert body["properties"] == {
        "plan": "gold",
        "when": "2024-01-02T03:04:05.678Z",
        "sdc": "2024-01-03T00:00:00Z",
    }
    empty = EventPlan.build(_spec(properties={}), COLUMNS)
    assert empty.properties == ()
    assert empty.track_body(_row(), now_ms=0)["properties"] == {}


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"visitor_id_column": "nope"}, "visitor_id_column"),
        ({"account_id_column": "nope"}, "account_id_column"),
        ({"timestamp_column": "nope"}, "timestamp_column"),
        ({"event_name_column": "nope"}, "event_name_column"),
        ({"context_columns": {"url": "nope"}}, "context_columns.url"),
        ({"properties": {"plan": "nope"}}, "properties.plan"),
    ],
)
def test_build_missing_column_is_a_config_error(overrides, setting):
    with pytest.raises(StreamConfigError) as info:
        EventPlan.build(_spec(**overrides), COLUMNS)
    message = str(info.value)
    assert info.value.stream == "signups"
    assert message.startswith("stream 'signups': ")
    assert f"{setting} names column 'nope'" in message
    assert "not in the stream's schema" in message


def test_build_default_property_collision_is_a_config_error():
    spec = _spec(context_columns={})
    with pytest.raises(StreamConfigError) as info:
        EventPlan.build(spec, [*COLUMNS, "plan tier"])
    assert "'plan-tier'" in str(info.value)
    assert "'plan tier'" in str(info.value)
    # explicit properties sidestep the collision
    plan = EventPlan.build(_spec(properties={"a": "plan tier"}), [*COLUMNS, "plan tier"])
    assert plan.properties == (("a", "plan tier"),)


@pytest.mark.parametrize("visitor", [None, "", "  ", True, 1.5, {"id": 1}])
def test_track_body_rejects_bad_visitor(visitor):
    plan = EventPlan.build(_spec(), COLUMNS)
    with pytest.raises(RowRejected) as info:
        plan.track_body(_row(user_id=visitor), now_ms=0)
    assert info.value.field == "user_id"
    assert "'user_id'" in info.value.reason


def test_track_body_rejects_missing_visitor_key():
    plan = EventPlan.build(_spec(), COLUMNS)
    row = _row()
    del row["user_id"]
    with pytest.raises(RowRejected) as info:
        plan.track_body(row, now_ms=0)
    assert info.value.field == "user_id"
    assert info.value.reason == "'user_id' is missing or null"


@pytest.mark.parametrize("name", [None, "", "   "])
def test_track_body_rejects_empty_event_name(name):
    plan = EventPlan.build(_spec(), COLUMNS)
    with pytest.raises(RowRejected) as info:
        plan.track_body(_row(event=name), now_ms=0)
    assert info.value.field == "event"
    assert info.value.reason == "event name column 'event' is empty"


@pytest.mark.parametrize("ts", ["garbage", None, "", True, -5, "1969-12-31", {"t": 1}])
def test_track_body_rejects_bad_timestamp(ts):
    plan = EventPlan.build(_spec(), COLUMNS)
    with pytest.raises(RowRejected) as info:
        plan.track_body(_row(ts=ts), now_ms=0)
    assert info.value.field == "ts"
    assert info.value.reason.startswith("timestamp column 'ts': ")
    # the message shows the value as the row had it, not a parsed form
    assert repr(ts) in info.value.reason


def test_track_body_rejects_bad_account_id():
    plan = EventPlan.build(_spec(), COLUMNS)
    with pytest.raises(RowRejected) as info:
        plan.track_body(_row(account_id=2.5), now_ms=0)
    assert info.value.field == "account_id"


def test_track_body_huge_integer_timestamp_is_rejected():
    plan = EventPlan.build(_spec(), COLUMNS)
    with pytest.raises(RowRejected) as info:
        plan.track_body(_row(ts=10**400), now_ms=0)
    assert info.value.field == "ts"
