"""Coerce a warehouse value to a Pendo metadata field's type, or say why it cannot be. Pure.
Pendo rejects a whole metadata batch for one value that does not fit its field, so every value
is checked here first: a bad value rejects only its own row."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from target_pendo.mapping.rows import json_safe, to_epoch_ms
from target_pendo.pendo.api import MAX_TEXT_CHARS

_BOOLEANS = {
    **dict.fromkeys(("true", "t", "yes", "y", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0"), False),
}


class CoercionError(ValueError):
    """The value cannot become the field's type; the message says why."""


def _text(value: Any) -> str:
    if isinstance(value, dict | list | tuple | set | frozenset):
        raise CoercionError("is a structure, not text")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    else:
        if (safe := json_safe(value)) is None:  # NaN or infinity: no text Pendo should show
            raise CoercionError("is not a finite number")
        text = str(safe)
    if len(text) >= MAX_TEXT_CHARS:
        raise CoercionError(
            f"is {len(text)} characters; Pendo text fields hold under {MAX_TEXT_CHARS}"
        )
    return text


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError("is a boolean, not an integer")
    if isinstance(value, int):
        return _in_int64(value)
    if isinstance(value, float):
        value = Decimal(value) if math.isfinite(value) else Decimal("NaN")
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise CoercionError("is not a number") from None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CoercionError("is not a finite number")
        if value.adjusted() > 18:  # checked before int(): '1e999999999' must not hang
            raise CoercionError("is too large for a Pendo integer (64-bit)")
        if value != value.to_integral_value():
            raise CoercionError("is not a whole number")
        return _in_int64(int(value))
    raise CoercionError(f"is a {type(value).__name__}, not an integer")


def _in_int64(number: int) -> int:
    if not -(2**63) <= number < 2**63:
        raise CoercionError("is too large for a Pendo integer (64-bit)")
    return number


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
    if isinstance(value, str) and (known := _BOOLEANS.get(value.strip().lower())) is not None:
        return known
    raise CoercionError("is not a boolean (true/false, yes/no, 1/0)")


def _time(value: Any) -> int:
    try:
        return to_epoch_ms(value)
    except ValueError as exc:
        raise CoercionError(f"is not a date: {exc}") from None


def _list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(json_safe(list(value)))
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise CoercionError("is not a JSON list") from None
        if isinstance(parsed, list):
            return list(json_safe(parsed))
    raise CoercionError("is not a list")


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
    return COERCERS.get(field_type or "", json_safe)


def coerce(field_type: str | None, value: Any) -> Any:
    """`value` as Pendo's `field_type` wants it; None stays None (it clears the field)."""
    if value is None:
        return None
    return coercer_for(field_type)(value)
