"""Pendo's field schema: field types, value checks, built-in groups and the answer's shape.

Per ../shared/pendo-api.md, section "Field schema": `{group: {field: attributes}}`, keys
lowercase, attributes `Type`, `DisplayName`, `ElementType`, `ElementFormat`, `Dirty`
(capitalised) beside camelCase `isHidden`, `isDeleted`, ... A real subscription also has the
`auto` and `pendo` groups Pendo fills itself; they are served so a client cannot assume only
`agent` and `custom` exist.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from pendo_emulator.contract import MAX_TEXT_CHARS

# Every group a schema answer may hold; only `agent` and `custom` take writes [T]
# (pendo.api.WRITABLE_GROUPS).
SCHEMA_GROUPS = ("auto", "agent", "custom", "pendo")
# Types a field may have in the schema [T] (`date` from one integration: behaves like `time`).
FIELD_TYPES = ("string", "boolean", "integer", "float", "time", "date", "list", "")
AGENT_ONLY_TYPES = ("list",)  # "List (agent fields only)" [C, UI]

# The capitalised attributes and their revision-1 lowercase spelling (switch `schema_case`).
_LOWERCASE = {
    "Type": "type",
    "DisplayName": "displayName",
    "ElementType": "elementType",
    "ElementFormat": "elementFormat",
    "Dirty": "dirty",
}
ATTRIBUTE_ALIASES = {**{v: k for k, v in _LOWERCASE.items()}, **{k: k for k in _LOWERCASE}}
FLAG_ATTRIBUTES = (
    "isHidden",
    "isDeleted",
    "isCalculated",
    "isPerApp",
    "isPromoted",
    "neverIndex",
)


def new_field(
    display_name: str, field_type: str, *, sample: Any = None, **flags: bool
) -> dict[str, Any]:
    """One schema entry with every attribute a real one has, in the canonical (capitalised)
    spelling; `flags` sets any of FLAG_ATTRIBUTES (`isDeleted=True` for a deleted field)."""
    if field_type not in FIELD_TYPES:
        raise ValueError(f"field type must be one of {FIELD_TYPES}, got {field_type!r}")
    unknown = set(flags) - set(FLAG_ATTRIBUTES)
    if unknown:
        raise ValueError(f"unknown field attribute(s) {sorted(unknown)}")
    entry: dict[str, Any] = {
        "Type": field_type,
        "DisplayName": display_name,
        "ElementType": "",
        "ElementFormat": "",
        "Dirty": False,
    }
    entry.update(dict.fromkeys(FLAG_ATTRIBUTES, False))
    entry.update(flags)
    entry["sample"] = sample
    return entry


def field_from_spec(name: str, spec: str | dict[str, Any]) -> dict[str, Any]:
    """A seeded field: `spec` is a type name, or a dict of attributes in either spelling
    (`{"type": "string", "isDeleted": true}`, `{"Type": "time", "DisplayName": "Signed up"}`)."""
    if isinstance(spec, str):
        return new_field(name, spec)
    if not isinstance(spec, dict):
        raise ValueError(f"field {name!r}: a type name or an object of attributes, got {spec!r}")
    attrs: dict[str, Any] = {}
    flags: dict[str, bool] = {}
    sample = spec.get("sample")
    for key, value in spec.items():
        if key == "sample":
            continue
        if key in ATTRIBUTE_ALIASES:
            attrs[ATTRIBUTE_ALIASES[key]] = value
        elif key in FLAG_ATTRIBUTES:
            if not isinstance(value, bool):
                raise ValueError(f"field {name!r}: {key} must be true or false")
            flags[key] = value
        else:
            raise ValueError(f"field {name!r}: unknown attribute {key!r}")
    entry = new_field(
        str(attrs.pop("DisplayName", name)), str(attrs.pop("Type", "")), sample=sample, **flags
    )
    entry.update(attrs)
    return entry


def render(schema: dict[str, dict[str, dict[str, Any]]], case: str) -> dict[str, Any]:
    """The answer of `GET /api/v1/metadata/schema/{kind}` under switch `schema_case`."""
    answer = copy.deepcopy(schema)
    if case == "lowercase":
        for fields in answer.values():
            for name, entry in fields.items():
                fields[name] = {_LOWERCASE.get(k, k): v for k, v in entry.items()}
    return answer


def builtin_fields(kind: str) -> dict[str, dict[str, dict[str, Any]]]:
    """What Pendo itself keeps on every visitor/account: `auto.*` and `pendo.*` fields."""
    auto: dict[str, dict[str, Any]] = {
        "id": new_field("ID", "string", sample="u-1" if kind == "visitor" else "acme"),
        "firstvisit": new_field("First Visit", "time", sample=1735689600000),
        "lastvisit": new_field("Last Visit", "time", sample=1764547200000),
        "lastupdated": new_field("Last Updated", "time", sample=1764547200000, isHidden=True),
    }
    if kind == "visitor":
        auto["accountids"] = new_field("Account IDs", "list", sample=["acme"])
        auto["lastbrowsername"] = new_field("Last Browser Name", "string", sample="Chrome")
    pendo = {"donotprocess": new_field("Do Not Process", "boolean", sample=False)}
    return {"auto": auto, "pendo": pendo}


# --- values ----------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def value_problem(field_type: str, value: Any) -> str | None:
    """Why Pendo would not store `value` in a field of `field_type`, or None when it fits.

    The texts follow the contract's example error ("value for plantier is not a number").
    `null` is handled by the caller (switch `null_value`); untyped fields take anything.
    """
    if field_type == "":
        return None
    if field_type == "string":
        if not isinstance(value, str):
            return "is not a string"
        if len(value) >= MAX_TEXT_CHARS:
            return f"is {len(value)} characters long (text must be under {MAX_TEXT_CHARS})"
        return None
    if field_type == "integer":
        return None if _is_int(value) else "is not an integer"
    if field_type == "float":
        return None if _is_int(value) or isinstance(value, float) else "is not a number"
    if field_type == "boolean":
        return None if isinstance(value, bool) else "is not a boolean"
    if field_type in ("time", "date"):
        if _is_int(value):
            return None if value >= 0 else "is a negative epoch time"
        if isinstance(value, str):
            try:
                datetime.datetime.fromisoformat(value)
            except ValueError:
                return "is neither epoch milliseconds nor an ISO 8601 time"
            return None
        return "is neither epoch milliseconds nor an ISO 8601 time"
    if field_type == "list":
        return None if isinstance(value, list) else "is not a list"
    return f"cannot be stored in a field of type {field_type!r}"


def value_fits(field_type: str, value: Any) -> bool:
    """Whether Pendo stores `value` in a field of `field_type` (null clears any field)."""
    return value is None or value_problem(field_type, value) is None


def infer_type(value: Any) -> str:
    """The type Pendo gives an agent field created by writing `value` to it [I]."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    if value is None:
        return ""
    return "string"
