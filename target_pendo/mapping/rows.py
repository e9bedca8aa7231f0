"""Pure mapping from Singer rows to Pendo payloads. A plan is built once per stream, so the
per-row work is a few look-ups and one JSON encode; a row that cannot become a valid payload
raises ``RowRejected`` naming the field."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import math
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from target_pendo.config import EventsSpec, is_valid_property_name
from target_pendo.errors import StreamConfigError

MAX_PROPERTY_NAME = 32
# Epoch numbers from this up are ms, below it seconds: 1e11 ms is 1973, 1e11 s the year 5138.
_MS_THRESHOLD = 1e11
_MAX_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z, exclusive
_NUMERIC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
SINGER_METADATA_PREFIX = "_sdc_"


class RowRejected(Exception):
    """One row cannot be sent; `field` and `reason` go to the rejects file."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _json_default(value: Any) -> Any:
    """Types the SDK and taps hand us that `json` cannot encode, mapped to what Pendo shows."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def json_safe(value: Any) -> Any:
    """A copy of `value` that strict JSON can hold: NaN and infinities become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, str | int):
        return value
    return json_safe(_json_default(value))


_compact_json = functools.partial(json.dumps, separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> bytes:
    """Compact strict JSON; the fast path first, the full walk only when a NaN shows up."""
    try:
        text = _compact_json(value, default=_json_default, allow_nan=False)
    except ValueError:
        text = _compact_json(json_safe(value))
    return text.encode("utf-8")


def unencodable_field(value: Any, path: str = "") -> str | None:
    """The first place in a row (`column.key...`, keys too) with a lone surrogate (a `\\ud800`
    escape, or bytes that were not UTF-8), which UTF-8 cannot encode."""
    if isinstance(value, str):
        return None if _encodes(value) else (path or "(value)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            where = f"{path}.{name}" if path else name
            if not _encodes(name):
                return where
            if (found := unencodable_field(item, where)) is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for n, item in enumerate(value):
            if (found := unencodable_field(item, f"{path}[{n}]")) is not None:
                return found
    return None


def _encodes(text: str) -> bool:
    return text.isascii() or _SURROGATE.search(text) is None


def unencodable_reason(field: str) -> str:
    return (
        f"'{field}' holds text that is not valid Unicode (a lone surrogate: a '\\ud800'-style "
        "escape or bytes that were not UTF-8), which Pendo cannot take"
    )


# Line breaks to str.splitlines that JSON leaves raw: escaped, so one entry is one line.
_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def jsonl_line(value: Any) -> bytes:
    """One JSONL line (no newline) for a log file; see `_LINE_BREAKS`."""
    text = dumps(value).decode("utf-8")
    if not text.isascii():
        for char, escape in _LINE_BREAKS.items():
            text = text.replace(char, escape)
    return text.encode("utf-8")


def to_epoch_ms(value: Any) -> int:
    """Epoch ms from a datetime, date, epoch seconds/ms or ISO 8601 string (naive: UTC)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a timestamp")
    moment = value.strip() if isinstance(value, str) else value
    if isinstance(moment, str) and not _NUMERIC.match(moment):
        try:
            moment = dt.datetime.fromisoformat(moment)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 date-time, a date, or epoch seconds/ms"
            ) from None
    if isinstance(moment, dt.datetime):
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        ms = round(moment.timestamp() * 1000)
    elif isinstance(moment, dt.date):
        ms = (
            int(dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC).timestamp())
            * 1000
        )
    elif isinstance(moment, int | float | Decimal | str):
        try:
            number = float(moment)
        except OverflowError:
            raise ValueError(f"{moment!r} is too large to be a timestamp") from None
        if not math.isfinite(number):
            raise ValueError(f"{number!r} is not a finite number")
        ms = round(number if abs(number) >= _MS_THRESHOLD else number * 1000)
    else:
        raise ValueError(f"{type(value).__name__} value {value!r} is not a timestamp")
    if not 0 <= ms < _MAX_MS:
        raise ValueError(f"{value!r} is outside 1970-01-01 .. 9999-12-31")
    return ms


def sanitize_property_name(column: str) -> str:
    """Pendo property name for a column, by the rule in docs/streams.md (Pendo allows letters,
    digits and `_`, at most 32, `__x__` reserved; a long name keeps a hash of the column, so
    names that share a prefix stay distinct)."""
    name = _INVALID_NAME_CHARS.sub("_", column)
    if name.startswith("__") and name.endswith("__"):
        name = name.lstrip("_")
    if not name or name[0].isdigit():
        name = "_" + name
    if len(name) > MAX_PROPERTY_NAME:
        raw = column.encode("utf-8", "surrogatepass")  # JSON may carry lone surrogates
        digest = hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:8]
        name = f"{name[:23]}_{digest}"
    return name


def default_property_names(stream: str, columns: Iterable[str]) -> dict[str, str]:
    """Pendo name -> column for every column; two columns with one name is a config error."""
    mapping: dict[str, str] = {}
    for column in columns:
        name = sanitize_property_name(column)
        if name in mapping:
            raise StreamConfigError(
                stream,
                f"columns '{mapping[name]}' and '{column}' both become Pendo property "
                f"'{name}'; list the properties explicitly with 'properties'",
            )
        mapping[name] = column
    return mapping


def check_columns(
    stream: str, known: Collection[str], configured: Iterable[tuple[str, str | None]]
) -> None:
    for setting, column in configured:
        if column and column not in known:
            raise StreamConfigError(
                stream,
                f"{setting} names column '{column}', which is not in the stream's schema "
                f"(columns: {sorted(known)})",
            )


def to_id(value: Any, field: str) -> str:
    """Pendo ids are strings; integers (and integral floats) are accepted and turned into text."""
    if isinstance(value, str):
        if value.strip():
            return value
        raise RowRejected(field, f"'{field}' is empty")
    if value is None:
        raise RowRejected(field, f"'{field}' is missing or null")
    if isinstance(value, bool):
        raise RowRejected(field, f"'{field}' is a boolean ({value!r}), not an id")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        return str(int(value))
    raise RowRejected(field, f"'{field}' must be a string or an integer, got {value!r}")


@dataclass(frozen=True)
class EventPlan:
    """A stream's events spec resolved against its schema, once."""

    stream: str
    visitor_column: str
    account_column: str | None
    timestamp_column: str | None
    event_name: str | None
    event_name_column: str | None
    properties: tuple[tuple[str, str], ...]  # (pendo name, column)
    context: tuple[tuple[str, str], ...]  # (context key, column)

    @classmethod
    def build(cls, spec: EventsSpec, schema_columns: Iterable[str]) -> EventPlan:
        columns = list(schema_columns)
        known = set(columns)
        configured = [
            ("visitor_id_column", spec.visitor_id_column),
            ("account_id_column", spec.account_id_column),
            ("timestamp_column", spec.timestamp_column),
            ("event_name_column", spec.event_name_column),
            *((f"context_columns.{k}", c) for k, c in spec.context_columns.items()),
            *((f"properties.{k}", c) for k, c in (spec.properties or {}).items()),
        ]
        check_columns(spec.stream, known, configured)
        if spec.properties is not None:
            props = dict(spec.properties)
        else:
            used = spec.used_columns()
            props = default_property_names(
                spec.stream,
                (c for c in columns if c not in used and not c.startswith(SINGER_METADATA_PREFIX)),
            )
        assert all(is_valid_property_name(n) for n in props)
        return cls(
            stream=spec.stream,
            visitor_column=spec.visitor_id_column,
            account_column=spec.account_id_column,
            timestamp_column=spec.timestamp_column,
            event_name=spec.event_name,
            event_name_column=spec.event_name_column,
            properties=tuple(props.items()),
            context=tuple(spec.context_columns.items()),
        )

    def column_for(self, body_path: str) -> str:
        """The column behind a place in the Track body (`properties.plan` -> its column)."""
        head, _, rest = body_path.partition(".")
        top = {
            "visitorId": self.visitor_column,
            "accountId": self.account_column,
            "event": self.event_name_column,
        }
        if top.get(head):
            return str(top[head])
        group = {"properties": self.properties, "context": self.context}.get(head, ())
        name = rest.split(".", 1)[0].split("[", 1)[0]
        for pendo_name, column in group:
            if pendo_name == name:
                return column + rest[len(name) :]
        return body_path

    def track_body(self, row: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
        """The Track body for one row; `now_ms` stands in when no timestamp column is set."""
        visitor = to_id(row.get(self.visitor_column), self.visitor_column)
        if self.event_name_column is not None:
            raw_name = row.get(self.event_name_column)
            if raw_name is None or (isinstance(raw_name, str) and not raw_name.strip()):
                raise RowRejected(
                    self.event_name_column, f"event name column '{self.event_name_column}' is empty"
                )
            event = raw_name if isinstance(raw_name, str) else str(raw_name)
        else:
            event = self.event_name  # type: ignore[assignment]
        if self.timestamp_column is not None:
            try:
                timestamp = to_epoch_ms(row.get(self.timestamp_column))
            except ValueError as exc:
                raise RowRejected(
                    self.timestamp_column, f"timestamp column '{self.timestamp_column}': {exc}"
                ) from None
        else:
            timestamp = now_ms
        body: dict[str, Any] = {"type": "track", "event": event, "visitorId": visitor}
        if self.account_column is not None:
            raw_account = row.get(self.account_column)
            if raw_account is not None and raw_account != "":
                body["accountId"] = to_id(raw_account, self.account_column)
        body["timestamp"] = timestamp
        body["properties"] = {name: row.get(column) for name, column in self.properties}
        body["context"] = {
            key: value if isinstance(value, str) else str(value)
            for key, column in self.context
            if (value := row.get(column)) is not None
        }
        return body
