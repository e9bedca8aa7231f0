"""Singer input reading that names *which line* is wrong (the SDK's logs a traceback), and
survives hostile bytes: kept as lone surrogates, only the row holding them is rejected."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections.abc import Callable
from typing import IO, Any

from singer_sdk.exceptions import (
    InvalidJSONSchema,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json

from target_pendo.errors import TargetPendoError
from target_pendo.sdk_hooks import ReaderHooks

# Problems with the Singer stream itself (not with one row's values): they stop the run.
SINGER_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    InvalidInputLine,
    RecordsWithoutSchemaException,
    MissingKeyPropertiesError,
    InvalidJSONSchema,
)


class InputError(TargetPendoError):
    """The input is not a valid Singer stream at some line."""


def tolerant_stdin() -> IO[str]:
    """Standard input decoded as UTF-8, with undecodable bytes kept as lone surrogates."""
    return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")


def input_fraction(stream: IO[Any] | None) -> Callable[[], float | None]:
    """The share of the input read so far, or None: only a regular file has a size."""
    try:
        fd = stream.fileno() if stream is not None else -1
        info = os.fstat(fd)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return lambda: None
    if not stat.S_ISREG(info.st_mode) or info.st_size <= 0:
        return lambda: None

    def fraction() -> float | None:
        try:
            return min(1.0, os.lseek(fd, 0, os.SEEK_CUR) / info.st_size)
        except OSError:
            return None

    return fraction


def preview(line: str) -> str:
    text = line.strip()[:120]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class LineCountingReader(ReaderHooks):
    """The SDK's reader, counting lines so each input error names its line."""

    line_number = 0

    def deserialize_json(self, line: str) -> dict[str, Any]:
        self.line_number += 1
        try:
            message = deserialize_json(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"input line {self.line_number} is not valid JSON ({exc.msg}, column "
                f"{exc.colno}): {preview(line)!r}; the tap must write one Singer message per line"
            ) from None
        except RecursionError:
            raise InputError(
                f"input line {self.line_number} is JSON nested too deeply to read; the tap "
                "must write flat Singer messages"
            ) from None
        if not isinstance(message, dict):
            raise InputError(
                f"input line {self.line_number} is not a Singer message (a JSON object with "
                f"'type'), got {type(message).__name__}: {preview(line)!r}"
            )
        if not isinstance(message.get("type"), str):
            raise InputError(
                f"input line {self.line_number} has no message 'type' (RECORD, SCHEMA, STATE, "
                f"ACTIVATE_VERSION, BATCH): {preview(line)!r}"
            )
        return message

    def unknown_message(self, message_dict: dict[str, Any]) -> InputError:
        kind = str(message_dict.get("type"))
        return InputError(
            f"input line {self.line_number} has unknown message type {preview(kind)!r}; "
            "a Singer tap writes RECORD, SCHEMA, STATE, ACTIVATE_VERSION or BATCH messages"
        )

    def fail(self, what: str) -> InputError:
        return InputError(f"input line {self.line_number}: {what}")
