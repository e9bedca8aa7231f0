"""The `target-pendo` command, and `main`, its console entry point: the SDK's sync command
(its options, `invoke`, error handling and console logging, plus `--full-resync`) as a click
group whose subcommands are `check`, `ledger` and `report`. The sync's other options before a
subcommand are refused (exit 2).
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import click
from click.core import ParameterSource

from target_pendo.cli.check import check_command
from target_pendo.cli.ledger import ledger_command
from target_pendo.cli.options import read_group_config
from target_pendo.cli.report import report_command
from target_pendo.errors import RunStopped, StopSignal, TargetPendoError
from target_pendo.observe.logs import log_fatal, quiet_library_errors
from target_pendo.observe.redact import redact_text
from target_pendo.sdk_hooks import setup_console_logging
from target_pendo.target import STOPPING_ERRORS, TargetPendo

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


def command() -> TargetPendoCommand:
    """`target-pendo`: the SDK's sync command of TargetPendo, with `--full-resync`, as a group."""
    sync = TargetPendo.get_singer_command()
    sync.params.append(click.Option(["--full-resync"], is_flag=True, help=FULL_RESYNC_HELP))
    for param in sync.params:
        if param.name == "config":
            param.callback = read_group_config
    sync.epilog = HELP_EPILOG
    return TargetPendoCommand(sync, [check_command, ledger_command, report_command])


def main() -> None:
    """Console entry point: one clear line instead of a traceback, for every error. Exit codes:
    0 success; 1 an error; 128 + the signal's number (130 SIGINT, 143 SIGTERM) when a signal
    stopped the run."""
    log = logging.getLogger("target-pendo")
    try:
        # Not `TargetPendo.cli`: it would set up console logging for the subcommands too.
        command()(prog_name="target-pendo")
    except RunStopped as exc:
        _fail(str(exc), exc.exit_code, prefix="target-pendo: ")
    except StopSignal as exc:
        name = signal.Signals(exc.signum).name
        _fail(f"stopped by {name} before any input was read; nothing was sent", 128 + exc.signum)
    except STOPPING_ERRORS as exc:
        log.debug("fatal error", exc_info=True)
        notes = " ".join(getattr(exc, "__notes__", []))
        kind = "" if isinstance(exc, TargetPendoError) else "invalid Singer input: "
        _fail(f"{kind}{exc} {notes}", 1)
    except OSError as exc:
        log.debug("fatal error", exc_info=True)
        where = f" ({exc.filename})" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}: check the path, its permissions and free space", 1)
    except Exception as exc:  # a bug: still one line, the traceback at DEBUG
        log.debug("fatal error", exc_info=True)
        _fail(
            f"unexpected {type(exc).__name__}: {exc}; rerun with TARGET_PENDO_LOGLEVEL=DEBUG "
            "for the traceback and report it",
            1,
        )


def _fail(message: str, code: int, prefix: str = "target-pendo: error: ") -> None:
    text = redact_text(" ".join(message.split()))  # one line, whatever the SDK wrote
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if not log_fatal(text, logger_name=TargetPendo.name, stopped=code >= 128):  # logs.py
        print(f"{prefix}{text}", file=sys.stderr)
    sys.exit(code)
