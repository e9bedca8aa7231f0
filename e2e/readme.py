"""The commands of README and docs/*.md, as e2e and the tests find them.

Every shell block (```sh or ```bash) of README.md and of each page in docs/ has a marker, an
HTML comment on the line right before its fence, saying what runs it:

- ``<!-- e2e: ... -->``: `make e2e` (e2e/run.py) runs it exactly as written, in a fresh Meltano
  project (README only: e2e reads README's marked blocks, in order);
- ``<!-- test: tests/<file>.py::<test> ... -->``: that test runs it, or checks every command
  in it (tests/e2e/test_docs.py finds the blocks a test names with `blocks_run_by`);
- ``<!-- not run: <why> -->``: no test can run it (it installs into your environment, say),
  and the marker says why.

tests/e2e/test_docs.py checks that each block has one and that each test named exists;
tests/e2e/test_meltano_readme.py that every `meltano` command README and the docs show is one
`make e2e` runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MARK = "<!-- e2e:"
TEST_MARK = "<!-- test:"
NOT_RUN_MARK = "<!-- not run:"
MARKS = (MARK, TEST_MARK, NOT_RUN_MARK)
SHELLS = ("sh", "bash")
_FENCE = re.compile(r"```(?:sh|bash)\n(.*?)```", re.S)
_OPENING = re.compile(r"^```(\w*)")


def pages() -> list[Path]:
    """README, then the pages of docs/ by name: the order their blocks are run in."""
    return [README, *sorted(DOCS.glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, from 1
    lang: str
    marker: str  # the line right before the fence ("" when it is not an HTML comment)
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.lang in SHELLS


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, in order."""
    found = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = _OPENING.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{page.name}:{i + 1}: a code block is never closed")
        before = lines[i - 1].strip() if i else ""
        marker = before if before.startswith("<!--") and before.endswith("-->") else ""
        code = "".join(line + "\n" for line in lines[i + 1 : end])
        found.append(Block(page, i + 1, opening.group(1), marker, code))
        i = end + 1
    return found


def shell_blocks() -> list[Block]:
    """The shell blocks of README and the docs, in the order `pages` gives."""
    return [b for page in pages() for b in blocks(page) if b.is_shell]


def marked_test(block: Block) -> str | None:
    """The test a `<!-- test: FILE::TEST ... -->` marker names, as FILE::TEST."""
    if not block.marker.startswith(TEST_MARK):
        return None
    words = block.marker.removeprefix(TEST_MARK).removesuffix("-->").split()
    return words[0] if words else ""


def blocks_run_by(test: str) -> list[Block]:
    """The shell blocks whose marker names `test` (FILE::TEST), in the order `pages` gives."""
    return [b for b in shell_blocks() if marked_test(b) == test]


def e2e_blocks(text: str) -> list[str]:
    """The marked shell blocks, in README's order."""
    found = []
    for part in text.split(MARK)[1:]:
        match = _FENCE.search(part)
        before = part[: match.start()] if match else ""
        if match is None or before.count("\n") > 2:
            raise ValueError(f"README: a '{MARK}' line is not right before a ```sh block")
        found.append(match.group(1))
    return found


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


def commands(block: str) -> list[list[str]]:
    """The commands of a shell block, as words (each side of a `|` one command; a line
    ending in `|` or `\\` goes on on the next); heredoc bodies are skipped."""
    found = []
    heredoc: str | None = None
    pending = ""
    for line in block.splitlines():
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        opener = re.search(r"<<-?\s*'?\"?(\w+)", line)
        if opener:
            heredoc = opener.group(1)
        text = pending + " " + _strip_comment(line) if pending else line
        if text.rstrip().endswith(("|", "\\")):
            pending = text.rstrip().removesuffix("\\")
            continue
        pending = ""
        for piece in text.split("|"):
            try:
                words = shlex.split(_strip_comment(piece))
            except ValueError:  # a quote that closes on a later line: the words as they are
                words = piece.split()
            if words:
                found.append(words)
    return found


def meltano_commands(block: str) -> list[list[str]]:
    """The `meltano ...` commands of a shell block, as words (the part after a `|` too);
    heredoc bodies are skipped."""
    return [words for words in commands(block) if words[:1] == ["meltano"]]


def mentioned_commands(text: str) -> list[list[str]]:
    """Every `meltano ...` command a page shows: in inline code, and in any shell block."""
    found = [shlex.split(m) for m in re.findall(r"`(meltano [^`\n]+)`", text)]
    for block in _FENCE.findall(text):
        found.extend(meltano_commands(block))
    return found
