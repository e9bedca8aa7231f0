"""Settings that arrive as text (environment variables; Meltano's `string` kind, since its
`decimal` kind fails: "Object of type Decimal is not JSON serializable"), typed as the schema
declares them, strictly: a typo stops the run naming the setting instead of becoming 0 or false.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from target_pendo.config.schema import INERT_SDK_SETTINGS
from target_pendo.errors import ConfigError

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def schema_types(prop: Mapping[str, Any]) -> set[str]:
    """The JSON types a settings schema entry allows, 'null' left out."""
    declared = prop.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    for option in prop.get("anyOf", []):
        types |= schema_types(option)
    return types - {"null"}


def setting_from_text(key: str, prop: Mapping[str, Any], text: str, source: str) -> Any:
    """One setting's value from text, typed as its schema says; empty text is no value. A string
    setting is returned as it is, so no message ever quotes a secret back."""
    types = schema_types(prop)
    if not types or "string" in types:
        return text
    word = text.strip()
    if not word:
        return None
    if "boolean" in types:
        if word.lower() in TRUE_WORDS:
            return True
        if word.lower() in FALSE_WORDS:
            return False
        raise ConfigError(
            f"setting '{key}' must be true or false (or yes/no, on/off, 1/0), got {text!r} "
            f"from {source}"
        )
    if types & {"integer", "number"}:
        try:
            number = Decimal(word)
        except ArithmeticError:
            number = Decimal("NaN")
        if not number.is_finite() or number.adjusted() > 15:  # no 1e999999999 as an int
            raise ConfigError(f"setting '{key}' must be a number, got {text!r} from {source}")
        if number == number.to_integral_value():
            return int(number)
        if "number" not in types:
            raise ConfigError(f"setting '{key}' must be a whole number, got {text!r} from {source}")
        return float(number)
    if types & {"object", "array"}:
        try:
            value = json.loads(word)
        except (ValueError, RecursionError):
            value = None
        kind = "object" if "object" in types else "array"
        if not isinstance(value, dict if kind == "object" else list):
            raise ConfigError(
                f"setting '{key}' must be a JSON {kind}, and the text from {source} is not one"
            )
        return value
    return text


_MELTANO_SEPARATOR = re.compile(r"(?<!\\)\.")


def meltano_nested(value: dict[str, Any]) -> dict[str, Any]:
    """`streams` as Meltano flattens it in TARGET_PENDO_STREAMS ({"users.sync": "visitor"}, a
    literal dot escaped as `\\.`), nested again. Anything else is returned as it is: the values
    of `streams` are objects, so a flattened one cannot pass for one."""
    flattened = any(_MELTANO_SEPARATOR.search(k) for k in value) and not any(
        isinstance(v, dict) and v for v in value.values()
    )
    if not flattened:
        return value
    nested: dict[str, Any] = {}
    for key, leaf in value.items():
        *parents, last = (p.replace("\\.", ".") for p in _MELTANO_SEPARATOR.split(key))
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return value  # "a" and "a.b" both: not Meltano's form after all
        if isinstance(node.get(last), dict):
            return value
        node[last] = leaf
    return nested


def environment_config(
    schema: Mapping[str, Any], prefix: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The `<PREFIX><SETTING>` environment variables (`--config ENV`), typed by the schema: the
    SDK's own reader passes numbers on as text and reads a misspelt boolean as false."""
    config: dict[str, Any] = {}
    for key, prop in schema.get("properties", {}).items():
        name = prefix + key.upper().replace("-", "_")
        if name in environ:
            value = setting_from_text(key, prop, environ[name], f"environment variable {name}")
            if key == "streams" and isinstance(value, dict):
                value = meltano_nested(value)
            if value is not None:
                config[key] = value
    return config


def prepare_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The config as every command uses it: settings given as text typed, and SDK settings that
    do nothing here refused when set to anything but their default."""
    properties = schema.get("properties", {})
    prepared = dict(config)
    for key, value in config.items():
        if isinstance(value, str) and key in properties:
            typed = setting_from_text(key, properties[key], value, "the config")
            if typed is None:
                prepared.pop(key)
            else:
                prepared[key] = typed
    for key, (default, why) in INERT_SDK_SETTINGS.items():
        value = prepared.get(key)
        if value is not None and value != default:
            shown = json.dumps(value, default=_plain)
            raise ConfigError(f"setting '{key}' is {shown}, which is not supported: {why}")
    return prepared


def _plain(value: Any) -> Any:
    """A config file's decimal (the SDK reads them as Decimal) as the number it is."""
    return float(value) if isinstance(value, Decimal) else str(value)
