"""An object stream's mapping resolved against Pendo's field schema, once per stream.

Pendo keys fields in lowercase (`planTier` shows as `plantier`), so configured names match
case-insensitively. Pendo's schema answers capitalised attributes (`Type`, `DisplayName`;
revision 2 of the contract); `type` is read as a fallback, `date` behaves as `time`, and a
field marked `isDeleted` is a missing field. A missing field is a setup error, raised before
any row is sent, unless `create_missing_fields` is on: the sink then creates it through
Pendo's schema route (``pendo_type_for`` types it from the column), and an agent field the
route could not create is written by value, which makes Pendo create it.
Pure: the schema comes in as data, rows go out as metadata values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from target_pendo.config import ObjectsSpec
from target_pendo.errors import StreamConfigError
from target_pendo.mapping.coerce import CoercionError, coercer_for
from target_pendo.mapping.rows import SINGER_METADATA_PREFIX, RowRejected, check_columns, to_id
from target_pendo.pendo.api import ID_KEYS, WRITABLE_GROUPS

# Field types Pendo answers under another name, and the type target-pendo treats them as.
TYPE_ALIASES = {"date": "time", "number": "float"}

FieldSchema = Mapping[str, Mapping[str, Mapping[str, Any]]]  # group -> field -> attributes


def pendo_field_type(attributes: Mapping[str, Any]) -> str:
    """A schema entry's type: `Type` (Pendo's key), else `type`; `""` when untyped."""
    raw = attributes.get("Type", attributes.get("type"))
    field_type = raw.strip().lower() if isinstance(raw, str) else ""
    return TYPE_ALIASES.get(field_type, field_type)


def is_deleted(attributes: Mapping[str, Any]) -> bool:
    flag = attributes.get("isDeleted", attributes.get("IsDeleted"))
    return flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")


def pendo_type_for(column_schema: Mapping[str, Any]) -> str | None:
    """The type to create a Pendo field with for a column (the schema route takes `string`,
    `number`, `time`, `boolean`); None when no such type can hold the column (arrays, objects).
    """
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
class WantedField:
    """One configured field: where it goes in Pendo and which column feeds it."""

    group: str
    key: str  # the lowercase key Pendo stores
    name: str  # as configured (Pendo's display name when target-pendo creates it)
    column: str


@dataclass(frozen=True)
class FieldTarget:
    group: str
    key: str  # the Pendo field key we write
    column: str
    type: str | None  # None: a new agent field, Pendo infers its type
    coerce: Callable[[Any], Any]


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
            targets.append(
                FieldTarget(
                    wanted.group, wanted.key, wanted.column, field_type, coercer_for(field_type)
                )
            )
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
        described = [self.kind, self.id_column] + [
            [t.group, t.key, t.column, t.type] for t in self.targets
        ]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]

    def row_values(self, row: Mapping[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
        """(object id, group -> {field: value}); RowRejected names the column and value.

        A null clears the Pendo field (with `null_values: skip` it leaves it untouched, and is
        not part of the values, so their hash stays the same run after run); a column missing
        from the row leaves it untouched.
        """
        object_id = to_id(row.get(self.id_column), self.id_column)
        values: dict[str, dict[str, Any]] = {}
        for target in self.targets:
            if target.column not in row:
                continue  # a column the tap left out: leave Pendo's value as it is
            raw = row[target.column]
            if raw is None and self.skip_nulls:
                continue
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


def wanted_fields(spec: ObjectsSpec, schema_columns: Iterable[str]) -> list[WantedField]:
    """The fields a spec writes, each checked against the stream's columns."""
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
    wanted: list[WantedField] = []
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
        wanted.append(WantedField(group, key, name, column))
    return wanted


def live_field(schema: FieldSchema, group: str, key: str) -> Mapping[str, Any] | None:
    """The attributes of a field Pendo has and can write (not deleted), else None."""
    fields = schema.get(group) or {}
    if not isinstance(fields, Mapping):
        return None
    for name, attributes in fields.items():
        entry = attributes if isinstance(attributes, Mapping) else {}
        if str(name).lower() == key and not is_deleted(entry):
            return entry
    return None


def missing_fields(
    spec: ObjectsSpec, schema_columns: Iterable[str], pendo_schema: FieldSchema
) -> list[WantedField]:
    """The configured fields Pendo does not have (or has deleted)."""
    return [
        w
        for w in wanted_fields(spec, schema_columns)
        if live_field(pendo_schema, w.group, w.key) is None
    ]


def _missing_field(spec: ObjectsSpec, group: str, key: str) -> None:
    """A field Pendo lacks: a setup error, except an agent field that is to be written by
    value (create_missing_fields, when Pendo's schema route did not create it)."""
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
