"""The CLI as Meltano drives it, and settings as Meltano and the environment hand them over.

`meltano invoke target-pendo check` runs `target-pendo --config FILE check`: the subcommand
comes after the options. Environment variables are text, and so is every number setting
Meltano hands over (its `decimal` kind cannot be used; see tests/e2e/test_meltano_plugin.py): each
setting of the plugin definition is read back from text here, typed as the schema says.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import click
import pytest
import yaml

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET
from target_pendo.cli import main as cli_main
from target_pendo.cli import options as cli_options
from target_pendo.config import environment_config, prepare_config, setting_from_text
from target_pendo.errors import ConfigError
from target_pendo.target import TargetPendo, config_schema

from ..singer import TARGET_CMD, lines_to_text, record, schema

DEFINITION = Path(__file__).resolve().parents[2] / "plugin" / "target-pendo.yml"
PREFIX = "TARGET_PENDO_"
STREAM = "product_events"
SPEC = {"event_name_column": "event", "visitor_id_column": "user_id"}


def cli(
    args: list[str], env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    return subprocess.run(
        [*TARGET_CMD, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        check=False,
    )


# --- where the subcommand stands -----------------------------------------------------------
@pytest.fixture
def dispatched(tmp_path, monkeypatch):
    """Run the CLI in-process on `args` (config files a.json, b.json, c.json and an input file
    `ledger` exist in the working directory) and say what it would run: ("sync", None) or
    (subcommand, the --config paths it loads), without syncing or opening a ledger."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.json", "b.json", "c.json"):
        Path(name).write_text("{}")
    Path("ledger").write_text("")
    seen: list[tuple[str, object]] = []

    class Seen(Exception):
        pass

    def load_config(given):
        seen.append(("subcommand", list(given.paths)))
        raise Seen

    def run_sync(cls, config, **_):
        seen.append(("sync", None))

    monkeypatch.setattr(cli_options, "load_config", load_config)
    monkeypatch.setattr(cli_main, "setup_console_logging", lambda name: None)  # not in pytest
    monkeypatch.setattr(TargetPendo, "run_sync", classmethod(run_sync))

    def run(args):
        command = cli_main.command()
        with contextlib.suppress(Seen):
            command.main(args, prog_name="target-pendo", standalone_mode=False)
        return seen[-1] if seen else None

    return run


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["check", "--config", "c.json"], ("subcommand", ["c.json"])),
        (["--config", "c.json", "check"], ("subcommand", ["c.json"])),
        (["--config=ENV", "ledger", "status"], ("subcommand", ["ENV"])),
        (
            ["--config", "a.json", "--config", "ENV", "ledger", "reset", "--stream", "s"],
            ("subcommand", ["a.json", "ENV"]),
        ),
        # before the subcommand first, then after it: later ones win, as in a sync
        (
            ["--config", "a.json", "report", "--config", "b.json", "--list"],
            ("subcommand", ["a.json", "b.json"]),
        ),
        (["--input", "ledger", "--config", "c.json"], ("sync", None)),
    ],
)
def test_the_subcommand_is_found_after_the_options(dispatched, args, expected):
    assert dispatched(args) == expected


def test_a_config_file_called_like_a_subcommand_is_a_file(dispatched):
    with pytest.raises(ConfigError, match="cannot read config file check"):
        dispatched(["--config", "check"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "c.json", "stray", "check"], "No such command 'stray'"),
        (["--about", "check"], "--about is an option of the sync, not of 'check'"),
        (["--full-resync", "ledger", "status"], "--full-resync is an option of the sync"),
    ],
)
def test_words_the_cli_does_not_take_are_usage_errors(dispatched, args, message):
    with pytest.raises(click.UsageError, match=message):
        dispatched(args)


def test_check_after_config_as_meltano_invokes_it(emulator, base_config, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(base_config))
    result = cli(["--config", str(cfg), "check"])
    assert result.returncode == 0, result.stderr
    assert "track_event_secret: ok" in result.stdout
    assert "integration_key: ok (valid, with write access)" in result.stdout


def test_check_reads_the_environment_as_a_sync_does(emulator, tmp_path):
    env = {
        f"{PREFIX}API_URL": emulator.url,
        f"{PREFIX}TRACK_EVENT_SECRET": DEMO_TRACK_SECRET,
        f"{PREFIX}INTEGRATION_KEY": DEMO_INTEGRATION_KEY,
        f"{PREFIX}REQUEST_TIMEOUT": "7.5",  # text, as every environment variable is
        f"{PREFIX}MAX_RETRY_SECONDS": "6",
    }
    result = cli(["--config=ENV", "check"], env)
    assert result.returncode == 0, result.stderr
    assert "track_event_secret: ok" in result.stdout
    assert "integration_key: ok" in result.stdout
    assert DEMO_TRACK_SECRET not in result.stdout + result.stderr


def test_ledger_reads_several_config_files_and_the_environment(emulator, base_config, tmp_path):
    state_dir = tmp_path / "state"
    first = tmp_path / "first.json"
    first.write_text(json.dumps({**base_config, "state_dir": "/nonexistent/overridden"}))
    second = tmp_path / "second.json"
    second.write_text(json.dumps({"streams": {STREAM: SPEC}}))
    env = {f"{PREFIX}STATE_DIR": str(state_dir), f"{PREFIX}LEDGER_WAIT_SECONDS": "0.5"}
    rows = [{"id": n, "user_id": f"u-{n}", "event": "Clicked"} for n in (1, 2, 3)]
    sync = cli(
        ["--config", str(first), "--config", str(second), "--config=ENV"],
        env,
        stdin=lines_to_text([schema(STREAM), *(record(STREAM, r) for r in rows)]),
    )
    assert sync.returncode == 0, sync.stderr
    assert len(emulator.events()) == 3
    status = cli(
        ["--config", str(first), "--config", str(second), "--config=ENV", "ledger", "status"], env
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.split() == [STREAM, "sent", "3"]
    reset = cli(
        ["--config", str(first), "--config=ENV", "ledger", "reset", "--stream", STREAM], env
    )
    assert reset.returncode == 0, reset.stderr
    assert "forgot 3 key(s)" in reset.stdout


def test_help_lists_the_subcommands_and_full_resync():
    result = cli(["--help"])
    assert result.returncode == 0, result.stderr
    for words in ("check --config", "ledger status", "ledger reset --stream", "--full-resync"):
        assert words in result.stdout


def test_full_resync_flag_after_config_resends_objects(emulator, base_config, tmp_path):
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    emulator.seed("visitor", ["u-1", "u-2"])
    config = {
        **base_config,
        "streams": {"users": {"sync": "visitor", "custom_fields": {"plan": "plan"}}},
    }
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    props = {"id": {"type": "string"}, "plan": {"type": "string"}}
    lines = lines_to_text(
        [
            schema("users", props),
            *(record("users", {"id": i, "plan": "pro"}) for i in ("u-1", "u-2")),
        ]
    )
    assert cli(["--config", str(cfg)], stdin=lines).returncode == 0
    assert cli(["--config", str(cfg)], stdin=lines).returncode == 0  # unchanged: nothing sent
    writes = len(emulator.metadata_writes())
    result = cli(["--config", str(cfg), "--full-resync"], stdin=lines)
    assert result.returncode == 0, result.stderr
    assert len(emulator.metadata_writes()) > writes


# --- settings from text ---------------------------------------------------------------------
def text_for(setting: dict) -> tuple[str, object]:
    """A non-default value for one setting of the plugin definition: (as text, as typed)."""
    name, kind = setting["name"], setting["kind"]
    special = {
        "region": ("eu", "eu"),
        "unmapped_streams": ("skip", "skip"),
        "load_method": ("append-only", "append-only"),  # the only value accepted
        "add_record_metadata": ("false", False),
        "streams": (json.dumps({STREAM: SPEC}), {STREAM: SPEC}),
        "max_delete_fraction": ("0.25", 0.25),
        "max_rejected_fraction": ("0.5", 0.5),
        "max_requests_per_second": ("12.5", 12.5),
        "request_timeout": ("7.5", 7.5),
        "max_retry_seconds": ("30", 30),
        "ledger_wait_seconds": ("2.5", 2.5),
        "retry_pending_days": ("7.5", 7.5),
        "retention_days": ("45", 45),
    }
    if name in special:
        return special[name]
    if kind == "boolean":
        return ("true", True) if not setting.get("value") else ("false", False)
    if kind == "integer":
        return "3", 3
    if kind == "object":
        return '{"k": "v"}', {"k": "v"}
    if kind == "array":
        return '["a"]', ["a"]
    return f"text-{name}", f"text-{name}"


def definition_settings() -> list[dict]:
    return yaml.safe_load(DEFINITION.read_text())["settings"]


def test_every_definition_setting_is_read_from_the_environment():
    env = {PREFIX + s["name"].upper(): text_for(s)[0] for s in definition_settings()}
    expected = {s["name"]: text_for(s)[1] for s in definition_settings()}
    assert environment_config(config_schema(), PREFIX, env) == expected


def test_the_target_runs_on_every_setting_given_as_text(tmp_path, monkeypatch):
    """What Meltano writes for the definition's kinds (numbers as text), or --config ENV."""
    for s in definition_settings():
        text, _ = text_for(s)
        if s["name"] in ("faker_config", "stream_maps", "stream_map_config"):
            continue  # the SDK's own, and faker needs an extra package
        if s["name"] == "state_dir":
            text = str(tmp_path / "state")
        if s["name"] == "ledger_url":
            text = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        if s["name"].endswith("_url") and s["name"] != "ledger_url":
            text = "http://127.0.0.1:9"
        monkeypatch.setenv(PREFIX + s["name"].upper(), text)
    target = TargetPendo(config={}, parse_env_config=True)
    try:
        settings = target.settings
        assert settings.max_delete_fraction == 0.25
        assert settings.max_rejected_fraction == 0.5
        assert settings.max_requests_per_second == 12.5
        assert settings.request_timeout == 7.5
        assert settings.max_retry_seconds == 30
        assert settings.ledger_wait_seconds == 2.5
        assert settings.retry_pending_days == 7.5
        assert settings.retention_days == 45
        assert settings.max_concurrency == 3
        assert settings.dry_run is True
        assert settings.call_log is True
        assert settings.full_resync
        assert settings.region == "eu"
        assert settings.unmapped_streams == "skip"
        assert target.config["batch_size_rows"] == 3
        assert target.config["validate_records"] is False
    finally:
        target.run_context.close()


def test_a_config_file_with_numbers_as_text_is_accepted(tmp_path):
    """Meltano's `string` kind writes "0.25" into the config file it hands over."""
    config = {
        "state_dir": str(tmp_path / "state"),
        "max_delete_fraction": "0.25",
        "request_timeout": "7.5",
        "max_concurrency": "4",
        "dry_run": "true",
    }
    target = TargetPendo(config=config)
    try:
        assert target.settings.max_delete_fraction == 0.25
        assert target.settings.request_timeout == 7.5
        assert target.settings.max_concurrency == 4
        assert target.settings.dry_run is True
    finally:
        target.run_context.close()


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("max_delete_fraction", "0,25", "must be a number"),
        ("request_timeout", "ten", "must be a number"),
        ("request_timeout", "nan", "must be a number"),
        ("max_retry_seconds", "1e999999999", "must be a number"),
        ("max_concurrency", "4.5", "must be a whole number"),
        ("dry_run", "ture", "must be true or false"),
        ("streams", "{not json", "must be a JSON object"),
        ("streams", "[]", "must be a JSON object"),
    ],
)
def test_bad_text_names_the_setting_and_where_it_came_from(key, text, message):
    env = {PREFIX + key.upper(): text}
    with pytest.raises(ConfigError) as err:
        environment_config(config_schema(), PREFIX, env)
    assert message in str(err.value)
    assert f"'{key}'" in str(err.value)
    assert f"{PREFIX}{key.upper()}" in str(err.value)


def test_empty_text_is_the_default_and_strings_stay_as_they_are():
    props = config_schema()["properties"]
    assert setting_from_text("request_timeout", props["request_timeout"], " ", "x") is None
    assert setting_from_text("api_url", props["api_url"], "", "x") == ""
    assert (
        setting_from_text("track_event_secret", props["track_event_secret"], " 12 ", "x") == " 12 "
    )


# --- SDK settings that do nothing here --------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [("load_method", "overwrite"), ("load_method", "upsert"), ("add_record_metadata", True)],
)
def test_inert_sdk_settings_are_refused_saying_why(key, value):
    with pytest.raises(ConfigError) as err:
        prepare_config({key: value}, config_schema())
    assert f"setting '{key}'" in str(err.value)
    assert "Remove the setting" in str(err.value)


def test_inert_sdk_settings_at_their_defaults_are_accepted():
    config = {"load_method": "append-only", "add_record_metadata": "false"}
    assert prepare_config(config, config_schema()) == {
        "load_method": "append-only",
        "add_record_metadata": False,
    }


def test_overwrite_from_the_environment_stops_the_cli_in_one_line(tmp_path):
    env = {f"{PREFIX}LOAD_METHOD": "overwrite", f"{PREFIX}STATE_DIR": str(tmp_path)}
    result = cli(["--config=ENV"], env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("target-pendo:")]
    assert len(errors) == 1
    assert errors[0].startswith("target-pendo: error: setting 'load_method'")
    assert "Traceback" not in result.stderr


def test_about_says_the_inert_settings_are_not_used():
    props = config_schema()["properties"]
    for key in ("load_method", "add_record_metadata"):
        assert props[key]["description"].startswith("Not used")
    assert props["load_method"]["enum"] == ["append-only"]
