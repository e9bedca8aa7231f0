"""Helpers to build Singer input and run the target on it, in-process or as the CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from target_pendo.target import TargetPendo

TARGET_CMD = [sys.executable, "-c", "from target_pendo.cli.main import main; main()"]


def target_cmd_with_progress_every(seconds: float) -> list[str]:
    """TARGET_CMD with progress lines every `seconds` instead of every 30 s."""
    return [
        sys.executable,
        "-c",
        "from target_pendo.sinks.base import PendoSink; "
        f"PendoSink.PROGRESS_EVERY_SECONDS = {seconds}; "
        "from target_pendo.cli.main import main; main()",
    ]


EVENTS_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "user_id": {"type": ["string", "null"]},
        "account_id": {"type": ["string", "null"]},
        "event": {"type": ["string", "null"]},
        "occurred_at": {"type": ["string", "null"], "format": "date-time"},
        "plan": {"type": ["string", "null"]},
        "amount": {"type": ["number", "null"]},
    },
}


def schema(stream: str, props: dict | None = None, key: list[str] | None = None) -> str:
    body = {"type": "object", "properties": props} if props is not None else EVENTS_SCHEMA
    return json.dumps(
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": body,
            "key_properties": ["id"] if key is None else key,
        }
    )


def record(stream: str, row: dict[str, Any]) -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": row})


def state(value: dict[str, Any]) -> str:
    return json.dumps({"type": "STATE", "value": value})


def lines_to_text(lines: Iterable[str]) -> str:
    return "\n".join(lines) + "\n"


def run_target(config: dict, lines: Iterable[str]) -> tuple[list[dict], TargetPendo]:
    """Run the target in-process; returns the STATE values it emitted and the target."""
    target = TargetPendo(config=config, parse_env_config=False)
    out = io.StringIO()
    with redirect_stdout(out):
        target.listen(io.StringIO(lines_to_text(lines)))
    states = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    return states, target


def run_cli(
    config: dict,
    lines: Iterable[str],
    tmp_path: Path,
    env: dict | None = None,
    umask: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `target-pendo --config FILE` as a subprocess with the lines on stdin (`umask`:
    the process's, whatever the test runner's)."""
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    return subprocess.run(
        [*TARGET_CMD, "--config", str(cfg)],
        input=lines_to_text(lines),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def log_files(state_dir: str | Path, folder: str, stream: str) -> list[Path]:
    """A stream's daily files `state_dir/<folder>/<stream>/<day>.jsonl` (rejects, unknown),
    oldest day first."""
    return sorted((Path(state_dir) / folder / stream).glob("*.jsonl"))


def read_log(state_dir: str | Path, folder: str, stream: str) -> list[dict]:
    """The lines of a stream's rejects or unknown-id files, parsed, oldest first."""
    return [
        json.loads(line)
        for path in log_files(state_dir, folder, stream)
        for line in path.read_text().splitlines()
    ]


def read_rejects(state_dir: str | Path, stream: str) -> list[dict]:
    return read_log(state_dir, "rejects", stream)
