"""The Meltano plugin definition stays what the target says, and meltano.yml stays on it.

`plugin/target-pendo.yml` is a plugin definition in Meltano Hub's format: `meltano add
target-pendo --from-ref <file>` adds the loader to a project without a prompt. Its settings are
generated from `target-pendo --about --format=json`, so a setting added to the schema in
config/schema.py cannot be missing from Meltano, nor differ in kind, default, secrecy or
description; its capabilities are the ones --about lists, and its commands (`meltano invoke
target-pendo:check`, ...) are the subcommands `target-pendo --help` lists, each with its
description from there.
This repository's `meltano.yml` holds the same definition for its loader (and e2e's tap
definition for its extractor), plus the project's own `config` and `select`.

`python tests/e2e/test_meltano_plugin.py` rewrites both files (as tests/e2e/test_readme.py rewrites
README's settings table).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "plugin" / "target-pendo.yml"
TAP_DEFINITION = ROOT / "e2e" / "tap-postgres.yml"
MELTANO_YML = ROOT / "meltano.yml"
sys.path.insert(0, str(ROOT))

from target_pendo.cli.main import HELP_EPILOG  # noqa: E402
from target_pendo.config import REGION_HOSTS  # noqa: E402

# Where pip finds target-pendo. It has no public package or URL yet, so the user says where
# their copy is: a path to a clone, or a git URL (Meltano expands the variable at install).
PIP_URL_VARIABLE = "TARGET_PENDO_PIP_URL"

DEFINITION_HEADER = f"""\
# target-pendo as a Meltano plugin, in Meltano Hub's plugin definition format
# (https://docs.meltano.com/reference/plugin-definition-syntax). Add it to a Meltano project
# with:   meltano add target-pendo --from-ref <path or URL of this file>
# Meltano installs it with pip from ${PIP_URL_VARIABLE}: the path to a clone of this repository,
# or a git URL (git+https://...@<tag>), set in the environment or the project's .env.
# Commands (`commands`, at the end): one per subcommand of `target-pendo --help`, such as
# `meltano invoke target-pendo:check` or `meltano invoke target-pendo:ledger-reset --stream NAME`;
# they read the settings Meltano hands the plugin as TARGET_PENDO_* variables (--config=ENV).
# variant, repo and docs are placeholders (git.example.com) until the project has a public home
# (docs/releasing.md); domain_url and logo_url (the Pendo logo Meltano Hub already serves) are not.
# Generated from `target-pendo --about` and `--help` by `python tests/e2e/test_meltano_plugin.py`:
# change the settings in target_pendo/config/schema.py (subcommands: cli/), then regenerate.
"""

MELTANO_YML_HEADER = f"""\
# A Meltano project around target-pendo: the loader, defined as plugin/target-pendo.yml
# defines it, and a sample extractor (meltanolabs-tap-postgres, defined as in
# e2e/tap-postgres.yml) reading the demo warehouse in e2e/warehouse.sql; only `config` and
# `select` are this project's own (tests/e2e/test_meltano_plugin.py keeps the rest equal; run it
# to regenerate). ${PIP_URL_VARIABLE} points the loader at this clone, editable (run
# meltano from this directory).
# Secrets are never written here: `meltano config set` keeps them in .env, or set
# TARGET_PENDO_* / TAP_POSTGRES_* environment variables.
"""

# Meltano Hub's descriptive fields. The project has no public home yet: HOME (so `variant`, its
# owner, `repo` and `docs`) is a placeholder, on example.com like README's install lines, to be
# replaced when it has one (docs/releasing.md). `logo_url` is the Pendo logo Hub serves for
# tap-pendo; `maintenance_status` follows pyproject's "Development Status :: 4 - Beta".
HOME = "https://git.example.com/target-pendo/target-pendo"
HUB_FIELDS = {
    "variant": "target-pendo",
    "repo": HOME,
    "docs": f"{HOME}#readme",
    "domain_url": "https://www.pendo.io",
    "logo_url": "/assets/logos/extractors/pendo.png",
    "keywords": ["meltano_sdk", "api", "pendo"],
    "maintenance_status": "beta",
}
PLACEHOLDERS = ("variant", "repo", "docs")
# Meltano Hub's values for maintenance_status.
MAINTENANCE_STATUSES = {"active", "beta", "development", "inactive", "unknown"}

# Meltano runs a command as `target-pendo <its args> <the user's words>`, without the `--config
# FILE` it puts before a plain `meltano invoke target-pendo check`; it hands the plugin every
# setting as a TARGET_PENDO_* variable instead, which `--config=ENV` reads as a sync would.
COMMAND_CONFIG = "--config=ENV"
# `target-pendo --help`'s list of subcommands: "  target-pendo WORDS [USAGE] --config FILE|ENV",
# then the description on the next line.
_EPILOG_ENTRY = re.compile(r"^  target-pendo (.+?) --config FILE\|ENV\n {6}(.+)$", re.M)

# Meltano kinds for JSON schema types. Not `decimal` for "number": Meltano 4 turns a decimal
# setting given in the environment into a Python Decimal and then cannot write the config file
# it hands the plugin ("Object of type Decimal is not JSON serializable"). With `string` it
# passes the text on, and target-pendo reads numbers from text (settings.setting_from_text).
KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "string",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
}
LABELS = {
    "track_event_secret": "Track Event Shared Secret",
    "integration_key": "Integration Key",
    "api_url": "API URL",
    "track_url": "Track URL",
    "ledger_url": "Ledger URL",
}
OPTION_LABELS = {
    "region": {
        name: f"{name.upper()} ({host.split('//')[1]})" for name, host in REGION_HOSTS.items()
    },
    "unmapped_streams": {"fail": "Fail the run", "skip": "Skip the stream"},
}


def about() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "target_pendo", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def _types(prop: dict[str, Any]) -> list[str]:
    declared = prop.get("type", "string")
    types = [declared] if isinstance(declared, str) else declared
    return [t for t in types if t != "null"]


def setting(name: str, prop: dict[str, Any]) -> dict[str, Any]:
    """One Meltano setting from one property of the --about settings schema."""
    (json_type,) = _types(prop)
    entry: dict[str, Any] = {
        "name": name,
        "label": LABELS.get(name) or prop.get("title") or name.replace("_", " ").title(),
    }
    if "enum" in prop:
        labels = OPTION_LABELS.get(name, {})
        entry["kind"] = "options"
        entry["options"] = [{"label": labels.get(v, v), "value": v} for v in prop["enum"]]
    else:
        entry["kind"] = KINDS[json_type]
    if prop.get("default") is not None:
        entry["value"] = prop["default"]
    if prop.get("secret"):
        entry["sensitive"] = True
    entry["description"] = prop.get("description", "")
    return entry


def commands(plugin: str) -> dict[str, dict[str, str]]:
    """A Meltano command per subcommand (and per `ledger` action) of `target-pendo --help`:
    `ledger reset --stream NAME` is `meltano invoke target-pendo:ledger-reset --stream NAME`."""
    found: dict[str, dict[str, str]] = {}
    for usage, description in _EPILOG_ENTRY.findall(HELP_EPILOG):
        words = usage.split()
        n = next((i for i, w in enumerate(words) if not re.fullmatch(r"[a-z]+", w)), len(words))
        subcommand, rest = words[:n], " ".join(words[n:])
        name = "-".join(subcommand)
        text = description[0].upper() + description[1:] + "."
        if rest:
            text += f" Usage: meltano invoke {plugin}:{name} {rest}"
        found[name] = {"args": f"{COMMAND_CONFIG} {' '.join(subcommand)}", "description": text}
    return found


def definition(info: dict[str, Any]) -> dict[str, Any]:
    """The whole plugin definition, from --about and --help."""
    name = info["name"]
    return {
        "name": name,
        "namespace": "target_pendo",
        "variant": HUB_FIELDS["variant"],
        "label": "Pendo",
        "description": "Sync warehouse rows into Pendo: Track events, and visitor and account "
        "metadata",
        **{k: v for k, v in HUB_FIELDS.items() if k != "variant"},
        "pip_url": f"${{{PIP_URL_VARIABLE}}}",
        "executable": info["name"],
        "capabilities": info["capabilities"],
        # Either key with the stream specs is a usable config (events need the Track secret,
        # objects the integration key).
        "settings_group_validation": [
            ["track_event_secret", "streams"],
            ["integration_key", "streams"],
        ],
        "settings": [setting(n, p) for n, p in info["settings"]["properties"].items()],
        "commands": commands(name),
    }


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=96, allow_unicode=True)


def plugins_of(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for kind in ("extractors", "loaders") for p in project["plugins"][kind]}


OWN_KEYS = ("config", "select")  # what a project adds to a plugin's definition


def without_own(plugin: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in plugin.items() if k not in OWN_KEYS}


def test_definition_settings_are_about_settings() -> None:
    info = about()
    shipped = yaml.safe_load(DEFINITION.read_text())
    expected = definition(info)
    assert [s["name"] for s in shipped["settings"]] == list(info["settings"]["properties"])
    assert shipped == expected, (
        "plugin/target-pendo.yml is stale: regenerate it with "
        "python tests/e2e/test_meltano_plugin.py"
    )


def test_definition_marks_the_secrets_sensitive() -> None:
    shipped = yaml.safe_load(DEFINITION.read_text())
    sensitive = {s["name"] for s in shipped["settings"] if s.get("sensitive")}
    assert sensitive == {"track_event_secret", "integration_key", "ledger_url", "alert_webhook_url"}


def test_no_setting_uses_meltanos_decimal_kind() -> None:
    shipped = yaml.safe_load(DEFINITION.read_text())
    assert all(s["kind"] != "decimal" for s in shipped["settings"])


def test_definition_has_hubs_descriptive_fields() -> None:
    shipped = yaml.safe_load(DEFINITION.read_text())
    for field in ("variant", "repo", "docs", "domain_url", "logo_url", "maintenance_status"):
        assert isinstance(shipped.get(field), str), field
        assert shipped[field], field
    assert shipped["maintenance_status"] in MAINTENANCE_STATUSES
    assert "meltano_sdk" in shipped["keywords"]
    assert all(shipped[f].startswith("https://") for f in ("repo", "docs", "domain_url"))
    # the placeholders say so where a user reads the file
    header = DEFINITION.read_text().split("\nname:")[0]
    assert all(field in header for field in PLACEHOLDERS)
    assert all("example.com" in shipped[f] for f in PLACEHOLDERS if f != "variant")


def test_capabilities_are_what_the_target_honours() -> None:
    from singer_sdk.target_base import Target

    from target_pendo.sdk_hooks import TargetHooks
    from target_pendo.target import TargetPendo

    shipped = yaml.safe_load(DEFINITION.read_text())
    assert {"activate-version", "batch"} <= set(shipped["capabilities"])
    # ACTIVATE_VERSION (versions.py) and BATCH (batchfiles.py) are handled by the target's own
    # hooks, not the SDK's
    for hook in ("_process_activate_version_message", "_process_batch_message"):
        assert getattr(TargetPendo, hook) is getattr(TargetHooks, hook) is not getattr(Target, hook)
    # without the SDK's settings for them, which would do nothing here
    names = {s["name"] for s in shipped["settings"]}
    assert not names & {"process_activate_version_messages", "batch_config"}


def test_commands_are_the_subcommands_of_the_cli() -> None:
    from target_pendo.cli import main as cli_main

    group = cli_main.command()
    assert isinstance(group, click.Group)
    actions = next(p for p in group.commands["ledger"].params if p.name == "action")
    assert isinstance(actions.type, click.Choice)
    expected = {"check", "report"} | {f"ledger-{a}" for a in actions.type.choices}
    shipped = yaml.safe_load(DEFINITION.read_text())["commands"]
    assert set(shipped) == expected
    for name, command in shipped.items():
        config, *words = shlex.split(command["args"])
        assert config == COMMAND_CONFIG  # Meltano gives a command no config file
        assert "-".join(words) == name
        assert words[0] in group.commands
        assert command["description"]
    for needs_stream in ("ledger-reset", "ledger-retry"):
        assert (
            f"meltano invoke target-pendo:{needs_stream} --stream NAME"
            in shipped[needs_stream]["description"]
        )


def test_meltano_yml_uses_the_definitions() -> None:
    project = yaml.safe_load(MELTANO_YML.read_text())
    plugins = plugins_of(project)
    assert without_own(plugins["target-pendo"]) == yaml.safe_load(DEFINITION.read_text())
    assert without_own(plugins["tap-postgres"]) == yaml.safe_load(TAP_DEFINITION.read_text())
    # this clone, editable (pip resolves "." from where meltano runs: this directory)
    assert project["env"][PIP_URL_VARIABLE] == "-e ."


def regenerate() -> None:
    DEFINITION.parent.mkdir(exist_ok=True)
    loader = definition(about())
    DEFINITION.write_text(DEFINITION_HEADER + dump(loader))
    project = yaml.safe_load(MELTANO_YML.read_text())
    plugins = plugins_of(project)
    tap = yaml.safe_load(TAP_DEFINITION.read_text())
    own = {name: {k: plugins[name][k] for k in OWN_KEYS if k in plugins[name]} for name in plugins}
    project = {k: v for k, v in project.items() if k not in ("env", "plugins")}
    project["env"] = {PIP_URL_VARIABLE: "-e ."}
    project["plugins"] = {
        "extractors": [{**tap, **own["tap-postgres"]}],
        "loaders": [{**loader, **own["target-pendo"]}],
    }
    MELTANO_YML.write_text(MELTANO_YML_HEADER + dump(project))


if __name__ == "__main__":
    regenerate()
