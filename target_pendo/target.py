"""TargetPendo: the settings schema users see, stream routing, the run's start and end, the CLI.

The whole config is parsed (``settings.parse_settings``) when the target is built, so a wrong
spec fails before any data is read; an unmapped stream fails when its SCHEMA arrives, before
any of its rows is sent.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import IO, Any

from singer_sdk import typing as th
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_pendo.check import check_cli
from target_pendo.errors import RejectedRowsAlert, TargetPendoError, UnmappedStreamError
from target_pendo.ledger_cli import ledger_cli
from target_pendo.reader import SINGER_INPUT_ERRORS, LineCountingReader
from target_pendo.run import RunContext
from target_pendo.settings import (
    CONTEXT_KEYS,
    DELETE_BEHAVIORS,
    MAX_METADATA_BATCH,
    OBJECT_SYNCS,
    REGION_HOSTS,
    EventsSpec,
    ObjectsSpec,
    key_region_warnings,
    parse_settings,
)
from target_pendo.sinks import EventsSink, ObjectsSink, SkipSink

_STREAM_SPEC = th.ObjectType(
    th.Property(
        "sync",
        th.StringType,
        allowed_values=["events", *OBJECT_SYNCS],
        description="What the stream's rows become: 'events' (Track events, the default) or "
        "updates of existing 'visitor', 'account' or 'parent_account' metadata.",
    ),
    th.Property("event_name", th.StringType, description="Fixed event name for every row."),
    th.Property(
        "event_name_column", th.StringType, description="Column holding each row's event name."
    ),
    th.Property(
        "visitor_id_column", th.StringType, description="Column with the Pendo visitor id."
    ),
    th.Property(
        "account_id_column",
        th.StringType,
        description="Column with the Pendo account id (recommended).",
    ),
    th.Property(
        "timestamp_column",
        th.StringType,
        description="Column with the event time (date-time, date, epoch s/ms, ISO string); "
        "empty: the time the batch is sent.",
    ),
    th.Property(
        "properties",
        th.ObjectType(additional_properties=th.StringType),
        description="Pendo property name -> column. Default: every column not used above, "
        "names made Pendo-safe.",
    ),
    th.Property(
        "context_columns",
        th.ObjectType(additional_properties=th.StringType),
        description=f"Track context field ({', '.join(CONTEXT_KEYS)}) -> column.",
    ),
    th.Property(
        "primary_key_column",
        th.StringType,
        description="Events: the column unique per event, so each is sent once (default: the "
        "stream's key properties).",
    ),
    th.Property(
        "delete_behavior",
        th.StringType,
        allowed_values=list(DELETE_BEHAVIORS),
        description="Objects: when a row leaves the source ('_sdc_deleted_at', or absent from "
        "a completed full-table sync): 'nothing' (default), 'clear' its fields, or 'delete' it "
        "(visitors and accounts only; permanent in Pendo).",
    ),
    th.Property(
        "id_column",
        th.StringType,
        description="Objects: column with the visitor/account id (default 'id').",
    ),
    th.Property(
        "custom_fields",
        th.ObjectType(additional_properties=th.StringType),
        description="Objects: Pendo custom field -> column. With neither field map, every "
        "column but the id goes to custom fields of the same name.",
    ),
    th.Property(
        "agent_fields",
        th.ObjectType(additional_properties=th.StringType),
        description="Objects: Pendo agent field -> column.",
    ),
    th.Property(
        "create_missing_fields",
        th.BooleanType,
        description="Objects: create agent fields Pendo lacks by writing them (custom fields "
        "must be created in Pendo). Default false: a missing field fails before sending.",
    ),
    th.Property(
        "batch_size",
        th.IntegerType,
        description=f"Objects: rows per bulk metadata call (default 500, at most "
        f"{MAX_METADATA_BATCH}).",
    ),
    additional_properties=True,
)


class TargetPendo(Target):
    """Sync Singer streams into Pendo."""

    name = "target-pendo"
    package_name = "target-pendo"

    config_jsonschema = th.PropertiesList(
        th.Property(
            "track_event_secret",
            th.StringType,
            secret=True,
            description="The app's Track Event Shared Secret (Subscription Settings > app > "
            "App Details); needed by event streams.",
        ),
        th.Property(
            "integration_key",
            th.StringType,
            secret=True,
            description="A Pendo Integration Key with write access (Settings > Integrations); "
            "needed by object streams and the connection check.",
        ),
        th.Property(
            "region",
            th.StringType,
            default="us",
            allowed_values=sorted(REGION_HOSTS),
            description="Pendo region of the subscription: picks the API and Track hosts.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            description="Base URL that overrides 'region' for every route, Track included (the "
            "bundled emulator, a proxy). https:// only, except to a loopback address.",
        ),
        th.Property(
            "track_url",
            th.StringType,
            description="Base URL for Track events (default: the region's data host, "
            "https://data.pendo.io in 'us'; 'api_url' when that is set). https:// only, except "
            "to a loopback address.",
        ),
        th.Property(
            "state_dir",
            th.StringType,
            default=".target-pendo",
            description="Directory for rejects files and run reports.",
        ),
        th.Property(
            "streams",
            th.ObjectType(additional_properties=_STREAM_SPEC),
            description="Singer stream name -> sync spec; the key '*' applies to every "
            "stream not listed.",
        ),
        th.Property(
            "ledger_url",
            th.StringType,
            secret=True,
            description="SQLAlchemy URL of the sync ledger (e.g. postgresql+psycopg://user@host/"
            "db). Default: SQLite at state_dir/ledger.sqlite3.",
        ),
        th.Property(
            "full_resync",
            th.BooleanType,
            default=False,
            description="Send every object row again, changed or not (events are still sent "
            "once); deletes are not applied. Also the CLI flag --full-resync.",
        ),
        th.Property(
            "max_delete_fraction",
            th.NumberType,
            default=0.2,
            description="A run that would clear or delete more than this fraction of a "
            "stream's objects in Pendo stops and sends no deletes.",
        ),
        th.Property(
            "max_rejected_fraction",
            th.NumberType,
            default=0.05,
            description="A run whose rejected rows exceed this fraction of a stream's rows "
            "delivers the rest, then exits non-zero so orchestrator alerting fires.",
        ),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            description="Map, validate and diff everything, write the payloads it would send "
            "under state_dir/dry_run/, send nothing and leave the ledger as it is.",
        ),
        th.Property(
            "call_log",
            th.BooleanType,
            default=False,
            description="Write every API call (method, URL, status, latency, attempt, bodies; "
            "secrets redacted) to state_dir/calls/<run>.jsonl.",
        ),
        th.Property(
            "unmapped_streams",
            th.StringType,
            default="fail",
            allowed_values=["fail", "skip"],
            description="A stream not in 'streams': 'fail' the run (default) or 'skip' it.",
        ),
        th.Property(
            "max_concurrency",
            th.IntegerType,
            default=8,
            description="Track requests in flight at once.",
        ),
        th.Property(
            "max_requests_per_second",
            th.NumberType,
            default=50,
            description="Client-side cap on requests per second to Pendo, all streams together "
            "(0: no client-side limit, e.g. against the emulator).",
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=30,
            description="Seconds to wait for one Pendo answer before retrying.",
        ),
        th.Property(
            "max_retry_seconds",
            th.NumberType,
            default=300,
            description="How long one call is retried (429, 5xx, timeouts) before the run fails.",
        ),
    ).to_dict()

    message_reader_class = LineCountingReader
    # Set by `main` for the `--full-resync` CLI flag (the SDK's CLI has no hook for flags).
    cli_full_resync = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = parse_settings(self.config)
        if type(self).cli_full_resync:
            self.settings = dataclasses.replace(self.settings, full_resync=True)
        for warning in key_region_warnings(self.settings):
            self.logger.warning(warning)
        self.run_context = RunContext.create(self.settings)

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        spec = self.settings.spec_for(stream_name)
        if isinstance(spec, EventsSpec):
            return EventsSink
        if isinstance(spec, ObjectsSpec):
            return ObjectsSink
        if self.settings.unmapped_streams == "skip":
            self.logger.warning(
                "Stream '%s' is not in setting 'streams'; skipping its rows "
                "(unmapped_streams=skip).",
                stream_name,
            )
            return SkipSink
        configured = self.settings.configured_stream_names() or "none"
        raise UnmappedStreamError(
            f"stream '{stream_name}' is not in setting 'streams' (configured: {configured}); "
            "add a spec for it, or set 'unmapped_streams' to 'skip'"
        )

    def _write_state_message(self, state: dict) -> None:
        """STATE only after every queued batch of every sink has its outcome (sinks drain on
        their own threads, see sinks/base.py); a failed batch raises here instead."""
        for sink in self.run_context.sinks:
            sink.wait_drained()
        super()._write_state_message(state)

    def process_endofpipe(self) -> None:
        self.run_context.input_complete = True  # a SIGTERM drain does not come through here
        super().process_endofpipe()

    def listen(self, file_input: IO[str] | None = None) -> None:
        """Read all input; the report is written and the pool released even when a run fails."""
        try:
            super().listen(file_input)
        except BaseException as exc:
            if isinstance(exc, SINGER_INPUT_ERRORS):
                line = getattr(self.message_reader, "line_number", 0)
                exc.add_note(f"(at input line {line})")
            self.finish(error=exc)
            raise
        self.finish()
        over = self.run_context.report.over_rejected(self.settings.max_rejected_fraction)
        if over:
            raise RejectedRowsAlert(
                f"rejected rows over max_rejected_fraction="
                f"{self.settings.max_rejected_fraction:g} in stream(s) {', '.join(over)}; "
                f"every other row was delivered and STATE written. The reasons are in "
                f"{Path(self.settings.state_dir) / 'rejects'}."
            )

    def finish(self, error: BaseException | None = None) -> None:
        """Write the run report and release the HTTP pool."""
        run = self.run_context
        for sink in run.sinks:
            sink.stop_draining()  # nothing may still be sending when the pool closes
        stats = run.client.stats
        run.report.set_http(dict(stats.stream_calls), dict(stats.stream_retries))
        extra = {
            "status": "failed" if error is not None else "succeeded",
            "error": str(error)
            if isinstance(error, (TargetPendoError, *SINGER_INPUT_ERRORS))
            else None,
            "http_calls": dict(stats.calls),
            "retries": stats.retries,
            "calls_in_doubt": stats.in_doubt,
        }
        for line in run.report.lines(extra):
            self.logger.info(line)
        self.logger.info(
            "HTTP calls: %s; retries: %d; retried after a possible delivery: %d",
            sum(stats.calls.values()),
            stats.retries,
            stats.in_doubt,
        )
        path = run.report.write(self.settings.state_dir, extra)
        self.logger.info("Run report written to %s", path)
        run.ledger.finish_run(run.run_id, extra["status"], run.report.as_dict(extra))
        run.close()


def main() -> None:
    """Console entry point: one clear line instead of a traceback for errors a user can fix.

    `target-pendo ledger ...` manages the sync ledger; `target-pendo check` validates both
    keys; `--full-resync` re-sends every object row once; everything else is the SDK's CLI.
    """
    try:
        args = sys.argv[1:]
        if args and args[0] == "ledger":
            sys.exit(ledger_cli(args[1:]))
        if args and args[0] == "check":
            sys.exit(check_cli(args[1:]))
        if "--full-resync" in args:
            TargetPendo.cli_full_resync = True
            sys.argv = [sys.argv[0], *(a for a in args if a != "--full-resync")]
        TargetPendo.cli()
    except (TargetPendoError, *SINGER_INPUT_ERRORS) as exc:
        logging.getLogger("target-pendo").debug("fatal error", exc_info=True)
        notes = " ".join(getattr(exc, "__notes__", []))
        kind = "" if isinstance(exc, TargetPendoError) else "invalid Singer input: "
        message = " ".join(f"{kind}{exc} {notes}".split())  # one line, whatever the SDK wrote
        print(f"target-pendo: error: {message}", file=sys.stderr)
        sys.exit(1)
