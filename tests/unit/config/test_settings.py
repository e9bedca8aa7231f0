"""target_pendo.config: parse_stream_spec (event and object streams) and parse_settings."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest

from target_pendo.config import (
    REGION_HOSTS,
    REGION_TRACK_HOSTS,
    EventsSpec,
    ObjectsSpec,
    Settings,
    environment_config,
    is_valid_property_name,
    key_region_warnings,
    parse_settings,
    parse_stream_spec,
)
from target_pendo.errors import ConfigError, StreamConfigError

from ..helpers import objects_spec

# --- settings: stream specs -----------------------------------------------------------------


def _events(**extra) -> dict:
    return {"visitor_id_column": "user_id", "event_name": "Signed Up", **extra}


def test_parse_stream_spec_minimal_defaults():
    spec = parse_stream_spec("signups", _events())
    assert spec == EventsSpec(
        stream="signups",
        visitor_id_column="user_id",
        event_name="Signed Up",
    )
    assert spec.properties is None
    assert spec.context_columns == {}
    assert spec.used_columns() == {"user_id"}


def test_parse_stream_spec_full():
    spec = parse_stream_spec(
        "signups",
        {
            "sync": "events",
            "visitor_id_column": "user_id",
            "event_name_column": "event",
            "account_id_column": "account_id",
            "timestamp_column": "ts",
            "properties": {"plan": "plan-tier"},
            "context_columns": {"ip": "ip", "url": "page"},
        },
    )
    assert spec == EventsSpec(
        stream="signups",
        visitor_id_column="user_id",
        event_name=None,
        event_name_column="event",
        account_id_column="account_id",
        timestamp_column="ts",
        properties={"plan": "plan-tier"},
        context_columns={"ip": "ip", "url": "page"},
    )
    assert spec.used_columns() == {"user_id", "event", "account_id", "ts", "ip", "page"}


def _config_error(stream: str, raw: object) -> str:
    with pytest.raises(StreamConfigError) as info:
        parse_stream_spec(stream, raw)
    assert info.value.stream == stream
    message = str(info.value)
    assert message.startswith(f"stream '{stream}': ")
    return message


@pytest.mark.parametrize("visitor", [None, ""])
def test_missing_visitor_id_column(visitor):
    raw = {"event_name": "x"} if visitor is None else {"event_name": "x", "visitor_id_column": ""}
    assert "'visitor_id_column' is required" in _config_error("clicks", raw)


def test_visitor_id_column_must_be_a_string():
    assert "'visitor_id_column' must be a string" in _config_error(
        "clicks", {"event_name": "x", "visitor_id_column": 5}
    )


@pytest.mark.parametrize(
    "raw",
    [
        {"visitor_id_column": "u"},
        {"visitor_id_column": "u", "event_name": "", "event_name_column": ""},
        {"visitor_id_column": "u", "event_name": "x", "event_name_column": "e"},
    ],
)
def test_exactly_one_event_name_setting(raw):
    message = _config_error("clicks", raw)
    assert "exactly one of 'event_name'" in message
    assert "'event_name_column'" in message


@pytest.mark.parametrize("typo", ["visitor_id_colum", "eventname", "region"])
def test_unknown_key_names_stream_and_key(typo):
    message = _config_error("clicks", _events(**{typo: "x"}))
    assert f"'{typo}'" in message
    assert "unknown setting" in message


@pytest.mark.parametrize(
    "name",
    ["2fa", "plan-tier", "a" * 33, "", "café", "has space"],
)
def test_invalid_explicit_property_name_rejected(name):
    message = _config_error("clicks", _events(properties={name: "col"}))
    assert repr(name) in message
    assert "'properties'" in message


def test_valid_explicit_property_names_accepted():
    props = {"a" * 32: "c1", "_x": "c2", "Plan_2": "c3"}
    assert parse_stream_spec("s", _events(properties=props)).properties == props


def test_property_name_with_trailing_newline_is_invalid():
    assert not is_valid_property_name("plan\n")


def test_explicit_property_name_with_trailing_newline_rejected():
    _config_error("clicks", _events(properties={"plan\n": "col"}))


@pytest.mark.parametrize("name", ["__id__", "__", "___", "__a_b__"])
def test_names_both_starting_and_ending_with_two_underscores_are_invalid(name):
    assert not is_valid_property_name(name)
    with pytest.raises(StreamConfigError, match="__"):
        parse_stream_spec(
            "s", {"event_name": "E", "visitor_id_column": "u", "properties": {name: "c"}}
        )


@pytest.mark.parametrize(
    "value",
    [["a"], {"x": 1}, {"x": ""}, {1: "col"}, "col"],
)
def test_properties_must_map_names_to_columns(value):
    assert "'properties' must map names to column names" in _config_error(
        "clicks", _events(properties=value)
    )


def test_context_columns_keys_checked():
    message = _config_error("clicks", _events(context_columns={"ip": "ip", "referrer": "r"}))
    assert "'context_columns'" in message
    assert "'referrer'" in message


@pytest.mark.parametrize("sync", ["visitor", "account", "parent_account"])
def test_object_specs_refuse_event_keys(sync):
    message = _config_error("users", {"sync": sync, "visitor_id_column": "u"})
    assert "stream 'users'" in message
    assert "visitor_id_column" in message
    assert f"'{sync}' stream" in message


def test_unknown_sync_and_non_object_spec():
    assert "'sync' must be 'events'" in _config_error("s", {"sync": "metadata"})
    assert "must be an object" in _config_error("s", ["visitor_id_column"])


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


# --- settings: the whole config -------------------------------------------------------------


def test_parse_settings_defaults():
    settings = parse_settings({})
    assert settings == Settings(
        api_url="https://app.pendo.io",
        state_dir=".target-pendo",
        streams={},
        default_stream=None,
        unmapped_streams="fail",
        max_concurrency=64,
        max_requests_per_second=None,  # adaptive pacing, no ceiling
        request_timeout=20.0,
        max_retry_seconds=300.0,
        track_url="https://data.pendo.io",
    )
    assert settings.spec_for("anything") is None
    assert settings.configured_stream_names() == []


@pytest.mark.parametrize(
    ("region", "host", "track"),
    [
        ("us", "https://app.pendo.io", "https://data.pendo.io"),
        ("eu", "https://app.eu.pendo.io", "https://data.eu.pendo.io"),
        ("us1", "https://us1.app.pendo.io", "https://us1.data.pendo.io"),
        ("jpn", "https://app.jpn.pendo.io", "https://data.jpn.pendo.io"),
        ("au", "https://app.au.pendo.io", "https://data.au.pendo.io"),
        (None, "https://app.pendo.io", "https://data.pendo.io"),
        ("", "https://app.pendo.io", "https://data.pendo.io"),
    ],
)
def test_region_hosts(region, host, track):
    settings = parse_settings({"region": region})
    assert (settings.api_url, settings.track_url) == (host, track)


def test_region_table_is_exactly_the_documented_regions():
    assert sorted(REGION_HOSTS) == sorted(REGION_TRACK_HOSTS) == ["au", "eu", "jpn", "us", "us1"]


def test_track_url_overrides_the_track_host_only():
    settings = parse_settings({"region": "eu", "track_url": "https://app.eu.pendo.io/"})
    assert (settings.api_url, settings.track_url) == (
        "https://app.eu.pendo.io",
        "https://app.eu.pendo.io",
    )
    both = parse_settings({"api_url": "http://127.0.0.1:9", "track_url": "https://t.example"})
    assert (both.api_url, both.track_url) == ("http://127.0.0.1:9", "https://t.example")


@pytest.mark.parametrize("key", ["api_url", "track_url"])
@pytest.mark.parametrize(
    "url",
    ["http://app.pendo.io", "http://10.0.0.5:8080", "http://user:pw@proxy.example/"],
)
def test_keys_only_over_https_except_loopback(key, url):
    with pytest.raises(ConfigError) as info:
        parse_settings({key: url})
    message = str(info.value)
    assert f"'{key}'" in message
    assert "https://" in message
    assert "pw" not in message  # credentials in a URL are never shown


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:80", "http://127.9.9.9"]
)
def test_plain_http_to_loopback_is_allowed(url):
    assert parse_settings({"api_url": url}).api_url == url


@pytest.mark.parametrize(
    "url", ["http://", "https://", "http://127.0.0.1:99999", "http://127.0.0.1:x", "http://:80"]
)
def test_unusable_urls_are_refused_naming_the_setting(url):
    with pytest.raises(ConfigError, match="'api_url'"):
        parse_settings({"api_url": url})


def test_a_key_from_another_region_is_warned_about():
    settings = parse_settings({"region": "us", "integration_key": "abcd-1234.eu"})
    (warning,) = key_region_warnings(settings)
    assert "'integration_key'" in warning
    assert "'.eu'" in warning
    assert "abcd" not in warning
    assert key_region_warnings(parse_settings({"region": "eu", "integration_key": "x.eu"})) == []
    assert key_region_warnings(parse_settings({"integration_key": "no-suffix"})) == []
    emulator = parse_settings({"api_url": "http://127.0.0.1:1", "integration_key": "k.eu"})
    assert key_region_warnings(emulator) == []


@pytest.mark.parametrize("region", ["mars", "EU", "eu1"])
def test_bad_region(region):
    with pytest.raises(ConfigError) as info:
        parse_settings({"region": region})
    assert "'region'" in str(info.value)
    assert repr(region) in str(info.value)


def test_api_url_overrides_region():
    settings = parse_settings({"region": "eu", "api_url": "http://127.0.0.1:8080/"})
    assert settings.api_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("url", ["ftp://example.com", "app.pendo.io", 42])
def test_api_url_must_be_http(url):
    with pytest.raises(ConfigError, match="'api_url'"):
        parse_settings({"api_url": url})


def test_wildcard_applies_to_unlisted_streams():
    settings = parse_settings(
        {
            "streams": {
                "*": {"visitor_id_column": "uid", "event_name_column": "kind"},
                "orders": _events(),
            }
        }
    )
    assert settings.configured_stream_names() == ["orders", "*"]
    assert settings.spec_for("orders") == EventsSpec(
        stream="orders", visitor_id_column="user_id", event_name="Signed Up"
    )
    assert settings.spec_for("clicks") == EventsSpec(
        stream="clicks", visitor_id_column="uid", event_name_column="kind"
    )
    assert "*" not in settings.streams


def test_wildcard_spec_validated_up_front():
    with pytest.raises(StreamConfigError) as info:
        parse_settings({"streams": {"*": {"visitor_id_column": "uid"}}})
    assert info.value.stream == "*"


def test_parse_settings_bad_stream_names_stream():
    with pytest.raises(StreamConfigError) as info:
        parse_settings({"streams": {"orders": _events(visitor_id_colum="u")}})
    assert info.value.stream == "orders"
    assert "'visitor_id_colum'" in str(info.value)


def test_streams_must_be_an_object():
    with pytest.raises(ConfigError, match="'streams'"):
        parse_settings({"streams": ["orders"]})


def test_unmapped_streams_setting():
    assert parse_settings({"unmapped_streams": "skip"}).unmapped_streams == "skip"
    with pytest.raises(ConfigError, match="'unmapped_streams'"):
        parse_settings({"unmapped_streams": "ignore"})


@pytest.mark.parametrize("value", [-1, 0, -0.5, 2.5, True, "four", "2.5"])
def test_bad_max_concurrency(value):
    with pytest.raises(ConfigError, match="'max_concurrency'"):
        parse_settings({"max_concurrency": value})


def test_max_concurrency_whole_float_accepted():
    settings = parse_settings({"max_concurrency": 4.0})
    assert settings.max_concurrency == 4
    assert type(settings.max_concurrency) is int


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_requests_per_second", 1e-9),
        ("max_requests_per_second", 0.01),
        ("request_timeout", 0.01),
        ("request_timeout", 1e9),
        ("max_retry_seconds", 0.5),
        ("max_retry_seconds", 1e12),
        ("max_concurrency", 1000),
    ],
)
def test_numbers_that_make_the_run_impossible_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        parse_settings({key: value})


@pytest.mark.parametrize("key", ["max_requests_per_second", "request_timeout", "max_retry_seconds"])
@pytest.mark.parametrize("value", [0, -1, False, "ten", "-3", [1]])
def test_other_positive_numbers(key, value):
    if key == "max_requests_per_second" and value == 0:
        assert parse_settings({key: 0}).max_requests_per_second == 0  # 0: no client-side limit
        return
    with pytest.raises(ConfigError, match=f"'{key}'"):
        parse_settings({key: value})


@pytest.mark.parametrize("key", ["max_requests_per_second", "request_timeout", "max_retry_seconds"])
def test_numbers_as_the_sdk_reads_them(key):
    """Config files give decimals as Decimal and environment variables give text."""
    assert getattr(parse_settings({key: Decimal("2.5")}), key) == 2.5
    assert getattr(parse_settings({key: "10"}), key) == 10.0


def test_positive_numbers_accepted_and_secrets_kept():
    settings = parse_settings(
        {
            "max_requests_per_second": 2,
            "request_timeout": 1.5,
            "max_retry_seconds": None,
            "track_event_secret": "t",
            "integration_key": "",
            "state_dir": "/tmp/x",
        }
    )
    assert settings.max_requests_per_second == 2.0
    assert settings.request_timeout == 1.5
    assert settings.max_retry_seconds == 300.0
    assert settings.track_event_secret == "t"
    assert settings.integration_key is None
    assert settings.state_dir == "/tmp/x"
    assert "'t'" not in repr(settings)


def test_nan_request_timeout_rejected():
    with pytest.raises(ConfigError):
        parse_settings({"request_timeout": math.nan})


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_max_concurrency_is_a_config_error(value):
    with pytest.raises(ConfigError):
        parse_settings({"max_concurrency": value})


STREAMS_SCHEMA = {"properties": {"streams": {"type": ["object", "null"]}}}


def test_streams_flattened_as_meltano_hands_them_to_a_command_are_nested_again():
    # `meltano invoke target-pendo:check` runs `target-pendo --config=ENV check`: Meltano puts
    # the streams of meltano.yml in TARGET_PENDO_STREAMS flattened, a literal dot escaped
    flat = {
        "users.sync": "visitor",
        "users.agent_fields.email": "email",
        "events.event_name_column": "event",
        "events.context_columns.url": "page_url",
        "public\\.orders.event_name": "Order",
    }
    env = {"TARGET_PENDO_STREAMS": json.dumps(flat)}
    assert environment_config(STREAMS_SCHEMA, "TARGET_PENDO_", env)["streams"] == {
        "users": {"sync": "visitor", "agent_fields": {"email": "email"}},
        "events": {"event_name_column": "event", "context_columns": {"url": "page_url"}},
        "public.orders": {"event_name": "Order"},
    }


@pytest.mark.parametrize(
    "streams",
    [
        {"public.users": {"sync": "visitor"}},  # a spec per stream, a dot in its name
        {"users": {"sync": "visitor"}, "events": {}},
        {"a": "x", "a.b": "y"},  # not a flattened object: left for the spec check to refuse
    ],
)
def test_streams_given_nested_stay_as_they_are(streams):
    env = {"TARGET_PENDO_STREAMS": json.dumps(streams)}
    assert environment_config(STREAMS_SCHEMA, "TARGET_PENDO_", env)["streams"] == streams
