"""README and the pages of docs/ stay short, true and run.

- Every shell block says by its marker what runs it (e2e/readme.py describes the markers), and
  a test a marker names exists.
- README's Quick start runs exactly as written in a new shell: a clean PATH without .venv/bin
  (the block activates it), in a copy of the clone whose .venv is the one the tests run in;
  then each docs block that names `test_quick_start` runs in the files it left.
- README's two commands are what .ci/run runs.
- README is under 200 lines; no line of README or the docs is over 100 characters (but for the
  generated settings table); every relative link leads to a file and heading that exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.readme import (
    MARK,
    MARKS,
    NOT_RUN_MARK,
    README,
    ROOT,
    Block,
    blocks,
    blocks_run_by,
    commands,
    marked_test,
    pages,
    shell_blocks,
)
from target_pendo.config import parse_stream_spec

THIS = "tests/e2e/test_docs.py"
QUICK_START = f"{THIS}::test_quick_start"
TWO_COMMANDS = f"{THIS}::test_ci_runs_the_two_commands"
PORT = 8765  # examples/config.json's
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"  # a new shell's, before `. .venv/bin/activate`


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def on_page(page: Path) -> pytest.ParameterSet:
    return pytest.param(page, id=name(page))


def each_block() -> list[pytest.ParameterSet]:
    return [pytest.param(b, id=b.where, marks=on_page(b.page).marks) for b in shell_blocks()]


# --- the pages ------------------------------------------------------------------------------


def test_readme_is_read_in_five_minutes():
    lines = README.read_text().splitlines()
    assert len(lines) < 200, f"README has {len(lines)} lines: move a section into docs/"


@pytest.mark.parametrize("page", [on_page(p) for p in pages()])
def test_no_line_is_over_100_characters(page: Path):
    settings = r"<!-- settings:start -->.*?<!-- settings:end -->"
    text = re.sub(settings, "", page.read_text(), flags=re.S)
    long = [line for line in text.splitlines() if len(line) > 100]
    assert not long, f"{name(page)}: {len(long)} line(s) over 100 characters: {long[:3]}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[([^]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", [on_page(p) for p in pages()])
def test_links_lead_to_a_file_and_heading(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https://..., mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{name(page)}: {broken}"


def test_readme_links_every_page_of_the_docs():
    text = README.read_text()
    missing = [name(p) for p in pages()[1:] if f"({name(p)})" not in text]
    assert not missing, f"README's Documentation does not link {missing}"


# --- the markers ----------------------------------------------------------------------------


@pytest.mark.parametrize("block", each_block())
def test_every_shell_block_says_what_runs_it(block: Block):
    assert block.marker.startswith(MARKS), (
        f"{block.where}: a shell block needs a marker on the line right before it: "
        f"'{MARK} ... -->' (make e2e runs it, README only), "
        "'<!-- test: tests/<file>.py::<test> ... -->' (that test runs or checks it), or "
        f"'{NOT_RUN_MARK} <why> -->' (see e2e/readme.py)"
    )
    if block.marker.startswith(NOT_RUN_MARK):
        assert block.marker.removeprefix(NOT_RUN_MARK).removesuffix("-->").strip(), (
            f"{block.where}: say why no test runs the block"
        )
    if block.marker.startswith(MARK):
        assert block.page == README, f"{block.where}: e2e runs README's blocks only"
    test = marked_test(block)
    if test is not None:
        file, _, function = test.partition("::")
        assert (ROOT / file).is_file(), f"{block.where}: no test file {file}"
        assert re.search(rf"^def {function}\(", (ROOT / file).read_text(), re.M), (
            f"{block.where}: {file} has no test {function}"
        )


@pytest.mark.parametrize("page", [on_page(p) for p in pages()])
def test_shell_commands_are_in_sh_or_bash_blocks(page: Path):
    """A block of commands labelled otherwise (`shell`, `console`) would escape the markers."""
    hidden = [
        b.where for b in blocks(page) if b.lang in ("shell", "console", "zsh", "shell-session")
    ]
    assert not hidden, f"label these blocks sh (or bash), with their markers: {hidden}"


def test_the_quick_start_is_readmes_and_runs_first():
    run = blocks_run_by(QUICK_START)
    assert run[0].page == README
    assert [b.page for b in run].count(README) == 1
    section = re.search(r"\n## Quick start\n(.*?)\n## ", README.read_text(), re.S)
    assert section
    assert run[0].code in section.group(1)


# --- the other blocks: JSON parses, stream specs are ones the target takes -------------------


@pytest.mark.parametrize("page", [on_page(p) for p in pages()])
def test_json_blocks_are_json_and_their_stream_specs_valid(page: Path):
    for block in blocks(page):
        if block.lang != "json":
            continue
        value = json.loads(block.code)  # fails naming the block's text
        specs = value.get("streams", value) if page.name in ("streams.md", "install.md") else {}
        for stream, spec in specs.items():
            parse_stream_spec(stream, spec)


# --- README's two commands: .ci/run runs them -----------------------------------------------


def test_ci_runs_the_two_commands():
    (block,) = blocks_run_by(TWO_COMMANDS)
    wanted = [" ".join(words) for words in commands(block.code)]
    assert wanted == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert all(command in ci for command in wanted), f".ci/run does not run all of {wanted}"


# --- the Quick start, and the docs blocks after it ------------------------------------------


def fresh_clone(tmp_path: Path) -> Path:
    """A copy of the clone as `git clone` and `make demo` leave it: its files, and .venv."""
    clone = tmp_path / "clone"
    shutil.copytree(
        ROOT,
        clone,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv*",
            ".demo",
            ".target-pendo",
            ".meltano",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            "output",
        ),
    )
    (clone / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return clone


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def run_block(block: Block, cwd: Path, env: dict[str, str], logs: Path) -> tuple[str, str]:
    """The block in a new bash, as written; its background jobs (the emulator) ended after."""
    logs.mkdir(exist_ok=True)
    stem = f"{block.page.stem}-{block.line}"
    out, err = logs / f"{stem}.out", logs / f"{stem}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: what it leaves running is ended
        )
        try:
            code = proc.wait(timeout=180)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not port_is_free(PORT) and time.monotonic() < deadline:
        time.sleep(0.1)  # the emulator the block stopped lets go of its port
    text_out, text_err = out.read_text(), err.read_text()
    assert code == 0, (
        f"{block.where} failed (exit code {code}):\n{block.code}\n"
        f"--- stdout\n{text_out[-3000:]}\n--- stderr\n{text_err[-5000:]}"
    )
    return text_out, text_err


# What each docs block shows when it works (a piece of the block -> a piece of its output)
SHOWS = {
    "ledger status": "product_events\tsent\t23",
    "target-pendo check": "integration_key: ok (valid, with write access)",
    "report --list": "succeeded",
    "TARGET_PENDO_DRY_RUN=true": "would send 23",
    "TARGET_PENDO_DRY_RUN=yes": "would send 23",
    "metadata/visitor/custom/value": '"errors": ["u-2: not a plan"]',
}


@pytest.fixture
def quick_start_port() -> Iterator[int]:
    """The Quick start's port (examples/config.json's), this test's alone while it runs: other
    runs of it on the machine (another checkout's, another pytest's) wait for it."""
    lock = Path(tempfile.gettempdir()) / f"target-pendo-quick-start-{PORT}.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            assert port_is_free(PORT), f"port {PORT} is in use; the Quick start's emulator needs it"
            yield PORT
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_quick_start(tmp_path: Path, quick_start_port: int):
    if not (Path(sys.prefix) / "bin" / "activate").exists():
        pytest.skip("the tests do not run in a venv: no .venv for the Quick start to activate")
    if shutil.which("curl", path=CLEAN_PATH) is None:
        if os.environ.get("CI"):
            pytest.fail("curl is not installed (.ci/run installs it)")
        pytest.skip("curl is not installed (apt-get install curl)")
    assert shutil.which("target-pendo", path=CLEAN_PATH) is None, (
        "target-pendo is installed outside .venv: the Quick start would not need to activate"
    )
    clone = fresh_clone(tmp_path)
    new_shell = {"PATH": CLEAN_PATH, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    logs = tmp_path / "logs"
    quick_start, *after = blocks_run_by(QUICK_START)

    out, err = run_block(quick_start, clone, new_shell, logs)
    held = next(line for line in out.splitlines() if line.startswith('{"events"'))
    events = json.loads(held)["events"]
    assert len(events) == 23, "the emulator holds the 23 events with a visitor"
    assert {e["event"] for e in events} <= {
        "Signed Up",
        "Dashboard Viewed",
        "Report Exported",
        "Invite Sent",
    }
    rejected = [json.loads(line) for line in out.splitlines() if line.startswith('{"run_id"')]
    assert [(r["key"], r["reason"]) for r in rejected] == [(13, "'user_id' is missing or null")]
    assert "received 24, sent 23, rejected 1" in err
    assert "already sent 23" in err, "the second run sends nothing"
    assert port_is_free(PORT), "`kill %1` stopped the emulator"

    # the SQL on the ledger's own tables the docs show, on the ledger the Quick start left
    queries = [b for b in blocks(ROOT / "docs" / "delivery.md") if b.lang == "sql"]
    assert queries
    with contextlib.closing(sqlite3.connect(clone / ".demo/quickstart/ledger.sqlite3")) as db:
        for query in queries:
            rows = db.execute(query.code).fetchall()
            assert ("product_events", "13", "'user_id' is missing or null") in rows, query.where

    activated = {
        **new_shell,
        "PATH": f"{clone / '.venv' / 'bin'}:{CLEAN_PATH}",
        "VIRTUAL_ENV": str(clone / ".venv"),
    }
    assert after, "docs blocks run after the Quick start"
    for block in after:
        out, err = run_block(block, clone, activated, logs)
        for piece, shown in SHOWS.items():
            if piece in block.code:
                assert shown in out + err, f"{block.where}: {shown!r} not in its output"
