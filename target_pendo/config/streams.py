"""One stream's spec (an entry of `streams`) as a frozen dataclass, checked once, every problem
named with the stream. Unknown keys are errors: a typo such as `visitor_id_colum` would
otherwise silently send every row to the rejects file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from target_pendo.config.schema import (
    CONTEXT_KEYS,
    EVENT_KEYS,
    OBJECT_KEYS,
    OBJECT_SYNCS,
    SPEC_DEFAULTS,
    SPEC_KEY,
)
from target_pendo.errors import StreamConfigError

WILDCARD_STREAM = "*"
# Our `sync` names -> Pendo's metadata kinds.
PENDO_KINDS = {"visitor": "visitor", "account": "account", "parent_account": "parentAccount"}

_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


def is_valid_property_name(name: str) -> bool:
    """Pendo's rule: letters, digits and `_`, at most 32 characters, no leading digit, and not
    both starting and ending with `__`."""
    return bool(_PROPERTY_NAME.fullmatch(name)) and not (
        name.startswith("__") and name.endswith("__")
    )


def shown(value: Any) -> str:
    """A value as a message quotes it: a number read from a config file (a Decimal, as the SDK
    reads them) as the number it is, anything else as its repr."""
    return str(value) if isinstance(value, Decimal) else repr(value)


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
        optional = (self.event_name_column, self.account_id_column, self.timestamp_column)
        return {self.visitor_id_column, *filter(None, optional), *self.context_columns.values()}


@dataclass(frozen=True)
class ObjectsSpec:
    """How one Singer stream updates existing Pendo visitors, accounts or parent accounts."""

    stream: str
    sync: str  # visitor | account | parent_account
    id_column: str = SPEC_DEFAULTS["id_column"]
    custom_fields: Mapping[str, str] | None = None  # Pendo field -> column
    agent_fields: Mapping[str, str] | None = None
    create_missing_fields: bool = SPEC_DEFAULTS["create_missing_fields"]
    batch_size: int = SPEC_DEFAULTS["batch_size"]
    delete_behavior: str = SPEC_DEFAULTS["delete_behavior"]
    null_values: str = SPEC_DEFAULTS["null_values"]
    # a soft-delete column of the model: a row whose value is set (not null, not false) left
    # the source, as one with `_sdc_deleted_at` (a log-based tap's) does
    deleted_column: str | None = None

    @property
    def kind(self) -> str:
        return PENDO_KINDS[self.sync]


StreamSpec = EventsSpec | ObjectsSpec


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


def _choice(stream: str, raw: Mapping[str, Any], key: str) -> str:
    """One of the key's declared choices; its default when unset or empty."""
    value = raw.get(key) or SPEC_DEFAULTS[key]
    choices = SPEC_KEY[key].choices
    if value not in choices:
        raise StreamConfigError(
            stream, f"'{key}' must be one of {list(choices)}, got {shown(value)}"
        )
    return str(value)


def _parse_events_spec(stream: str, raw: Mapping[str, Any]) -> EventsSpec:
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
    create = raw.get("create_missing_fields", SPEC_DEFAULTS["create_missing_fields"])
    if not isinstance(create, bool):
        raise StreamConfigError(
            stream, f"'create_missing_fields' must be true or false, got {shown(create)}"
        )
    batch_size = raw.get("batch_size", SPEC_DEFAULTS["batch_size"])
    low, high = SPEC_KEY["batch_size"].limits()
    whole = isinstance(batch_size, int) and not isinstance(batch_size, bool)
    if not whole or not low <= batch_size <= high:
        raise StreamConfigError(
            stream,
            f"'batch_size' must be a whole number from {low} to {high}, got {shown(batch_size)}",
        )
    delete_behavior = _choice(stream, raw, "delete_behavior")
    if delete_behavior == "delete" and sync == "parent_account":
        raise StreamConfigError(
            stream,
            "'delete_behavior': 'delete' is not possible for parent accounts: Pendo has no "
            "delete for them; use 'clear' or 'nothing'",
        )
    null_values = _choice(stream, raw, "null_values")
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
        id_column=_opt_str(stream, raw, "id_column") or SPEC_DEFAULTS["id_column"],
        custom_fields=_str_map(stream, raw, "custom_fields"),
        agent_fields=_str_map(stream, raw, "agent_fields"),
        create_missing_fields=create,
        batch_size=batch_size,
    )


def parse_stream_spec(stream: str, raw: Any) -> StreamSpec:
    """Parse one entry of `streams`; every problem is reported with the stream's name."""
    if not isinstance(raw, Mapping):
        raise StreamConfigError(stream, f"the spec must be an object, got {raw!r}")
    sync = raw.get("sync", SPEC_DEFAULTS["sync"])
    if sync != "events" and sync not in OBJECT_SYNCS:
        raise StreamConfigError(
            stream, f"'sync' must be 'events' or one of {list(OBJECT_SYNCS)}, got {sync!r}"
        )
    allowed, kind = (EVENT_KEYS, "an events") if sync == "events" else (OBJECT_KEYS, f"a '{sync}'")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise StreamConfigError(
            stream,
            f"unknown setting(s) {unknown} for {kind} stream; valid ones are {sorted(allowed)}",
        )
    if sync == "events":
        return _parse_events_spec(stream, raw)
    return _parse_objects_spec(stream, sync, raw)
