"""`target-pendo ledger status|reset`: look at or forget a stream's sync state, sending nothing.

`reset --stream S` forgets what the ledger knows of S (which events were sent, which object
values Pendo holds), so the next run sends S's rows as new; the per-run log in `sync_rows`
stays. It needs the same config as the sync (for `state_dir` / `ledger_url`), and waits for
no run: while a run holds the stream's lease it fails at once, naming that run (or waits
`ledger_wait_seconds`). `status` opens the ledger read-only and creates nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

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


def load_config(paths: Sequence[str]) -> dict[str, Any]:
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


# Where `target-pendo --config FILE <subcommand>` keeps the paths given before the subcommand.
CONFIG_PATHS = "target_pendo.config_paths"
SUBCOMMAND_CONTEXT = {"help_option_names": ["-h", "--help"]}
_F = TypeVar("_F", bound=Callable[..., Any])


def config_option(function: _F) -> _F:
    """A subcommand's `--config`, as repeatable as the sync's."""
    option = click.option(
        "--config",
        "config_paths",
        multiple=True,
        metavar="FILE|ENV",
        help="a config JSON file, or ENV for TARGET_PENDO_* variables; may be repeated",
    )
    return option(function)


def configured_ledger_url(config: dict[str, Any]) -> str:
    """The ledger a config's sync writes to: `ledger_url`, else the SQLite file under
    `state_dir` (which a subcommand then reads or resets)."""
    return config.get("ledger_url") or default_url(config.get("state_dir") or DEFAULTS["state_dir"])


def subcommand_config(ctx: click.Context, paths: Sequence[str]) -> dict[str, Any]:
    """A subcommand's config: the `--config` given before it (`target-pendo --config FILE
    check`, as Meltano runs it), then its own, loaded as a sync loads them."""
    return load_config([*ctx.meta.get(CONFIG_PATHS, ()), *paths])


@click.command(
    "ledger", context_settings=SUBCOMMAND_CONTEXT, help="Inspect or reset the sync ledger."
)
@click.argument("action", type=click.Choice(["status", "reset"]))
@config_option
@click.option("--stream", help="the stream to reset (required for reset)")
@click.pass_context
def ledger_command(
    ctx: click.Context, action: str, config_paths: tuple[str, ...], stream: str | None
) -> int:
    config = subcommand_config(ctx, config_paths)
    url = configured_ledger_url(config)
    if action == "reset" and not stream:
        raise click.UsageError("reset needs --stream NAME", ctx)
    # Looking changes nothing: no ledger file is created, no schema migrated.
    ledger = Ledger(url, read_only=action == "status")
    try:
        if stream and action == "reset":
            # Not under a run that is syncing the stream: it would re-record what it sends.
            run_id = f"ledger-reset-{uuid.uuid4().hex[:6]}"
            ledger.lease_stream(stream, run_id, _wait_seconds(config))
            forgotten = ledger.reset_stream(stream)
            print(f"forgot {forgotten} key(s) of stream '{stream}'; nothing was sent")
            return 0
        for name, status, count in ledger.status_counts():
            print(f"{name}\t{status}\t{count}")
        for name, reason, count in ledger.pending_counts():
            print(f"{name}\tpending: {reason}\t{count}")
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
