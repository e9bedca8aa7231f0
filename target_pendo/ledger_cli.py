"""`target-pendo ledger status|reset`: look at or forget a stream's sync state, sending nothing.

`reset --stream S` forgets what the ledger knows of S (which events were sent, which object
values Pendo holds), so the next run sends S's rows as new; the per-run log in `sync_rows`
stays. It needs the same config as the sync (for `state_dir` / `ledger_url`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from target_pendo.errors import ConfigError
from target_pendo.ledger import Ledger, default_url


def load_config(paths: list[str]) -> dict[str, Any]:
    """Merge config JSON files, later ones winning, like the SDK's repeated --config."""
    config: dict[str, Any] = {}
    for path in paths:
        try:
            config.update(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
    return config


def ledger_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="target-pendo ledger", description="Inspect or reset the sync ledger."
    )
    parser.add_argument("action", choices=["status", "reset"])
    parser.add_argument("--config", action="append", default=[], help="config JSON file(s)")
    parser.add_argument("--stream", help="the stream to reset (required for reset)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    url = config.get("ledger_url") or default_url(config.get("state_dir") or ".target-pendo")
    ledger = Ledger(url)
    try:
        if args.action == "reset":
            if not args.stream:
                parser.error("reset needs --stream NAME")
            forgotten = ledger.reset_stream(args.stream)
            print(f"forgot {forgotten} key(s) of stream '{args.stream}'; nothing was sent")
            return 0
        with ledger.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT stream, status, COUNT(*) FROM row_state GROUP BY stream, status "
                    "ORDER BY stream, status"
                )
            ).all()
        for stream, status, count in rows:
            print(f"{stream}\t{status}\t{count}")
        return 0
    finally:
        ledger.close()
