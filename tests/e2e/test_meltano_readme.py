"""README's Meltano commands are the ones e2e runs, and they are the right ones for Meltano 4.

e2e (e2e/run.py) runs README's marked blocks as written; these tests check that the blocks are
there and say what they must, and that README shows no other Meltano command than those and
the few e2e runs itself (so every Meltano command README shows has been run by `make e2e`).
"""

from __future__ import annotations

import re

import pytest

from e2e import run as e2e_run
from e2e.readme import README, e2e_blocks, meltano_commands, mentioned_commands

TEXT = README.read_text()


def with_meltano_section() -> str:
    match = re.search(r"\n### With Meltano\n(.*?)\n## ", TEXT, re.S)
    assert match, "README lost its 'With Meltano' section"
    return match.group(1)


def run_by_e2e() -> list[list[str]]:
    commands = [c for block in e2e_blocks(TEXT) for c in meltano_commands(block)]
    return commands + [["meltano", *c] for c in e2e_run.OWN_COMMANDS]


def is_prefix(mention: list[str], command: list[str]) -> bool:
    """A mention matches a command it starts; `<...>` stands for any one word."""
    return len(mention) <= len(command) and all(
        m == c or (m.startswith("<") and m.endswith(">"))
        for m, c in zip(mention, command[: len(mention)], strict=True)
    )


def test_the_blocks_e2e_runs_are_in_the_with_meltano_section():
    section = with_meltano_section()
    blocks = e2e_blocks(TEXT)
    assert len(blocks) == 2
    assert all(block in section for block in blocks)


def test_the_set_up_block_adds_configures_checks_and_runs():
    commands = meltano_commands(e2e_blocks(TEXT)[0])
    assert commands[0] == [
        "meltano",
        "add",
        "target-pendo",
        "--from-ref",
        "$TARGET_PENDO_SRC/plugin/target-pendo.yml",
    ]
    for secret in ("track_event_secret", "integration_key"):
        # from standard input: never on the command line, never in meltano.yml
        assert ["meltano", "config", "set", "target-pendo", secret, "--from-file", "-"] in commands
    assert ["meltano", "invoke", "target-pendo", "check"] in commands
    assert commands[-1] == ["meltano", "run", "tap-postgres", "target-pendo"]


def test_the_ledger_block_runs_the_subcommands_through_meltano():
    commands = meltano_commands(e2e_blocks(TEXT)[1])
    assert [c[:5] for c in commands] == [
        ["meltano", "invoke", "target-pendo", "ledger", "status"],
        ["meltano", "invoke", "target-pendo", "ledger", "reset"],
    ]


@pytest.mark.parametrize("mention", mentioned_commands(TEXT), ids=" ".join)
def test_every_meltano_command_in_readme_is_run_by_e2e(mention):
    assert any(is_prefix(mention, command) for command in run_by_e2e()), (
        f"README shows `{' '.join(mention)}`, which neither a marked block nor e2e runs"
    )


@pytest.mark.parametrize("mention", mentioned_commands(TEXT), ids=" ".join)
def test_no_command_uses_a_form_that_fails_on_meltano_4(mention):
    # a positional plugin type adds a stray utility named 'loader'; --custom prompts
    assert mention[1:3] not in (["add", "loader"], ["add", "extractor"])
    assert "--custom" not in mention
    if mention[1:2] == ["add"] and "target-pendo" in mention:
        assert "--from-ref" in mention


def test_readme_has_no_url_placeholder_left():
    assert "<this repository URL>" not in TEXT
    assert "<repo URL>" not in TEXT
