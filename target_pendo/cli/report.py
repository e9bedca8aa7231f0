"""`target-pendo report [RUN_ID] [--html FILE] [--list]`: a run's report from the ledger."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from target_pendo.cli.options import SUBCOMMAND_CONTEXT, config_option, subcommand_config
from target_pendo.config import config_secrets, configured_ledger_url
from target_pendo.ledger import Ledger
from target_pendo.observe.redact import Redactor
from target_pendo.observe.report_html import render_html
from target_pendo.observe.report_text import ReportError, load_run, render_list, render_text


@click.command(
    "report",
    context_settings=SUBCOMMAND_CONTEXT,
    help="Show a run's report from the sync ledger (the latest finished run by default); "
    "sends nothing and changes nothing. RUN_ID: the run's id, or a unique start of it.",
)
@click.argument("run_id", required=False)
@config_option
@click.option("--html", metavar="FILE", help="also write the report as an HTML page")
@click.option("--list", "list_runs", is_flag=True, help="list the latest runs instead")
@click.pass_context
def report_command(
    ctx: click.Context,
    run_id: str | None,
    config_paths: tuple[str, ...],
    html: str | None,
    list_runs: bool,
) -> int:
    config = subcommand_config(ctx, config_paths)
    url = configured_ledger_url(config)
    redact = Redactor(config_secrets(config))
    with contextlib.closing(Ledger(url, read_only=True)) as ledger:
        if list_runs:
            sys.stdout.write(redact(render_list(ledger, url)))
            return 0
        view = load_run(ledger, url, run_id)
    sys.stdout.write(redact(render_text(view)))
    if html:
        path = Path(html)
        try:
            path.write_text(redact(render_html(view)), encoding="utf-8")
        except OSError as exc:
            raise ReportError(
                f"cannot write {path}: {exc.strerror or exc}; give --html a writable path"
            ) from None
        print(f"HTML report written to {path}")
    return 0
