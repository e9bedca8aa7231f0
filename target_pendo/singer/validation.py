"""Record validation compiled once per stream (`fastjsonschema`: several times cheaper per
record than the SDK's `jsonschema`). Formats are not checked and defaults not filled in; a
schema it cannot compile falls back to the SDK's validator."""

from __future__ import annotations

from typing import Any

import fastjsonschema
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks.core import BaseJSONSchemaValidator


class CompiledValidator(BaseJSONSchemaValidator):
    def __init__(self, schema: dict[str, Any]) -> None:
        super().__init__(schema)
        self._check = fastjsonschema.compile(schema, use_default=False, use_formats=False)

    def validate(self, record: dict[str, Any]) -> None:
        try:
            self._check(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            message = exc.message.removeprefix("data.").removeprefix("data ")
            raise InvalidRecord(message, record) from exc


def violation_field(exc: InvalidRecord) -> str | None:
    """The column an InvalidRecord is about, from either validator's exception."""
    cause = exc.__cause__
    if isinstance(cause, fastjsonschema.JsonSchemaValueException):
        path = list(cause.path or [])[1:]  # drop the leading 'data'
    else:
        path = list(getattr(cause, "absolute_path", []) or [])
    return ".".join(str(p) for p in path) or None


def compiled_or_none(schema: dict[str, Any]) -> CompiledValidator | None:
    try:
        return CompiledValidator(schema)
    except (fastjsonschema.JsonSchemaDefinitionException, TypeError, ValueError):
        return None
