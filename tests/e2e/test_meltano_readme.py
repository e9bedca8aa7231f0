"""README's Meltano commands are the ones e2e runs, and they are the right ones for Meltano 4.

e2e (e2e/run.py) runs README's marked blocks as written; these tests check that the blocks are
there and say what they must, and that README and the pages of docs/ show no other Meltano
command than those and the few e2e runs itself (so every Meltano command they show has been
run by `make e2e`).
"""

from __future__ import annotations

import re

import pytest

from e2e import run as e2e_run
from e2e.readme import README, ROOT, e2e_blocks, meltano_commands, mentioned_commands, pages

TEXT = README.read_text()
MENTIONS = [
    (page.relative_to(ROOT), mention)
    for page in pages()
    for mention in mentioned_commands(page.read_text())
]


def with_meltano_section() -> str:
    match = re.search(r"\n## With Meltano\n(.*?)\n## ", TEXT, re.S)
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


def test_the_set_up_block_adds_both_plugins_configures_checks_and_runs():
    commands = meltano_commands(e2e_blocks(TEXT)[0])
    # the tap first, from the definition e2e/tap-postgres.yml holds (the one meltano.yml has)
    assert commands[0] == [
        "meltano",
        "add",
        "tap-postgres",
        "--from-ref",
        "$TARGET_PENDO_SRC/e2e/tap-postgres.yml",
    ]
    assert [
        "meltano",
        "add",
        "target-pendo",
        "--from-ref",
        "$TARGET_PENDO_SRC/plugin/target-pendo.yml",
    ] in commands
    secrets = [("target-pendo", "track_event_secret"), ("target-pendo", "integration_key")]
    for plugin, secret in [*secrets, ("tap-postgres", "password")]:
        # from standard input: never on the command line, never in meltano.yml
        assert ["meltano", "config", "set", plugin, secret, "--from-file", "-"] in commands
    # the rest of the tap's connection comes from the variables psql reads, nothing written in
    for setting, variable in [("host", "PGHOST"), ("port", "PGPORT"), ("database", "PGDATABASE")]:
        assert ["meltano", "config", "set", "tap-postgres", setting, f"${variable}"] in commands
    assert ["meltano", "invoke", "target-pendo", "check"] in commands
    assert commands[-1] == ["meltano", "run", "tap-postgres", "target-pendo"]


def test_the_ledger_block_runs_the_subcommands_through_meltano():
    commands = meltano_commands(e2e_blocks(TEXT)[1])
    assert [c[:5] for c in commands] == [
        ["meltano", "invoke", "target-pendo", "ledger", "status"],
        ["meltano", "invoke", "target-pendo", "ledger", "reset"],
    ]


def mention_id(item: tuple[object, list[str]]) -> str:
    return f"{item[0]}: {' '.join(item[1])}"


def test_readme_and_the_docs_show_meltano_commands():
    assert any(str(page) != "README.md" for page, _ in MENTIONS), "the docs show none"


@pytest.mark.parametrize(("page", "mention"), MENTIONS, ids=map(mention_id, MENTIONS))
def test_every_meltano_command_is_run_by_e2e(page, mention):
    assert any(is_prefix(mention, command) for command in run_by_e2e()), (
        f"{page} shows `{' '.join(mention)}`, which neither README's marked blocks nor e2e runs"
    )


@pytest.mark.parametrize(("page", "mention"), MENTIONS, ids=map(mention_id, MENTIONS))
def test_no_command_uses_a_form_that_fails_on_meltano_4(page, mention):
    # a positional plugin type adds a stray utility named 'loader'; --custom prompts
    assert mention[1:3] not in (["add", "loader"], ["add", "extractor"])
    assert "--custom" not in mention
    if mention[1:2] == ["add"] and "target-pendo" in mention:
        assert "--from-ref" in mention


def test_readme_has_no_url_placeholder_left():
    assert "<this repository URL>" not in TEXT
    assert "<repo URL>" not in TEXT
