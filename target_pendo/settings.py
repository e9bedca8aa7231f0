"""Typed settings: the whole config is checked once, before any data is read.

The JSON schema the SDK shows (`--about`) lives in ``target.py``; this module turns the raw
config into frozen dataclasses and says, in one message, what is wrong with a spec. Unknown
keys are errors, not ignored: a typo such as `visitor_id_colum` would otherwise silently send
every row to the rejects file.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from target_pendo.errors import ConfigError, StreamConfigError
from target_pendo.pendo.inflight import DEFAULT_CEILING
from target_pendo.redact import shown_url

REGION_HOSTS: dict[str, str] = {
    "us": "https://app.pendo.io",
    "eu": "https://app.eu.pendo.io",
    "us1": "https://us1.app.pendo.io",
    "jpn": "https://app.jpn.pendo.io",
    "au": "https://app.au.pendo.io",
}
# Recent Pendo material and most integrations post Track events to the `data.*` hosts.
REGION_TRACK_HOSTS: dict[str, str] = {
    "us": "https://data.pendo.io",
    "eu": "https://data.eu.pendo.io",
    "us1": "https://us1.data.pendo.io",
    "jpn": "https://data.jpn.pendo.io",
    "au": "https://data.au.pendo.io",
}
# Settings whose numbers would make a run impossible or hang: (low, high), inclusive.
REQUEST_TIMEOUT_RANGE = (0.1, 600.0)
MAX_RETRY_SECONDS_RANGE = (1.0, 86_400.0)
MIN_REQUESTS_PER_SECOND = 0.1  # below this one call takes minutes: surely a typo
MAX_CONCURRENCY = 512
LEDGER_WAIT_RANGE = (0.0, 86_400.0)
RETRY_PENDING_DAYS_RANGE = (0.0, 3650.0)
RETENTION_DAYS_RANGE = (0.0, 36_500.0)

CONTEXT_KEYS = ("ip", "userAgent", "url", "title")
WILDCARD_STREAM = "*"
OBJECT_SYNCS = ("visitor", "account", "parent_account")

_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")

_EVENT_KEYS = {
    "sync",
    "primary_key_column",
    "event_name",
    "event_name_column",
    "visitor_id_column",
    "account_id_column",
    "timestamp_column",
    "properties",
    "context_columns",
}


def is_valid_property_name(name: str) -> bool:
    """Pendo's rule: letters, digits and `_`, at most 32 characters, no leading digit, and not
    both starting and ending with `__`."""
    return bool(_PROPERTY_NAME.fullmatch(name)) and not (
        name.startswith("__") and name.endswith("__")
    )


@dataclass(frozen=True)
class EventsSpec:
    """How one Singer stream becomes Pendo Track events."""

    stream: str
    visitor_id_column: str
    event_name: str | None = None
    event_name_column: str | None = None
    account_id_column: str | None = None
    timestamp_column: str | None = None
    properties: Mapping[str, str] | None = None
    context_columns: Mapping[str, str] = field(default_factory=dict)
    primary_key_column: str | None = None  # else the stream's key properties

    def used_columns(self) -> set[str]:
        """Columns consumed by the event itself, so not copied into default properties."""
        cols = {self.visitor_id_column}
        for col in (self.event_name_column, self.account_id_column, self.timestamp_column):
            if col:
                cols.add(col)
        cols.update(self.context_columns.values())
        return cols


_OBJECT_KEYS = {
    "sync",
    "id_column",
    "custom_fields",
    "agent_fields",
    "create_missing_fields",
    "batch_size",
    "delete_behavior",
    "null_values",
    "deleted_column",
}
DELETE_BEHAVIORS = ("nothing", "clear", "delete")
NULL_VALUES = ("clear", "skip")  # what a null in the warehouse does to the Pendo field
# Our `sync` names -> Pendo's metadata kinds.
PENDO_KINDS = {"visitor": "visitor", "account": "account", "parent_account": "parentAccount"}
MAX_METADATA_BATCH = 10_000


@dataclass(frozen=True)
class ObjectsSpec:
    """How one Singer stream updates existing Pendo visitors, accounts or parent accounts."""

    stream: str
    sync: str  # visitor | account | parent_account
    id_column: str = "id"
    custom_fields: Mapping[str, str] | None = None  # Pendo field -> column
    agent_fields: Mapping[str, str] | None = None
    create_missing_fields: bool = False
    batch_size: int = 500
    delete_behavior: str = "nothing"
    null_values: str = "clear"
    # a soft-delete column of the model: a row whose value is set (not null, not false) left
    # the source, as one with `_sdc_deleted_at` (a log-based tap's) does
    deleted_column: str | None = None

    @property
    def kind(self) -> str:
        return PENDO_KINDS[self.sync]


StreamSpec = EventsSpec | ObjectsSpec


@dataclass(frozen=True)
class Settings:
    """Run-wide settings, resolved from the raw config."""

    api_url: str
    state_dir: str
    streams: Mapping[str, StreamSpec]
    default_stream: Mapping[str, Any] | None
    unmapped_streams: Literal["fail", "skip"]
    max_concurrency: int
    max_requests_per_second: float | None  # a ceiling for adaptive pacing; 0: no pacing
    request_timeout: float
    max_retry_seconds: float
    ledger_url: str | None = field(default=None, repr=False)
    full_resync: bool = False
    max_delete_fraction: float = 0.2
    max_rejected_fraction: float = 0.05
    dry_run: bool = False
    call_log: bool = False
    rejects_include_values: bool = True  # False: key, field and masked reason only
    track_event_secret: str | None = field(default=None, repr=False)
    integration_key: str | None = field(default=None, repr=False)
    track_url: str = ""  # the Track host; parse_settings always sets it
    ledger_wait_seconds: float = 90.0
    retry_pending_days: float = 30.0  # 0: rows Pendo could not take are not retried
    retention_days: float = 30.0  # 0: the runs' history is kept for ever
    region: str = "us"
    api_url_set: bool = False  # 'api_url' given: the region's hosts are not used
    alert_webhook_url: str | None = field(default=None, repr=False)  # a secret: see alert.py

    def spec_for(self, stream: str) -> StreamSpec | None:
        """The stream's own spec, else the `*` default applied to it, else None."""
        spec = self.streams.get(stream)
        if spec is None and self.default_stream is not None:
            spec = parse_stream_spec(stream, self.default_stream)
        return spec

    def configured_stream_names(self) -> list[str]:
        names = sorted(self.streams)
        if self.default_stream is not None:
            names.append(WILDCARD_STREAM)
        return names


def _opt_str(stream: str, raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise StreamConfigError(stream, f"'{key}' must be a string, got {value!r}")
    return value


def _str_map(stream: str, raw: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise StreamConfigError(
            stream, f"'{key}' must map names to column names (strings), got {value!r}"
        )
    return dict(value)


def _refuse_unknown_keys(stream: str, raw: Mapping[str, Any], allowed: set[str], kind: str) -> None:
    """A typo such as `visitor_id_colum` must not silently fall back to a default."""
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise StreamConfigError(
            stream,
            f"unknown setting(s) {unknown} for {kind} stream; valid ones are {sorted(allowed)}",
        )


def _parse_events_spec(stream: str, raw: Mapping[str, Any]) -> EventsSpec:
    _refuse_unknown_keys(stream, raw, _EVENT_KEYS, "an events")
    visitor_col = _opt_str(stream, raw, "visitor_id_column")
    if not visitor_col:
        raise StreamConfigError(
            stream, "'visitor_id_column' is required for an events stream (Pendo needs a visitor)"
        )
    event_name = _opt_str(stream, raw, "event_name")
    event_col = _opt_str(stream, raw, "event_name_column")
    if bool(event_name) == bool(event_col):
        raise StreamConfigError(
            stream, "set exactly one of 'event_name' (a fixed name) or 'event_name_column'"
        )
    properties = _str_map(stream, raw, "properties")
    if properties is not None:
        bad = [name for name in properties if not is_valid_property_name(name)]
        if bad:
            raise StreamConfigError(
                stream,
                f"property name(s) {bad} in 'properties' break Pendo's rule (letters, digits "
                "and '_', at most 32 characters, not starting with a digit, not both starting "
                "and ending with '__'); rename them",
            )
    context = _str_map(stream, raw, "context_columns") or {}
    bad_ctx = sorted(set(context) - set(CONTEXT_KEYS))
    if bad_ctx:
        raise StreamConfigError(
            stream,
            f"'context_columns' keys {bad_ctx} are not Pendo context fields {list(CONTEXT_KEYS)}",
        )
    return EventsSpec(
        stream=stream,
        visitor_id_column=visitor_col,
        event_name=event_name,
        event_name_column=event_col,
        account_id_column=_opt_str(stream, raw, "account_id_column"),
        timestamp_column=_opt_str(stream, raw, "timestamp_column"),
        properties=properties,
        context_columns=context,
        primary_key_column=_opt_str(stream, raw, "primary_key_column"),
    )


def _parse_objects_spec(stream: str, sync: str, raw: Mapping[str, Any]) -> ObjectsSpec:
    _refuse_unknown_keys(stream, raw, _OBJECT_KEYS, f"a '{sync}'")
    create = raw.get("create_missing_fields", False)
    if not isinstance(create, bool):
        raise StreamConfigError(
            stream, f"'create_missing_fields' must be true or false, got {create!r}"
        )
    batch_size = raw.get("batch_size", 500)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_METADATA_BATCH
    ):
        raise StreamConfigError(
            stream,
            f"'batch_size' must be a whole number from 1 to {MAX_METADATA_BATCH}, "
            f"got {batch_size!r}",
        )
    delete_behavior = raw.get("delete_behavior") or "nothing"
    if delete_behavior not in DELETE_BEHAVIORS:
        raise StreamConfigError(
            stream,
            f"'delete_behavior' must be one of {list(DELETE_BEHAVIORS)}, got {delete_behavior!r}",
        )
    if delete_behavior == "delete" and sync == "parent_account":
        raise StreamConfigError(
            stream,
            "'delete_behavior': 'delete' is not possible for parent accounts: Pendo has no "
            "delete for them; use 'clear' or 'nothing'",
        )
    null_values = raw.get("null_values") or "clear"
    if null_values not in NULL_VALUES:
        raise StreamConfigError(
            stream, f"'null_values' must be one of {list(NULL_VALUES)}, got {null_values!r}"
        )
    deleted_column = _opt_str(stream, raw, "deleted_column")
    if deleted_column is not None and delete_behavior == "nothing":
        raise StreamConfigError(
            stream,
            f"'deleted_column' ({deleted_column!r}) says which rows left the source, but "
            "'delete_behavior' is 'nothing': set it to 'clear' or 'delete'",
        )
    return ObjectsSpec(
        stream=stream,
        sync=sync,
        delete_behavior=delete_behavior,
        null_values=null_values,
        deleted_column=deleted_column,
        id_column=_opt_str(stream, raw, "id_column") or "id",
        custom_fields=_str_map(stream, raw, "custom_fields"),
        agent_fields=_str_map(stream, raw, "agent_fields"),
        create_missing_fields=create,
        batch_size=batch_size,
    )


def parse_stream_spec(stream: str, raw: Any) -> StreamSpec:
    """Parse one entry of `streams`; every problem is reported with the stream's name."""
    if not isinstance(raw, Mapping):
        raise StreamConfigError(stream, f"the spec must be an object, got {raw!r}")
    sync = raw.get("sync", "events")
    if sync == "events":
        return _parse_events_spec(stream, raw)
    if sync in OBJECT_SYNCS:
        return _parse_objects_spec(stream, sync, raw)
    raise StreamConfigError(
        stream, f"'sync' must be 'events' or one of {list(OBJECT_SYNCS)}, got {sync!r}"
    )


def _number(config: Mapping[str, Any], key: str, default: float, rule: str) -> float:
    """A finite number from the config. The SDK reads config files with decimals as Decimal
    and environment variables as text, so both are accepted."""
    value = config.get(key)
    if value is None:
        return default
    number: float | None = None
    if isinstance(value, int | float | Decimal | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = None
    if number is None or not math.isfinite(number):
        raise ConfigError(f"setting '{key}' must be {rule}, got {value!r}")
    return number


def _in_range(config: Mapping[str, Any], key: str, low: float, high: float) -> float:
    """The setting (its default when unset), refused outside [low, high]."""
    rule = f"a number from {low:g} to {high:g}"
    number = _number(config, key, DEFAULTS[key], rule)
    if not low <= number <= high:
        raise ConfigError(f"setting '{key}' must be {rule}, got {config.get(key)!r}")
    return number


def _fraction(config: Mapping[str, Any], key: str) -> float:
    number = _number(config, key, DEFAULTS[key], "a number from 0 to 1")
    if not 0 <= number <= 1:
        raise ConfigError(f"setting '{key}' must be a number from 0 to 1, got {config.get(key)!r}")
    return number


def _flag(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key)
    if value is None:
        return bool(DEFAULTS.get(key, False))
    if not isinstance(value, bool):
        raise ConfigError(f"setting '{key}' must be true or false, got {value!r}")
    return value


# --- settings that arrive as text ---------------------------------------------------------
# Environment variables are text, and Meltano hands text over for a setting whose kind is
# `string`: its `decimal` kind cannot be used, because Meltano 4 turns such a value from the
# environment into a Decimal and then fails to write the plugin's config file ("Object of type
# Decimal is not JSON serializable"). So every typed setting is also read from text, strictly:
# a typo stops the run naming the setting, instead of becoming 0 or false.
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
# Each setting's default: parse_settings reads it here and settings_schema.py writes it into the
# JSON schema, from which `--about`, the Meltano plugin definition and README's settings table
# are generated (tests keep those in step).
DEFAULTS: dict[str, Any] = {
    "region": "us",
    "state_dir": ".target-pendo",
    # long enough for a PostgreSQL lease of a container that vanished to free itself (about
    # 50 s of TCP keepalives) and for a previous run to finish its last batch; short enough
    # that an overlapping scheduled run fails with a clear message instead of holding a worker
    "ledger_wait_seconds": 90,
    "retry_pending_days": 30,
    "retention_days": 30,
    "full_resync": False,
    "max_delete_fraction": 0.2,
    "max_rejected_fraction": 0.05,
    "dry_run": False,
    "call_log": False,
    "rejects_include_values": True,
    "unmapped_streams": "fail",
    "max_concurrency": DEFAULT_CEILING,
    "request_timeout": 20,
    "max_retry_seconds": 300,
    "add_record_metadata": False,
    "load_method": "append-only",
}


# SDK built-in settings that mean nothing here; any value but their default is refused.
INERT_SDK_SETTINGS: dict[str, tuple[Any, str]] = {
    "load_method": (
        DEFAULTS["load_method"],
        "target-pendo has one way to load: events are sent once by their key and objects "
        "update the Pendo visitors and accounts that exist, by id; nothing is overwritten, "
        "truncated or created. Remove the setting (or set it to 'append-only')",
    ),
    "add_record_metadata": (
        DEFAULTS["add_record_metadata"],
        "Pendo is never sent the SDK's _sdc_ metadata columns (deletes read _sdc_deleted_at "
        "on their own). Remove the setting (or set it to false)",
    ),
}


def schema_types(prop: Mapping[str, Any]) -> set[str]:
    """The JSON types a settings schema entry allows, 'null' left out."""
    declared = prop.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    for option in prop.get("anyOf", []):
        types |= schema_types(option)
    return types - {"null"}


def setting_from_text(key: str, prop: Mapping[str, Any], text: str, source: str) -> Any:
    """One setting's value from text (an environment variable, or what Meltano wrote), typed
    as its schema says. Empty text is no value (the default). `source` names where the text
    came from, for the message; a string setting is returned as it is, so no secret is ever
    quoted back."""
    types = schema_types(prop)
    if not types or "string" in types:
        return text
    word = text.strip()
    if not word:
        return None
    if "boolean" in types:
        if word.lower() in TRUE_WORDS:
            return True
        if word.lower() in FALSE_WORDS:
            return False
        raise ConfigError(
            f"setting '{key}' must be true or false (or yes/no, on/off, 1/0), got {text!r} "
            f"from {source}"
        )
    if types & {"integer", "number"}:
        try:
            number = Decimal(word)
        except ArithmeticError:
            number = Decimal("NaN")
        if not number.is_finite() or number.adjusted() > 15:  # no 1e999999999 as an int
            raise ConfigError(f"setting '{key}' must be a number, got {text!r} from {source}")
        if number == number.to_integral_value():
            return int(number)
        if "number" not in types:
            raise ConfigError(f"setting '{key}' must be a whole number, got {text!r} from {source}")
        return float(number)
    if types & {"object", "array"}:
        try:
            value = json.loads(word)
        except (ValueError, RecursionError):
            value = None
        kind = "object" if "object" in types else "array"
        if not isinstance(value, dict if kind == "object" else list):
            raise ConfigError(
                f"setting '{key}' must be a JSON {kind}, and the text from {source} is not one"
            )
        return value
    return text


# A key separator of Meltano's flattened objects: a dot, unless escaped (`\.`, a literal dot).
_MELTANO_SEPARATOR = re.compile(r"(?<!\\)\.")


def meltano_nested(value: dict[str, Any]) -> dict[str, Any]:
    """`streams` as Meltano hands it over in TARGET_PENDO_STREAMS (to a plugin command, which
    gets no config file: `--config=ENV`): flattened, {"users.sync": "visitor",
    "users.agent_fields.email": "email"}, a literal dot in a name escaped as `\\.`. Nested again,
    as Meltano nests it for a config file. Anything else (a spec per stream) is returned as it
    is: the values of `streams` are objects, so a flattened one cannot pass for one."""
    flattened = any(_MELTANO_SEPARATOR.search(k) for k in value) and not any(
        isinstance(v, dict) and v for v in value.values()
    )
    if not flattened:
        return value
    nested: dict[str, Any] = {}
    for key, leaf in value.items():
        *parents, last = (p.replace("\\.", ".") for p in _MELTANO_SEPARATOR.split(key))
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return value  # "a" and "a.b" both: not Meltano's form after all
        if isinstance(node.get(last), dict):
            return value
        node[last] = leaf
    return nested


def environment_config(
    schema: Mapping[str, Any], prefix: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The settings given as `<PREFIX><SETTING>` environment variables (`--config ENV`), each
    typed by its schema entry. The SDK's own reader passes numbers on as text, which its
    schema check then refuses, and reads a misspelt boolean as false. `streams` flattened the
    way Meltano passes it is nested again (`meltano_nested`)."""
    config: dict[str, Any] = {}
    for key, prop in schema.get("properties", {}).items():
        name = prefix + key.upper().replace("-", "_")
        if name in environ:
            value = setting_from_text(key, prop, environ[name], f"environment variable {name}")
            if key == "streams" and isinstance(value, dict):
                value = meltano_nested(value)
            if value is not None:
                config[key] = value
    return config


def prepare_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The config as a sync, `check` and `ledger` all use it: typed settings given as text
    (Meltano's `string` kind, hand-written files) typed, and SDK settings that do nothing here
    refused when set to anything but their default."""
    properties = schema.get("properties", {})
    prepared = dict(config)
    for key, value in config.items():
        if isinstance(value, str) and key in properties:
            typed = setting_from_text(key, properties[key], value, "the config")
            if typed is None:
                prepared.pop(key)
            else:
                prepared[key] = typed
    for key, (default, why) in INERT_SDK_SETTINGS.items():
        value = prepared.get(key)
        if value is not None and value != default:
            shown = json.dumps(value, default=str)
            raise ConfigError(f"setting '{key}' is {shown}, which is not supported: {why}")
    return prepared


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: the only place keys may go over plain http."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(config: Mapping[str, Any], key: str) -> str | None:
    """A validated base URL setting (`api_url`, `track_url`), without a trailing slash.

    Keys travel in a header, so they go only over https://, except to a loopback address (the
    bundled emulator, a local proxy)."""
    raw = config.get(key)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ConfigError(f"setting '{key}' must be a URL such as https://app.pendo.io")
    try:
        parts = urllib.parse.urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"setting '{key}' is not a valid URL (bad port or host): {shown_url(raw)!r}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"setting '{key}' must be an https:// URL with a host, got {shown_url(raw)!r}"
        )
    if port == 0:
        raise ConfigError(f"setting '{key}' has port 0, which no server listens on")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"setting '{key}' must use https:// ({shown_url(raw)!r} is plain http): Pendo keys "
            "are sent only over TLS; plain http is allowed only to a loopback address such as "
            "the bundled emulator"
        )
    return raw.strip().rstrip("/")


def resolve_hosts(config: Mapping[str, Any]) -> tuple[str, str]:
    """(API host, Track host): `api_url` serves both when set (emulator, proxy), `track_url`
    overrides the Track host; else the region's hosts."""
    region = config.get("region") or DEFAULTS["region"]
    if region not in REGION_HOSTS:
        raise ConfigError(f"setting 'region' must be one of {sorted(REGION_HOSTS)}, got {region!r}")
    api_url = base_url(config, "api_url")
    track_url = base_url(config, "track_url")
    api = api_url or REGION_HOSTS[region]
    return api, track_url or api_url or REGION_TRACK_HOSTS[region]


def key_region_warnings(settings: Settings) -> list[str]:
    """Keys seen in the wild end in their region (`….us`, `….eu`); one that disagrees with
    'region' gets a 403 on every call, so say so before the first one."""
    if settings.api_url_set:
        return []
    warnings = []
    for setting, key in (
        ("track_event_secret", settings.track_event_secret),
        ("integration_key", settings.integration_key),
    ):
        suffix = (key or "").rsplit(".", 1)[-1].lower() if key and "." in key else ""
        if suffix in REGION_HOSTS and suffix != settings.region:
            warnings.append(
                f"setting '{setting}' ends in '.{suffix}', which looks like a key of Pendo's "
                f"'{suffix}' region, but 'region' is '{settings.region}': Pendo refuses keys "
                "on another region's host; set 'region' to match"
            )
    return warnings


def webhook_url(config: Mapping[str, Any]) -> str | None:
    """`alert_webhook_url`: an https URL (plain http only to a loopback address). The URL is
    itself the secret (Slack's and Teams' carry their token in the path), so no message here
    shows it."""
    raw = config.get("alert_webhook_url")
    if raw is None or raw == "":
        return None
    rule = (
        "setting 'alert_webhook_url' must be an https:// URL with a host (a Slack, Teams or "
        "PagerDuty incoming webhook)"
    )
    if not isinstance(raw, str):
        raise ConfigError(rule)
    try:
        parts = urllib.parse.urlsplit(raw.strip())
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise ConfigError(f"{rule}; the value given has a bad host or port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(rule)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{rule}; plain http is allowed only to a loopback address")
    return raw.strip()


def parse_settings(config: Mapping[str, Any]) -> Settings:
    """Validate the whole config; raise ConfigError naming the setting at the first problem."""
    raw_streams = config.get("streams") or {}
    if not isinstance(raw_streams, Mapping):
        raise ConfigError("setting 'streams' must be an object: stream name -> sync spec")
    streams: dict[str, StreamSpec] = {}
    default_stream = None
    for name, raw in raw_streams.items():
        if name == WILDCARD_STREAM:
            parse_stream_spec(name, raw)  # validate once, applied per stream later
            default_stream = dict(raw)
        else:
            streams[name] = parse_stream_spec(name, raw)
    rate: float | None = None  # unset: adaptive pacing without a ceiling
    if config.get("max_requests_per_second") is not None:
        rate = _number(config, "max_requests_per_second", 0, "a positive number")
    if rate is not None and rate != 0 and rate < MIN_REQUESTS_PER_SECOND:
        raise ConfigError(
            f"setting 'max_requests_per_second' must be at least {MIN_REQUESTS_PER_SECOND:g} "
            f"(0: no client-side limit), got {config.get('max_requests_per_second')!r}"
        )
    unmapped: Literal["fail", "skip"]
    match config.get("unmapped_streams") or DEFAULTS["unmapped_streams"]:
        case "fail" | "skip" as given:
            unmapped = given
        case other:
            raise ConfigError(f"setting 'unmapped_streams' must be 'fail' or 'skip', got {other!r}")
    concurrency = _in_range(config, "max_concurrency", 1, MAX_CONCURRENCY)
    if concurrency != int(concurrency):
        raise ConfigError(f"setting 'max_concurrency' must be a whole number, got {concurrency}")
    api_url, track_url = resolve_hosts(config)
    return Settings(
        api_url=api_url,
        track_url=track_url,
        region=config.get("region") or DEFAULTS["region"],
        api_url_set=bool(config.get("api_url")),
        ledger_url=config.get("ledger_url") or None,
        full_resync=_flag(config, "full_resync"),
        max_delete_fraction=_fraction(config, "max_delete_fraction"),
        max_rejected_fraction=_fraction(config, "max_rejected_fraction"),
        dry_run=_flag(config, "dry_run"),
        call_log=_flag(config, "call_log"),
        rejects_include_values=_flag(config, "rejects_include_values"),
        state_dir=str(config.get("state_dir") or DEFAULTS["state_dir"]),
        streams=streams,
        default_stream=default_stream,
        unmapped_streams=unmapped,
        max_concurrency=int(concurrency),
        max_requests_per_second=rate,
        request_timeout=_in_range(config, "request_timeout", *REQUEST_TIMEOUT_RANGE),
        max_retry_seconds=_in_range(config, "max_retry_seconds", *MAX_RETRY_SECONDS_RANGE),
        ledger_wait_seconds=_in_range(config, "ledger_wait_seconds", *LEDGER_WAIT_RANGE),
        retry_pending_days=_in_range(config, "retry_pending_days", *RETRY_PENDING_DAYS_RANGE),
        retention_days=_in_range(config, "retention_days", *RETENTION_DAYS_RANGE),
        track_event_secret=config.get("track_event_secret") or None,
        integration_key=config.get("integration_key") or None,
        alert_webhook_url=webhook_url(config),
    )
