"""Coerce a warehouse value to a Pendo metadata field's type, or say why it cannot be.

Pendo rejects a whole metadata batch for one value that does not fit its field, so every value
is checked here first: a bad value rejects only its own row, with field and value named.
Pure functions, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from target_pendo.mapping import json_safe, to_epoch_ms

MAX_TEXT = 1500  # Pendo: text fields hold under 1,500 characters
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class CoercionError(ValueError):
    """The value cannot become the field's type; the message says why."""


def _text(value: Any) -> str:
    if isinstance(value, dict | list | tuple | set):
        raise CoercionError("is a structure, not text")
    text = value if isinstance(value, str) else str(json_safe(value))
    if isinstance(value, bool):
        text = "true" if value else "false"
    if len(text) >= MAX_TEXT:
        raise CoercionError(f"is {len(text)} characters; Pendo text fields hold under {MAX_TEXT}")
    return text


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError("is a boolean, not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        if math.isfinite(value) and value == int(value):
            return int(value)
        raise CoercionError("is not a whole number")
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise CoercionError("is not a number") from None
        if number.is_finite() and number == number.to_integral_value():
            return int(number)
        raise CoercionError("is not a whole number")
    raise CoercionError(f"is a {type(value).__name__}, not an integer")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise CoercionError("is a boolean, not a number")
    if isinstance(value, int | float | Decimal | str):
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (ValueError, OverflowError):
            raise CoercionError("is not a number") from None
        if not math.isfinite(number):
            raise CoercionError("is not a finite number")
        return number
    raise CoercionError(f"is a {type(value).__name__}, not a number")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise CoercionError("is not a boolean (true/false, yes/no, 1/0)")


def _time(value: Any) -> int:
    try:
        return to_epoch_ms(value)
    except ValueError as exc:
        raise CoercionError(f"is not a date: {exc}") from None


def _list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return json_safe(list(value))
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise CoercionError("is not a JSON list") from None
        if isinstance(parsed, list):
            return json_safe(parsed)
    raise CoercionError("is not a list")


def _as_is(value: Any) -> Any:
    return json_safe(value)


COERCERS: dict[str, Callable[[Any], Any]] = {
    "string": _text,
    "integer": _integer,
    "float": _float,
    "boolean": _boolean,
    "time": _time,
    "list": _list,
}


def coercer_for(field_type: str | None) -> Callable[[Any], Any]:
    """The function for a Pendo field type; unknown or untyped fields get values as they are."""
    return COERCERS.get(field_type or "", _as_is)


def coerce(field_type: str | None, value: Any) -> Any:
    """`value` as Pendo's `field_type` wants it; None stays None (it clears the field)."""
    if value is None:
        return None
    return coercer_for(field_type)(value)
