"""Where a config comes from: the `--config` files and `ENV` (the TARGET_PENDO_* variables),
each read once, for a sync and a subcommand alike. A file is read here, not by the SDK, so that
one that is not a JSON object fails as one line naming it; decimals are read as Decimal, as the
SDK reads them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from target_pendo.config.text import environment_config, prepare_config
from target_pendo.errors import ConfigError
from target_pendo.sdk_hooks import load_dotenv

ENV = "ENV"  # the `--config` value that stands for the environment variables
# The SDK's prefix of the plugin's environment variables (its `_env_var_prefix`; pinned in
# tests/unit/test_sdk_hooks.py).
ENV_PREFIX = "TARGET_PENDO_"


def read_config_file(path: str) -> dict[str, Any]:
    """One config file: a JSON object of settings, or a ConfigError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read config file {path}: {why}") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:
        why = json_mistake(exc) if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"config file {path} is not valid JSON{why}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} holds a JSON {type(data).__name__}; it must be an object of "
            'settings, e.g. {"track_event_secret": "...", "streams": {...}}'
        )
    return data


def json_mistake(exc: json.JSONDecodeError) -> str:
    """The parser's reason and place, but a trailing comma (which the parser only notices at the
    next `}` or `]`, often a line later) where the comma is."""
    if exc.msg.startswith(("Expecting property name", "Expecting value")):
        before = exc.doc[: exc.pos].rstrip()
        if before.endswith(",") and exc.doc[exc.pos : exc.pos + 1] in ("}", "]"):
            comma = len(before) - 1
            line = exc.doc.count("\n", 0, comma) + 1
            column = comma - exc.doc.rfind("\n", 0, comma)
            return (
                f": a trailing comma at line {line}, column {column} (JSON allows none before }} "
                "or ])"
            )
    return f": {exc.msg} at line {exc.lineno}, column {exc.colno}"


def read_environment(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`ENV`: the TARGET_PENDO_* variables (and the project's `.env`, found as the SDK finds
    it) typed by the schema."""
    load_dotenv(ENV_PREFIX)
    return environment_config(schema, ENV_PREFIX, os.environ)


@dataclass(frozen=True)
class GivenConfig:
    """What `--config` named, each file read once: the paths in order, the files' settings
    merged (later files winning), and whether `ENV` was among them."""

    paths: tuple[str, ...] = ()
    files: Mapping[str, Any] = field(default_factory=dict)
    env: bool = False

    @classmethod
    def read(cls, paths: Sequence[str]) -> GivenConfig:
        files: dict[str, Any] = {}
        for path in paths:
            if path != ENV:
                files.update(read_config_file(path))
        return cls(tuple(paths), files, ENV in paths)

    def then(self, later: GivenConfig) -> GivenConfig:
        """These, then `later` (`--config` after a subcommand): later files win."""
        return GivenConfig(
            (*self.paths, *later.paths), {**self.files, **later.files}, self.env or later.env
        )

    def load(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """The config as a sync reads it: the files merged, `ENV` over them, `prepare_config`d."""
        config = dict(self.files)
        if self.env:
            config.update(read_environment(schema))
        return prepare_config(config, schema)
