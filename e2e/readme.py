"""README's Meltano commands, as e2e runs them and tests/e2e/test_meltano_readme.py checks them.

A shell block that follows a line starting with ``<!-- e2e:`` is run by e2e exactly as it is
written (bash, in a fresh Meltano project). Every other mention of a `meltano` command in
README must be one of the commands those blocks, or e2e itself, run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
MARK = "<!-- e2e:"
_FENCE = re.compile(r"```(?:sh|bash)\n(.*?)```", re.S)


def e2e_blocks(text: str) -> list[str]:
    """The marked shell blocks, in README's order."""
    blocks = []
    for part in text.split(MARK)[1:]:
        match = _FENCE.search(part)
        before = part[: match.start()] if match else ""
        if match is None or before.count("\n") > 2:
            raise ValueError(f"README: a '{MARK}' line is not right before a ```sh block")
        blocks.append(match.group(1))
    return blocks


def _strip_comment(line: str) -> str:
    """A command line without its trailing `# ...` comment (shlex knows about quotes)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote: leave the line alone
        return line.strip()
    return shlex.join(words)


def meltano_commands(block: str) -> list[list[str]]:
    """The `meltano ...` commands of a shell block, as words (the part after a `|` too);
    heredoc bodies are skipped."""
    commands = []
    heredoc: str | None = None
    for line in block.splitlines():
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        opener = re.search(r"<<-?\s*'?\"?(\w+)", line)
        if opener:
            heredoc = opener.group(1)
        for piece in line.split("|"):
            words = shlex.split(_strip_comment(piece)) if piece.strip() else []
            if words[:1] == ["meltano"]:
                commands.append(words)
    return commands


def mentioned_commands(text: str) -> list[list[str]]:
    """Every `meltano ...` command README shows: in inline code, and in any shell block."""
    found = [shlex.split(m) for m in re.findall(r"`(meltano [^`\n]+)`", text)]
    for block in _FENCE.findall(text):
        found.extend(meltano_commands(block))
    return found
