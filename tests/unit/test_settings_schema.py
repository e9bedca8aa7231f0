"""Each setting's default is one fact: `settings.DEFAULTS`, which the JSON schema (and so
`--about`, the Meltano plugin definition and README's table) shows and `parse_settings` uses."""

from __future__ import annotations

from target_pendo.settings import DEFAULTS, parse_settings
from target_pendo.settings_schema import declared_schema
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
