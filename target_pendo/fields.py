"""An object stream's mapping resolved against Pendo's field schema, once per stream.

Pendo keys fields in lowercase (`planTier` shows as `plantier`), so configured names match
case-insensitively. A field Pendo does not have is a setup error, raised before any row is
sent, unless it is an agent field and `create_missing_fields` is on: Pendo creates an agent
field when a value is written to it. Custom fields cannot be created through the API.
Pure: the schema comes in as data, rows go out as metadata values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from target_pendo.coerce import CoercionError, coercer_for
from target_pendo.errors import StreamConfigError
from target_pendo.mapping import SINGER_METADATA_PREFIX, RowRejected, to_id
from target_pendo.settings import ObjectsSpec

GROUPS = ("agent", "custom")
ID_KEYS = {"visitor": "visitorId", "account": "accountId", "parentAccount": "accountId"}

FieldSchema = Mapping[str, Mapping[str, Mapping[str, Any]]]  # group -> field -> attributes


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

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(g for g in GROUPS if any(t.group == g for t in self.targets))

    @property
    def new_agent_fields(self) -> list[str]:
        return [t.key for t in self.targets if t.type is None]

    @classmethod
    def build(
        cls, spec: ObjectsSpec, schema_columns: Iterable[str], pendo_schema: FieldSchema
    ) -> ObjectPlan:
        columns = list(schema_columns)
        known = set(columns)
        if spec.id_column not in known:
            raise StreamConfigError(
                spec.stream,
                f"id_column names column '{spec.id_column}', which is not in the stream's "
                f"schema (columns: {sorted(known)})",
            )
        wanted: list[tuple[str, str, str]] = []  # (group, field, column)
        if spec.agent_fields is None and spec.custom_fields is None:
            wanted = [
                ("custom", c, c)
                for c in columns
                if c != spec.id_column and not c.startswith(SINGER_METADATA_PREFIX)
            ]
        else:
            for group, mapping in (("agent", spec.agent_fields), ("custom", spec.custom_fields)):
                wanted += [(group, f, c) for f, c in (mapping or {}).items()]
        targets: list[FieldTarget] = []
        seen: dict[tuple[str, str], str] = {}
        for group, field, column in wanted:
            if column not in known:
                raise StreamConfigError(
                    spec.stream,
                    f"{group}_fields.{field} names column '{column}', which is not in the "
                    f"stream's schema (columns: {sorted(known)})",
                )
            key = field.lower()
            if (group, key) in seen:
                raise StreamConfigError(
                    spec.stream,
                    f"columns '{seen[(group, key)]}' and '{column}' both write {group} field "
                    f"'{key}' (Pendo field names ignore case)",
                )
            seen[(group, key)] = column
            attributes = _live_field(pendo_schema, group, key)
            if attributes is None:
                _missing_field(spec, group, key)
                field_type = None
            else:
                field_type = str(attributes.get("type") or "")
            targets.append(FieldTarget(group, key, column, field_type, coercer_for(field_type)))
        if not targets:
            raise StreamConfigError(spec.stream, "maps no columns to Pendo fields")
        return cls(
            stream=spec.stream,
            kind=spec.kind,
            id_key=ID_KEYS[spec.kind],
            id_column=spec.id_column,
            targets=tuple(targets),
        )

    def fingerprint(self) -> str:
        """Stable across processes: what is written where, never object identities."""
        described = [self.kind, self.id_column] + [
            [t.group, t.key, t.column, t.type] for t in self.targets
        ]
        return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]

    def row_values(self, row: Mapping[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
        """(object id, group -> {field: value}); RowRejected names the column and value.

        A null clears the Pendo field; a column missing from the row leaves it untouched.
        """
        object_id = to_id(row.get(self.id_column), self.id_column)
        values: dict[str, dict[str, Any]] = {}
        for target in self.targets:
            if target.column not in row:
                continue  # a column the tap left out: leave Pendo's value as it is
            raw = row[target.column]
            if raw is None:
                value = None  # an explicit null clears the field
            else:
                try:
                    value = target.coerce(raw)
                except CoercionError as exc:
                    kind = target.type or "new"
                    raise RowRejected(
                        target.column,
                        f"column '{target.column}' value {raw!r} {exc}, so it cannot go "
                        f"into {target.group} field '{target.key}' ({kind})",
                    ) from None
            values.setdefault(target.group, {})[target.key] = value
        return object_id, values


def _live_field(schema: FieldSchema, group: str, key: str) -> Mapping[str, Any] | None:
    fields = schema.get(group) or {}
    for name, attributes in fields.items():
        if name.lower() == key and not (attributes or {}).get("isDeleted"):
            return attributes or {}
    return None


def _missing_field(spec: ObjectsSpec, group: str, key: str) -> None:
    """A field Pendo lacks: fine only for an agent field with create_missing_fields."""
    where = f"{group} field '{key}' does not exist in Pendo's {spec.kind} fields"
    if group == "custom":
        hint = (
            "custom fields cannot be created through Pendo's API: create it in Pendo under "
            "Settings > Data Mappings"
            + ("" if spec.create_missing_fields else ", or map the column to an agent field")
        )
        raise StreamConfigError(spec.stream, f"{where}; {hint}")
    if not spec.create_missing_fields:
        raise StreamConfigError(
            spec.stream,
            f"{where}; set 'create_missing_fields': true to create it by writing it, or fix "
            "the name in 'agent_fields'",
        )
