"""TargetPendo: the settings schema users see, stream routing, the run's start and end. The
config is parsed when the target is built, so a wrong spec fails before any data is read."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar

from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.sinks import Sink
from singer_sdk.target_base import Target

from target_pendo.config import (
    EventsSpec,
    ObjectsSpec,
    declared_schema,
    key_region_warnings,
    parse_settings,
    prepare_config,
    read_environment,
)
from target_pendo.errors import (
    RejectedRowsAlert,
    RunStopped,
    StopSignal,
    TargetPendoError,
    UnmappedStreamError,
)
from target_pendo.observe.alert import build_message as build_alert
from target_pendo.observe.alert import send as send_alert
from target_pendo.observe.alert import trigger as alert_trigger
from target_pendo.observe.logs import quiet_sdk_chatter
from target_pendo.observe.progress import ProgressMonitor, age
from target_pendo.observe.report_document import Pacing, ReportDocument
from target_pendo.run import retention
from target_pendo.run.context import RunContext
from target_pendo.run.outcomes import RunStatus
from target_pendo.sdk_hooks import TargetHooks
from target_pendo.singer.batchfiles import read_batch_files
from target_pendo.singer.reader import (
    SINGER_INPUT_ERRORS,
    LineCountingReader,
    input_fraction,
    tolerant_stdin,
)
from target_pendo.sinks import EventsSink, ObjectsSink, SkipSink
from target_pendo.sinks.base import PendoSink

# What stops a run with one line naming the problem (anything else is a bug: see cli/main.py).
STOPPING_ERRORS: tuple[type[BaseException], ...] = (TargetPendoError, *SINGER_INPUT_ERRORS)


# The SDK's private and final hooks are in sdk_hooks.py. (The docstring is `--about`'s text.)
class TargetPendo(TargetHooks):
    """Sync Singer streams into Pendo."""

    name = "target-pendo"
    package_name = "target-pendo"  # its version (--version, --about) is pyproject's, installed

    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        *Target.capabilities,
        PluginCapabilities.ACTIVATE_VERSION,
        PluginCapabilities.BATCH,
    ]
    # Inert settings the SDK adds with those two (versions are always followed; a tap's batches).
    _CAPABILITY_SETTINGS_LEFT_OUT = ("process_activate_version_messages", "batch_config")

    config_jsonschema = declared_schema()

    message_reader_class = LineCountingReader

    @property
    def _reader(self) -> LineCountingReader:
        reader = self.message_reader
        assert isinstance(reader, LineCountingReader)
        return reader

    def __init__(self, *args: Any, full_resync: bool = False, **kwargs: Any) -> None:
        """`full_resync`: the CLI flag `--full-resync`, over the setting of the same name."""
        self._started_at = time.monotonic()
        # Read by the signal handler, which the SDK installs inside super().__init__.
        self._stop_signal: int | None = None
        self._settling = False  # the input is read: a signal no longer interrupts the run
        self._state_watermarks: dict[int, int] = {}  # sink id -> rows it had at the last STATE
        quiet_sdk_chatter(self.name)  # logging setup: before the SDK's first line
        # The SDK installs its handlers in __init__; `listen` puts these back, so a program
        # hosting the target (a test, a worker process) keeps its own.
        self._previous_handlers = {
            sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        super().__init__(*args, **kwargs)
        # Sinks drain on their own threads; the SDK's joblib pool once hung at exit on SIGTERM.
        self.max_parallelism = 1
        self.settings = parse_settings(self.config)
        if full_resync:
            self.settings = dataclasses.replace(self.settings, full_resync=True)
        for warning in key_region_warnings(self.settings):
            self.logger.warning(warning)
        self.run_context = RunContext.create(self.settings)
        self.progress_monitor = ProgressMonitor.attach(
            self.run_context,
            interval=PendoSink.PROGRESS_EVERY_SECONDS,
            lines_read=lambda: getattr(getattr(self, "message_reader", None), "line_number", 0),
            logger=self.logger,
        )
        for run_id in self.run_context.abandoned_runs:
            self.logger.warning(
                "Run %s stopped without finishing (killed?); it is marked 'abandoned' in the "
                "ledger. Its calls then in flight are sent again and counted 'in doubt'.",
                run_id,
            )

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, Any]) -> None:
        """The SDK's built-in settings, but for the two inert ones (see `capabilities`)."""
        properties = config_jsonschema["properties"]
        left_out = [n for n in cls._CAPABILITY_SETTINGS_LEFT_OUT if n not in properties]
        super().append_builtin_config(config_jsonschema)
        for name in left_out:
            properties.pop(name, None)

    @classmethod
    def run_sync(
        cls,
        config: dict[str, Any],
        *,
        parse_env: bool,
        file_input: IO[str] | None,
        full_resync: bool,
    ) -> None:
        """A sync as the CLI starts it: the `--config` settings, then stdin or `--input`."""
        target = cls(
            config=config, validate_config=True, parse_env_config=parse_env, full_resync=full_resync
        )
        target.listen(file_input)

    @classmethod
    def environment_settings(cls) -> dict[str, Any]:
        """`--config ENV`: TARGET_PENDO_* typed by the schema (the SDK's reader misreads them)."""
        return read_environment(config_schema())

    def prepared_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Meltano's numbers-as-text typed, inert SDK settings refused, before the schema check."""
        return prepare_config(config, config_schema())

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

    def get_sink(
        self,
        stream_name: str,
        *,
        record: dict[str, Any] | None = None,
        schema: dict[str, Any] | None = None,
        key_properties: Sequence[str] | None = None,
    ) -> Sink:
        """A new SCHEMA settles the old sink's rows first: older values never overwrite newer."""
        existing = self.active_sink(stream_name)
        if (
            schema is not None
            and isinstance(existing, PendoSink)
            and (existing.original_schema != schema or existing.key_properties != key_properties)
        ):
            self.drain_one(existing)
            existing.wait_drained()
            existing.replaced = True
        return super().get_sink(
            stream_name, record=record, schema=schema, key_properties=key_properties
        )

    def check_record_message(self, message_dict: dict[str, Any]) -> None:
        """A RECORD without a record object names its line; a full-table version is noted."""
        self.assert_line_requires(message_dict, requires={"stream", "record"})
        record = message_dict["record"]
        if not isinstance(record, dict):
            kinds = {type(None): "null", list: "a list", str: "a string", bool: "a boolean"}
            kind = kinds.get(type(record), "a number")
            raise self._reader.fail(
                f"the RECORD of stream {message_dict['stream']!r} has no record object "
                f"(got {kind}); the tap must send each row as a JSON object"
            )
        version = message_dict.get("version")
        if version is not None:
            self.run_context.streams[message_dict["stream"]].versions.with_records.add(version)

    def state_message_read(self) -> None:
        """STATE covers the rows before it: remember how many each sink had at this point."""
        self._state_watermarks = {id(s): s.received_rows for s in self.run_context.sinks}

    def check_activate_version_message(self, message_dict: dict[str, Any]) -> None:
        """A bad ACTIVATE_VERSION names its line; the version is noted (see versions.py)."""
        self.assert_line_requires(message_dict, requires={"stream", "version"})
        stream, version = self._stream_of("ACTIVATE_VERSION", message_dict), message_dict["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise self._reader.fail(
                f"ACTIVATE_VERSION of stream {stream!r} has version {version!r}, not an integer"
            )
        self.run_context.streams[stream].versions.activate(version)

    def batch_record_messages(self, message_dict: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Each row of a BATCH message goes the way a RECORD goes, so the same guarantees hold."""
        self.assert_line_requires(message_dict, requires={"stream", "encoding", "manifest"})
        stream = self._stream_of("BATCH", message_dict)
        version = message_dict.get("version")
        for record in read_batch_files(stream, message_dict, self._reader.line_number):
            message = {"type": "RECORD", "stream": stream, "record": record}
            yield message if version is None else {**message, "version": version}

    def _stream_of(self, kind: str, message_dict: dict[str, Any]) -> str:
        """The stream a message is about, which must have had its SCHEMA."""
        stream: str = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            raise self._reader.fail(f"{kind} for stream {stream!r} before its SCHEMA")
        return stream

    def state_may_be_written(self) -> bool:
        """STATE only after every queued batch of every sink has its outcome (a failed batch
        raises here). A dry run writes none: the real run would then skip the rows."""
        for sink in self.run_context.sinks:
            sink.wait_drained()
        if self.settings.dry_run:
            self.logger.info("Dry run: STATE not written (nothing was sent).")
        return not self.settings.dry_run

    def process_endofpipe(self) -> None:
        self.run_context.input_complete = True  # a stop on a signal does not come through here
        self.logger.info(
            "Input read to its end (%d lines); settling the rows still on their way to Pendo.",
            self._reader.line_number,
        )
        super().process_endofpipe()

    def on_stop_signal(self, signum: int) -> None:
        """SIGTERM / SIGINT, between two bytecodes of the main thread: no lock, no wait; it
        raises and `listen` stops in order (`_stop_on_signal`). A second signal exits at once."""
        if self._stop_signal is not None:
            os._exit(128 + signum)  # calls then on the wire stay marked in flight: in doubt
        self._stop_signal = signum
        if not self._settling:
            raise StopSignal(signum)

    def _stop_on_signal(self, signum: int) -> RunStopped:
        """Stop reading, let the calls on the wire finish (each within `request_timeout`),
        settle what was answered, and write STATE only if every row before it is settled."""
        self._settling = True
        run = self.run_context
        name = signal.Signals(signum).name
        self.logger.warning(
            "Received %s: no more input is read and nothing more is sent; waiting for the calls "
            "on the wire (at most request_timeout=%gs).",
            name,
            self.settings.request_timeout,
        )
        run.client.stop()
        for sink in run.sinks:
            sink.stop_draining(cancel=True)
        settled = all(s.settled_rows >= self._state_watermarks.get(id(s), 0) for s in run.sinks)
        unsent = run.unsent_rows()
        state = self.latest_state if settled and not self.settings.dry_run else None
        if state:
            self.write_state_now(copy.deepcopy(state))
        self.finish(stopped=name, unsent=unsent)
        covered = (
            "STATE was written for the rows settled before it"
            if state
            else "no STATE was written past the rows settled earlier"
        )
        return RunStopped(
            f"stopped by {name}: {unsent} row(s) read were not settled and stay unsent, and "
            f"{covered}; the next run sends them (calls then on the wire are counted 'in "
            "doubt' if they got no answer)",
            128 + signum,
        )

    def read_all_input(self, file_input: IO[str] | None) -> None:
        """Read all input; the report is written and the pool released even when a run fails."""
        try:
            self._listen(file_input)
        finally:
            if threading.current_thread() is threading.main_thread():
                for sig, handler in self._previous_handlers.items():
                    if handler is not None:  # None: set outside Python, cannot be restored
                        signal.signal(sig, handler)

    def _listen(self, file_input: IO[str] | None) -> None:
        source = file_input if file_input is not None else tolerant_stdin()
        self.progress_monitor.input_fraction = input_fraction(source)
        try:
            self.listen_the_sdks_way(source)
        except StopSignal as stop:
            raise self._stop_on_signal(stop.signum) from None
        except BaseException as exc:
            if isinstance(exc, SINGER_INPUT_ERRORS):
                exc.add_note(f"(at input line {getattr(self.message_reader, 'line_number', 0)})")
            self.finish(error=exc)
            raise
        self.finish()
        if over := self.run_context.report.over_rejected(self.settings.max_rejected_fraction):
            raise RejectedRowsAlert(
                f"rejected rows over max_rejected_fraction="
                f"{self.settings.max_rejected_fraction:g} in stream(s) {', '.join(over)}; "
                f"every other row was delivered and STATE written. The reasons are in "
                f"{Path(self.settings.state_dir) / 'rejects'}."
            )

    def finish(
        self, error: BaseException | None = None, stopped: str | None = None, unsent: int = 0
    ) -> None:
        """Write the run report, send the alert if the run needs a person, release the pool."""
        self._settling = True
        run = self.run_context
        for sink in run.sinks:
            sink.stop_draining()  # nothing may still be sending when the pool closes
        progress = self.progress_monitor
        progress.stop()  # no progress line (or live line) after the summary
        stats = run.client.stats
        run.report.set_http(dict(stats.stream_calls), dict(stats.stream_retries))
        status = RunStatus.SUCCEEDED if error is None else RunStatus.FAILED
        status = RunStatus.STOPPED if stopped else status
        in_flight = run.client.in_flight()
        end = ReportDocument(
            status=status,
            dry_run=self.settings.dry_run,
            error=run.client.redact(str(error)) if isinstance(error, STOPPING_ERRORS) else None,
            signal=stopped,
            unsent_rows=unsent,
            http_calls=dict(stats.calls),
            retries=stats.retries,
            retries_by_cause={f"{s}: {c}": n for (s, c), n in stats.retry_causes.items()},
            calls_in_doubt=stats.in_doubt,
            pacing={
                endpoint: Pacing(
                    max_rate=round(p.max_rate, 1),
                    rate=round(p.rate, 1),
                    throttled=p.throttled,
                    in_flight_peak=in_flight[endpoint].peak,
                    round_trip_ms=round((in_flight[endpoint].round_trip or 0) * 1000, 1),
                )
                for endpoint, p in run.client.pacing().items()
            },
            timeline=progress.timeline.document(),
        )
        document = run.report.document(end)
        for line in [*progress.retry_summary(), *document.lines()]:
            self.logger.info("%s", line)
        if rejected := run.report.rejected():  # they need a person: how many, and where
            self.logger.warning(
                "%d row(s) rejected (%s): each with its reason in %s/<stream>/<day>.jsonl; "
                "grouped by reason: target-pendo report %s",
                sum(rejected.values()),
                ", ".join(f"'{name}' {n}" for name, n in rejected.items()),
                Path(self.settings.state_dir).resolve() / "rejects",
                run.run_id,
            )
        latency = progress.latency_summary()
        self.logger.info(
            "%s: %s%s; retries: %d; attempts that got no answer: %d",
            "Calls (dry run: writes recorded, not sent)" if self.settings.dry_run else "HTTP calls",
            sum(stats.calls.values()),
            f" ({latency})" if latency else "",
            stats.retries,
            stats.in_doubt,
        )
        for endpoint, pace in document.pacing.items():
            if pace.throttled or pace.max_rate > 10:
                self.logger.info(
                    "Pacing of %s calls: reached %.0f/s (allowed now %.0f/s), up to %d calls "
                    "in flight at %.0f ms round trips; %d answered 429.",
                    endpoint,
                    pace.max_rate,
                    pace.rate,
                    pace.in_flight_peak,
                    pace.round_trip_ms,
                    pace.throttled,
                )
        path = run.report.path(self.settings.state_dir)
        try:
            with self._after_failure(error or stopped, "writing the run report"):
                run.report.write(self.settings.state_dir, document, run.client.redact)
                self.logger.info("Run report written to %s", path)
            with self._after_failure(error or stopped, "recording the run's end in the ledger"):
                run.ledger.finish_run(run.run_id, status, document.as_dict())
            if status is RunStatus.SUCCEEDED:
                self._prune_history()
                self.logger.info(
                    "Run %s finished in %s: succeeded%s.",
                    run.run_id,
                    age(time.monotonic() - self._started_at),
                    " (dry run: nothing sent)" if self.settings.dry_run else "",
                )
        finally:
            self._alert(status, error, document.as_dict(), path)
            with self._after_failure(error or stopped, "closing the run's files and connections"):
                run.close()

    def _prune_history(self) -> None:
        """A bounded step of the retention window; a failure is a warning, never the outcome."""
        days, run = self.settings.retention_days, self.run_context
        if not days or self.settings.dry_run:
            return
        try:
            pruned = retention.prune(run.ledger, self.settings.state_dir, days, bounded=True)
        except (TargetPendoError, OSError) as exc:
            self.logger.warning(
                "Could not prune history older than %g days (retention_days): %s; the next "
                "run (or 'target-pendo ledger prune') tries again.",
                days,
                exc,
            )
            return
        if pruned.runs or pruned.files:
            self.logger.info("%s.", pruned.describe(days).capitalize())

    @contextlib.contextmanager
    def _after_failure(self, error: BaseException | str | None, doing: str) -> Iterator[None]:
        """A step of ending a run. After a failure or a signal (`error`), its own failure must
        not replace the run's one error line: it goes to DEBUG (the next run marks it abandoned)."""
        try:
            yield
        except Exception as exc:
            if error is None:
                raise
            self.logger.debug("After the run failed, %s failed too: %s", doing, exc, exc_info=True)

    def _alert(
        self, status: str, error: BaseException | None, extra: dict[str, Any], path: Path
    ) -> None:
        """One webhook message for a run that failed, stopped or rejected too much; never raises."""
        url = self.settings.alert_webhook_url
        over = self.run_context.report.over_rejected(self.settings.max_rejected_fraction)
        why = alert_trigger(status, over)
        if not url or why is None:
            return
        if self.settings.dry_run:
            self.logger.info("Dry run: no alert sent to the webhook (it sends nothing).")
            return
        try:
            payload = build_alert(
                self.run_context.report.as_dict(extra),
                why=why,
                over_rejected=over,
                max_rejected_fraction=self.settings.max_rejected_fraction,
                report_path=str(path.resolve()),
                error=error,
                redact=self.run_context.client.redact,
                unsent_rows=self.run_context.unsent_rows(),
            )
        except Exception:  # a bug here must not change the run's outcome
            self.logger.warning("Could not build the alert; none was sent.", exc_info=True)
            return
        send_alert(url, payload, network=self.run_context.network)


def config_schema() -> dict[str, Any]:
    """The full settings schema, the SDK's built-in settings included (what `--about` shows)."""
    schema = copy.deepcopy(TargetPendo.config_jsonschema)
    TargetPendo.append_builtin_config(schema)
    return schema
