"""`target-pendo ledger status|reset|retry|prune|export`: look at, forget, retry, prune or
export the ledger. `reset` and `retry`, asked for by a person, wait for no run: while a run
holds the stream's lease they fail at once, naming that run (or wait `ledger_wait_seconds`)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from typing import Any

import click

from target_pendo.cli.options import SUBCOMMAND_CONTEXT, config_option, subcommand_config
from target_pendo.config import ObjectsSpec, configured_ledger_url, number_setting, parse_settings
from target_pendo.errors import ConfigError
from target_pendo.ledger import Ledger
from target_pendo.observe.export import export_sync_log
from target_pendo.observe.logs import quiet_library_errors
from target_pendo.run import retention
from target_pendo.sdk_hooks import setup_console_logging
from target_pendo.target import TargetPendo


@click.command(
    "ledger",
    context_settings=SUBCOMMAND_CONTEXT,
    help="Inspect, reset, retry, prune or export the sync ledger.",
)
@click.argument("action", type=click.Choice(["status", "reset", "retry", "prune", "export"]))
@config_option
@click.option("--stream", help="the stream to reset or retry (required for both)")
@click.option(
    "--dry-run", is_flag=True, help="retry: show what would be sent, send and record nothing"
)
@click.option("--since", metavar="RUN_ID", help="export: the runs that finished after this one")
@click.option(
    "--state",
    "state_file",
    metavar="FILE",
    help="export: continue after the bookmark in this Singer state (the loader's last STATE)",
)
@click.pass_context
def ledger_command(
    ctx: click.Context,
    action: str,
    config_paths: tuple[str, ...],
    stream: str | None,
    dry_run: bool,
    since: str | None = None,
    state_file: str | None = None,
) -> int:
    config = subcommand_config(ctx, config_paths)
    url = configured_ledger_url(config)
    if action in ("reset", "retry") and not stream:
        raise click.UsageError(f"{action} needs --stream NAME", ctx)
    if dry_run and action != "retry":
        raise click.UsageError("--dry-run is an option of 'ledger retry'", ctx)
    if (since or state_file) and action != "export":
        raise click.UsageError("--since and --state are options of 'ledger export'", ctx)
    if since and state_file:
        raise click.UsageError(
            "'ledger export' takes --since RUN_ID or --state FILE, not both", ctx
        )
    if action == "export":
        return export_sync_log(config, url, since=since, state_path=state_file)
    if action == "retry":
        assert stream is not None
        return retry_pending(config, url, stream, dry_run=dry_run)
    if action == "prune":
        settings = parse_settings(config)
        if not (days := settings.retention_days):
            print("retention_days is 0: all history is kept; nothing pruned")
            return 0
        with contextlib.closing(Ledger(url)) as ledger:
            pruned = retention.prune(ledger, settings.state_dir, days, bounded=False)
        print(pruned.describe(days))
        if pruned.space_given_back:
            print(f"the space they held in {ledger.where} was given back to the disk")
        return 0
    with contextlib.closing(Ledger(url, read_only=action == "status")) as ledger:
        if stream and action == "reset":
            # under the lease: a run syncing the stream would re-record what it sends
            run_id = f"ledger-reset-{uuid.uuid4().hex[:6]}"
            wait = number_setting(config, "ledger_wait_seconds", unset=0.0)
            ledger.lease_stream(stream, run_id, wait)
            forgotten = ledger.reset_stream(stream)
            print(f"forgot {forgotten} key(s) of stream '{stream}'; nothing was sent")
            return 0
        for name, status, count in ledger.status_counts():
            print(f"{name}\t{status}\t{count}")
        for name, reason, count in ledger.pending_counts():
            print(f"{name}\tpending: {reason}\t{count}")
        return 0


def retry_pending(config: dict[str, Any], url: str, stream: str, *, dry_run: bool) -> int:
    """Run the target on the stream's last SCHEMA and no rows: the run sends the pending queue
    and writes its report, under the stream's lease like any run."""
    settings = parse_settings(config)
    if not isinstance(settings.spec_for(stream), ObjectsSpec):
        raise ConfigError(
            f"stream '{stream}' is not an object stream in setting 'streams': only visitor, "
            "account and parent-account streams keep rows to retry"
        )
    if not settings.retry_pending_days:
        print(f"retry_pending_days is 0: stream '{stream}' keeps no pending rows; nothing sent")
        return 0
    with contextlib.closing(Ledger(url, read_only=True)) as ledger:
        message = ledger.stored_schema(stream)
    if message is None:
        raise ConfigError(
            f"the ledger at {ledger.where} has no SCHEMA of stream '{stream}': "
            "it keeps the one each object stream was last synced with (ledger schema 4 and "
            "later); run a sync of the stream once, then retry"
        )
    line = json.dumps({"type": "SCHEMA", "stream": stream, **message})
    # The stored schema is what the stream's sink saw, stream maps already applied.
    config = {**config, "stream_maps": {}, "dry_run": dry_run or config.get("dry_run", False)}
    setup_console_logging(TargetPendo.name)
    quiet_library_errors(logging.getLogger().handlers)
    TargetPendo.run_sync(
        config, parse_env=False, file_input=io.StringIO(line + "\n"), full_resync=False
    )
    return 0
