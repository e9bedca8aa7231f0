"""Singer input reading that can say *which line* is wrong.

The SDK's reader logs a traceback and the whole line for malformed JSON; ours counts lines so
every input error (malformed JSON, a RECORD before its SCHEMA, a record without its key)
names the line, and the CLI prints one line instead of a traceback.
"""

from __future__ import annotations

import json
from typing import Any

from singer_sdk.exceptions import (
    InvalidJSONSchema,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.singerlib.encoding import SimpleSingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json

from target_pendo.errors import TargetPendoError

# Problems with the Singer stream itself (not with one row's values): they stop the run.
SINGER_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    InvalidInputLine,
    RecordsWithoutSchemaException,
    MissingKeyPropertiesError,
    InvalidJSONSchema,
)


class InputError(TargetPendoError):
    """The input is not a valid Singer stream at some line."""


class LineCountingReader(SimpleSingerReader):
    line_number = 0

    def deserialize_json(self, line: str) -> dict[str, Any]:
        self.line_number += 1
        try:
            return deserialize_json(line)
        except json.JSONDecodeError as exc:
            preview = line.strip()[:120]
            raise InputError(
                f"input line {self.line_number} is not valid JSON ({exc.msg}, column "
                f"{exc.colno}): {preview!r}; the tap must write one Singer message per line"
            ) from None
