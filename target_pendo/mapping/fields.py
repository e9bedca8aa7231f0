"""An object stream's mapping resolved against Pendo's field schema, once per stream. Pure.
Pendo keys fields in lowercase (names match case-insensitively); its schema answers `Type`
(`type` a fallback, `date` is `time`), and a field marked `isDeleted` is missing: a setup
error, unless `create_missing_fields`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from target_pendo.config import ObjectsSpec
from target_pendo.errors import StreamConfigError
from target_pendo.mapping.coerce import CoercionError, coercer_for
from target_pendo.mapping.rows import (
    SINGER_METADATA_PREFIX,
    RowRejected,
    check_columns,
    json_safe,
    to_id,
)
from target_pendo.pendo.api import ID_KEYS, WRITABLE_GROUPS

FieldSchema = Mapping[str, Mapping[str, Mapping[str, Any]]]  # group -> field -> attributes


def pendo_field_type(attributes: Mapping[str, Any]) -> str:
    """A schema entry's type: `Type` (Pendo's key), else `type`; `""` when untyped."""
    raw = attributes.get("Type", attributes.get("type"))
    field_type = raw.strip().lower() if isinstance(raw, str) else ""
    return {"date": "time", "number": "float"}.get(field_type, field_type)  # Pendo's aliases


def pendo_type_for(column_schema: Mapping[str, Any]) -> str | None:
    """The type to create a Pendo field with for a column (Pendo's schema route takes string,
    number, time, boolean); None for arrays and objects."""
    types = column_schema.get("type") or []
    kinds = {types} if isinstance(types, str) else set(types)
    kinds.discard("null")
    if column_schema.get("format") in ("date-time", "date") and kinds <= {"string"}:
        return "time"
    if kinds == {"boolean"}:
        return "boolean"
    if kinds and kinds <= {"integer", "number"}:
        return "number"
    if kinds & {"array", "object"}:
        return None
    return "string"


@dataclass(frozen=True)
class FieldTarget:
    """One configured field: where it goes in Pendo, which column feeds it, its Pendo type."""

    group: str
    key: str  # the lowercase key Pendo stores
    name: str  # as configured (Pendo's display name when target-pendo creates it)
    column: str
    type: str | None = None  # None: a new agent field (Pendo infers its type), or not resolved
    coerce: Callable[[Any], Any] = json_safe


@dataclass(frozen=True)
class ObjectPlan:
    stream: str
    kind: str  # Pendo kind: visitor | account | parentAccount
    id_key: str
    id_column: str
    targets: tuple[FieldTarget, ...]
    skip_nulls: bool = False  # `null_values: skip`: a null leaves the Pendo field as it is

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(g for g in WRITABLE_GROUPS if any(t.group == g for t in self.targets))

    @property
    def new_agent_fields(self) -> list[str]:
        return [t.key for t in self.targets if t.type is None]

    @classmethod
    def build(
        cls, spec: ObjectsSpec, schema_columns: Iterable[str], pendo_schema: FieldSchema
    ) -> ObjectPlan:
        targets: list[FieldTarget] = []
        for wanted in wanted_fields(spec, schema_columns):
            attributes = live_field(pendo_schema, wanted.group, wanted.key)
            if attributes is None:
                _missing_field(spec, wanted.group, wanted.key)
            field_type = None if attributes is None else pendo_field_type(attributes)
            targets.append(replace(wanted, type=field_type, coerce=coercer_for(field_type)))
        if not targets:
            raise StreamConfigError(spec.stream, "maps no columns to Pendo fields")
        return cls(
            stream=spec.stream,
            kind=spec.kind,
            id_key=ID_KEYS[spec.kind],
            id_column=spec.id_column,
            targets=tuple(targets),
            skip_nulls=spec.null_values == "skip",
        )

    def column_for(self, values_path: str) -> str:
        """The column behind a place in a row's values (`custom.plantier` -> its column)."""
        group, _, rest = values_path.partition(".")
        key = rest.split(".", 1)[0].split("[", 1)[0]
        for target in self.targets:
            if target.group == group and target.key == key:
                return target.column + rest[len(key) :]
        return values_path or self.id_column

    def fingerprint(self) -> str:
        """Stable across processes: what is written where, never object identities."""
        targets = [[t.group, t.key, t.column, t.type] for t in self.targets]
        described = [self.kind, self.id_column, *targets]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]

    def row_values(self, row: Mapping[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
        """(object id, group -> {field: value}); RowRejected names the column and value. A
        skipped null is left out of the values, so their hash stays the same run after run."""
        object_id = to_id(row.get(self.id_column), self.id_column)
        values: dict[str, dict[str, Any]] = {}
        for target in self.targets:
            raw = row.get(target.column)
            if target.column not in row or (raw is None and self.skip_nulls):
                continue  # a column the tap left out, or a skipped null: Pendo's value stays
            try:
                value = None if raw is None else target.coerce(raw)  # a null clears the field
            except CoercionError as exc:
                raise RowRejected(
                    target.column,
                    f"column '{target.column}' value {raw!r} {exc}, so it cannot go "
                    f"into {target.group} field '{target.key}' ({target.type or 'new'})",
                ) from None
            values.setdefault(target.group, {})[target.key] = value
        return object_id, values


def wanted_fields(spec: ObjectsSpec, schema_columns: Iterable[str]) -> list[FieldTarget]:
    columns = list(schema_columns)
    known = set(columns)
    columns_of_spec = [("id_column", spec.id_column), ("deleted_column", spec.deleted_column)]
    check_columns(spec.stream, known, columns_of_spec)
    groups = (("agent", spec.agent_fields), ("custom", spec.custom_fields))
    configured = [(g, f, c) for g, mapping in groups for f, c in (mapping or {}).items()]
    if spec.agent_fields is None and spec.custom_fields is None:
        configured = [
            ("custom", c, c)
            for c in columns
            if c not in (spec.id_column, spec.deleted_column)
            and not c.startswith(SINGER_METADATA_PREFIX)
        ]
    wanted: list[FieldTarget] = []
    seen: dict[tuple[str, str], str] = {}
    for group, name, column in configured:
        check_columns(spec.stream, known, [(f"{group}_fields.{name}", column)])
        key = name.lower()
        if (group, key) in seen:
            raise StreamConfigError(
                spec.stream,
                f"columns '{seen[(group, key)]}' and '{column}' both write {group} field "
                f"'{key}' (Pendo field names ignore case)",
            )
        seen[(group, key)] = column
        wanted.append(FieldTarget(group, key, name, column))
    return wanted


def live_field(schema: FieldSchema, group: str, key: str) -> Mapping[str, Any] | None:
    """The attributes of a field Pendo has and can write (not deleted), else None."""
    fields = schema.get(group) or {}
    if not isinstance(fields, Mapping):
        return None
    for name, attributes in fields.items():
        entry = attributes if isinstance(attributes, Mapping) else {}
        flag = entry.get("isDeleted", entry.get("IsDeleted"))
        deleted = flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")
        if str(name).lower() == key and not deleted:
            return entry
    return None


def _missing_field(spec: ObjectsSpec, group: str, key: str) -> None:
    """A field Pendo lacks: a setup error, but for an agent field to be written by value."""
    where = f"{group} field '{key}' does not exist in Pendo's {spec.kind} fields"
    if not spec.create_missing_fields:
        raise StreamConfigError(
            spec.stream,
            f"{where}; create it in Pendo (Settings > Data Mappings), set "
            f"'create_missing_fields': true to have target-pendo create it, or fix the name in "
            f"'{group}_fields'",
        )
    if group == "custom":
        raise StreamConfigError(
            spec.stream,
            f"{where} and Pendo did not create it through its schema route; create it in Pendo "
            "under Settings > Data Mappings",
        )
