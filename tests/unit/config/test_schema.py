"""Each setting's default is one fact, declared in `config/schema.py`: the JSON schema (and
so `--about`, the Meltano plugin definition and README's table) shows it and `parse_settings`
uses it."""

from __future__ import annotations

import dataclasses

from target_pendo.config import (
    DEFAULTS,
    ObjectsSpec,
    Settings,
    declared_schema,
    parse_settings,
    parse_stream_spec,
)
from target_pendo.config.schema import SPEC_DEFAULTS
from target_pendo.target import TargetPendo


def test_the_schema_shows_exactly_the_defaults_the_parser_uses() -> None:
    declared = declared_schema()["properties"]
    shown = {k: p["default"] for k, p in declared.items() if "default" in p}
    assert shown == DEFAULTS
    # the target hands the SDK this schema (the SDK then adds its own built-in settings)
    held = TargetPendo.config_jsonschema["properties"]
    assert {k: held[k] for k in declared} == declared


def test_an_empty_config_parses_to_the_declared_defaults() -> None:
    settings = parse_settings({})
    parsed = {k: getattr(settings, k) for k in DEFAULTS if hasattr(settings, k)}
    # the SDK's inert settings are refused unless default, not kept in Settings
    assert set(DEFAULTS) - set(parsed) == {"load_method", "add_record_metadata"}
    assert parsed == {k: DEFAULTS[k] for k in parsed}


def test_the_dataclasses_default_to_the_declared_defaults() -> None:
    """No default is written twice: the dataclasses' fields take theirs from the schema."""
    for cls, declared in ((Settings, DEFAULTS), (ObjectsSpec, SPEC_DEFAULTS)):
        defaults = {
            f.name: f.default
            for f in dataclasses.fields(cls)
            if f.name in declared and f.default is not dataclasses.MISSING
        }
        assert defaults, cls
        assert defaults == {name: declared[name] for name in defaults}, cls
    assert parse_stream_spec("s", {"sync": "visitor"}) == ObjectsSpec(stream="s", sync="visitor")
