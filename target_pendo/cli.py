"""The `target-pendo` command: the SDK's sync command and the subcommands, as one click group.

Without a subcommand the SDK's own command runs the sync (its options, its `invoke`, its
handling of warnings and of config validation errors, its console logging), with
`--full-resync` added. `check`, `ledger` and `report` are click commands of the group.
Meltano runs `meltano invoke target-pendo check` as `target-pendo --config FILE check`, so
`--config` is taken before the subcommand (by the group) and after it (by the subcommand), and
the subcommand reads both, in that order: the group keeps the paths it read in `ctx.meta`.
The sync's other options before a subcommand are refused (exit 2), as they always were.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from click.core import ParameterSource

from target_pendo.check import check_command
from target_pendo.ledger_cli import CONFIG_PATHS, ledger_command, read_config_file
from target_pendo.logs import quiet_library_errors
from target_pendo.report_cli import report_command
from target_pendo.sdk_hooks import setup_console_logging

HELP_EPILOG = """\b
Subcommands, after --config or before it (Meltano puts --config first, so
`meltano invoke target-pendo check` runs `target-pendo --config FILE check`):
  target-pendo check --config FILE|ENV
      check track_event_secret and integration_key against Pendo; sends no data
  target-pendo ledger status --config FILE|ENV
      count the sync ledger's keys per stream and status; changes nothing
  target-pendo ledger reset --stream NAME --config FILE|ENV
      forget one stream's sync state (its rows are then sent as new); sends nothing
  target-pendo ledger retry --stream NAME [--dry-run] --config FILE|ENV
      send an object stream's pending rows again now, without a tap
  target-pendo ledger prune --config FILE|ENV
      forget the history older than retention_days (each run prunes some too)
  target-pendo ledger export [--state FILE | --since RUN_ID] --config FILE|ENV
      the finished runs and their rows as Singer messages, for a loader to the warehouse
  target-pendo report [RUN_ID] [--html FILE] [--list] --config FILE|ENV
      a run's report from the ledger (the latest by default), as a table or an HTML page
They read --config (several files, later ones winning, and ENV for TARGET_PENDO_*
variables) exactly as a sync does.
"""

FULL_RESYNC_HELP = (
    "Send every object row again once, changed or not (events are still sent once); deletes "
    "are not applied. Same as the setting full_resync."
)


class TargetPendoCommand(click.Group):
    """The SDK's sync command as a group: its options are the group's, and with no
    subcommand the SDK's command itself is invoked on the group's context."""

    def __init__(self, sync: click.Command, subcommands: list[click.Command]) -> None:
        super().__init__(
            name=sync.name,
            params=sync.params,
            help=sync.help,
            epilog=HELP_EPILOG,
            context_settings=sync.context_settings,
            commands=subcommands,
            invoke_without_command=True,
            callback=click.pass_context(self._sync_unless_subcommand),
            result_callback=click.pass_context(self._exit_with),
        )
        self.sync = sync

    def _sync_unless_subcommand(self, ctx: click.Context, **_params: Any) -> Any:
        subcommand = ctx.invoked_subcommand
        if subcommand is None:
            setup_console_logging(self.sync.name or "target-pendo")
            quiet_library_errors(logging.getLogger().handlers)
            return self.sync.invoke(ctx)
        for param in self.params:
            if param.name in (None, "config") or not param.expose_value:
                continue
            if ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT:
                raise click.UsageError(
                    f"{param.opts[0]} is an option of the sync, not of '{subcommand}'", ctx
                )
        return None

    @staticmethod
    def _exit_with(ctx: click.Context, code: int | None, **_params: Any) -> None:
        """A subcommand returns its exit code (so a test can call it and read the code);
        here, once, it becomes the process's."""
        ctx.exit(code or 0)


def build_command(sync: click.Command) -> TargetPendoCommand:
    """The `target-pendo` command around `sync`, the SDK's (`Target.get_singer_command`)."""
    sync.params.append(click.Option(["--full-resync"], is_flag=True, help=FULL_RESYNC_HELP))
    for param in sync.params:
        if param.name == "config":
            param.callback = _checked_config(param.callback)
    sync.epilog = HELP_EPILOG
    return TargetPendoCommand(sync, [check_command, ledger_command, report_command])


def _checked_config(sdk_callback: Any) -> Any:
    """The group's `--config`: each file read first, so one that is not a JSON object fails
    as one line naming it (the SDK would print a traceback); its paths kept for a subcommand;
    then the SDK's own reading, which the sync gets."""

    def callback(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
        for path in value:
            if path != "ENV":
                read_config_file(path)
        ctx.meta[CONFIG_PATHS] = tuple(value)
        return sdk_callback(ctx, param, value) if sdk_callback else value

    return callback
