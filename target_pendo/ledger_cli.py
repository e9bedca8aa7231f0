"""`target-pendo ledger status|reset`: look at or forget a stream's sync state, sending nothing.

`reset --stream S` forgets what the ledger knows of S (which events were sent, which object
values Pendo holds), so the next run sends S's rows as new; the per-run log in `sync_rows`
stays. It needs the same config as the sync (for `state_dir` / `ledger_url`), and waits for
no run: while a run holds the stream's lease it fails at once, naming that run (or waits
`ledger_wait_seconds`). `status` opens the ledger read-only and creates nothing.
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

from target_pendo.errors import ConfigError
from target_pendo.ledger import Ledger, default_url
from target_pendo.settings import DEFAULTS, prepare_config


def read_config_file(path: str) -> dict[str, Any]:
    """One config file: a JSON object of settings, or a ConfigError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read config file {path}: {why}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise ConfigError(f"config file {path} is not valid JSON{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} holds a JSON {type(data).__name__}; it must be an object of "
            'settings, e.g. {"track_event_secret": "...", "streams": {...}}'
        )
    return data


def load_config(paths: list[str]) -> dict[str, Any]:
    """The config as a sync reads it: the `--config` files merged in order, later ones
    winning; `ENV` among them adds the TARGET_PENDO_* variables over all files; then values
    given as text are typed and inert SDK settings refused (`settings.prepare_config`)."""
    from target_pendo.target import TargetPendo, config_schema  # here: target imports this module

    schema = config_schema()
    config: dict[str, Any] = {}
    for path in paths:
        if path != "ENV":
            config.update(read_config_file(path))
    if "ENV" in paths:
        config.update(TargetPendo.environment_settings())
    return prepare_config(config, schema)


def check_config_files(argv: list[str]) -> None:
    """Read every `--config FILE` the SDK's CLI is about to read, so that a file that is not
    a JSON object fails as one line naming it (the SDK would print a traceback)."""
    for n, arg in enumerate(argv):
        if arg == "--config" and n + 1 < len(argv):
            path = argv[n + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            continue
        if path != "ENV":
            read_config_file(path)


def ledger_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="target-pendo ledger", description="Inspect or reset the sync ledger."
    )
    parser.add_argument("action", choices=["status", "reset"])
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="a config JSON file, or ENV for TARGET_PENDO_* variables; may be repeated",
    )
    parser.add_argument("--stream", help="the stream to reset (required for reset)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    url = config.get("ledger_url") or default_url(config.get("state_dir") or DEFAULTS["state_dir"])
    if args.action == "reset" and not args.stream:
        parser.error("reset needs --stream NAME")
    # Looking changes nothing: no ledger file is created, no schema migrated.
    ledger = Ledger(url, read_only=args.action == "status")
    try:
        if args.action == "reset":
            # Not under a run that is syncing the stream: it would re-record what it sends.
            run_id = f"ledger-reset-{uuid.uuid4().hex[:6]}"
            ledger.lease_stream(args.stream, run_id, _wait_seconds(config))
            forgotten = ledger.reset_stream(args.stream)
            print(f"forgot {forgotten} key(s) of stream '{args.stream}'; nothing was sent")
            return 0
        for stream, status, count in ledger.status_counts():
            print(f"{stream}\t{status}\t{count}")
        return 0
    finally:
        ledger.close()


def _wait_seconds(config: dict[str, Any]) -> float:
    """`ledger_wait_seconds` from the config; 0 (fail at once) by default: a reset is asked
    for by a person, who should hear at once that a run holds the stream."""
    value = config.get("ledger_wait_seconds", 0)
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting 'ledger_wait_seconds' must be a number of seconds, not {value!r}"
        ) from None
