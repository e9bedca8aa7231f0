"""What every sink shares: the run context, its stream's recorder, the drain thread, and
record validation (a row that violates its schema is rejected, not the whole run failed)."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import TYPE_CHECKING, Any

from singer_sdk import metrics
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_pendo.run.recorder import StreamRecorder
from target_pendo.sdk_hooks import SinkHooks
from target_pendo.singer.validation import compiled_or_none, violation_field

if TYPE_CHECKING:
    from target_pendo.run.context import RunContext


def _outcome_of(drain: Future[None]) -> None:
    """Wait for a drain on the main thread, in short waits (a signal handler runs only when the
    main thread runs Python code, which a wait without a timeout never does); re-raise failures."""
    while not drain.done():
        wait_for([drain], timeout=0.2)
    drain.result()


class PendoSink(SinkHooks):
    """Base of the sinks: subclasses set `sync` and implement `drain`; row fates go through
    `outcomes` only. Batches drain in order on the sink's own thread (the next batch is read
    meanwhile), at most MAX_PENDING_DRAINS wait, and the target waits for every drain before
    it writes STATE: STATE still only follows rows with an outcome."""

    sync: str = "events"  # the stream's kind in the report
    outcomes: StreamRecorder  # the stream's recorder, from `setup`
    PROGRESS_EVERY_SECONDS = 30.0
    MAX_PENDING_DRAINS = 2

    def __init__(
        self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any
    ) -> None:
        self.run: RunContext = target.run_context
        super().__init__(target, stream_name, schema, key_properties)
        self.key_columns: list[str] = list(self.key_properties)  # what `row_key` shows
        self.received_rows = 0  # rows handed to this sink
        self.settled_rows = 0  # rows of batches whose every row has its outcome
        self.replaced = False  # a SCHEMA change gave the stream a new sink
        self._drainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drain")
        self._pending: deque[Future[None]] = deque()
        self._failed = False
        # Rows Pendo accepted, in the SDK's METRIC lines orchestrators already parse.
        self._sent_metric = metrics.record_counter(
            stream_name, endpoint="pendo", log_interval=self.PROGRESS_EVERY_SECONDS
        )
        self._sent_reported = 0

    def setup(self) -> None:
        """The SDK's hook for a sink's I/O, before any row. One writer per stream and ledger: the
        stream is leased before its state is read or written, and only then counts in the run."""
        run = self.run
        run.ledger.lease_stream(self.stream_name, run.run_id, run.settings.ledger_wait_seconds)
        self.outcomes = StreamRecorder(run.recorder, self.stream_name, self.sync, self.row_key)
        run.sinks.append(self)

    def process_batch(self, context: dict[str, Any]) -> None:
        """Queue the batch for this sink's drain thread; wait only when too many are queued."""
        while len(self._pending) >= self.MAX_PENDING_DRAINS:
            _outcome_of(self._pending.popleft())  # re-raises a failed drain here
        self._pending.append(self._drainer.submit(self._timed_drain, context))

    def wait_drained(self) -> None:
        while self._pending:
            _outcome_of(self._pending.popleft())

    def stop_draining(self, cancel: bool = False) -> None:
        """After a failure elsewhere: let queued drains end quietly (`cancel`: drop unstarted)."""
        while self._pending:
            future = self._pending.popleft()
            if cancel and future.cancel():
                continue
            with contextlib.suppress(BaseException):  # the run is failing: first error wins
                future.result()
        self._drainer.shutdown(wait=True)

    def clean_up(self) -> None:
        self.wait_drained()
        self._sent_metric.exit()  # the last count, even if under the interval
        super().clean_up()

    def _timed_drain(self, context: dict[str, Any]) -> None:
        """Times each drain for the report; tells `drains` (progress) when it starts and ends."""
        if self._failed:
            raise RuntimeError(f"stream '{self.stream_name}': an earlier batch failed")
        started = time.monotonic()
        received = context.get("received", 0)
        self.run.drains.started(self.stream_name, received)
        try:
            self.run.report.add(self.stream_name, self.sync, received=received)
            self.drain(context)
            self.settled_rows += received
        except BaseException:
            self._failed = True
            raise
        finally:
            self.run.report.add_seconds(self.stream_name, self.sync, time.monotonic() - started)
            counts = self.run.report.counts(self.stream_name)
            self._sent_metric.increment(counts.sent - self._sent_reported)
            self._sent_reported = counts.sent
            self.run.drains.ended(self.stream_name)

    def drain(self, context: dict[str, Any]) -> None:
        """Send one batch; return only when each of its rows has an outcome."""
        raise NotImplementedError

    def count_received(self, context: dict[str, Any]) -> None:
        context["received"] = context.get("received", 0) + 1
        self.received_rows += 1

    def row_key(self, record: dict[str, Any]) -> Any:
        """The row's key (as the rejects file shows it); None without one."""
        if len(self.key_columns) == 1:
            return record.get(self.key_columns[0])
        return {k: record.get(k) for k in self.key_columns} or None

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """A compiled validator (see validation.py); the SDK's when the schema won't compile."""
        if not self.validate_schema:
            return None
        return compiled_or_none(self.schema) or super().get_validator()

    def schema_violation(self, record: dict[str, Any]) -> tuple[str | None, str] | None:
        if (validator := self.validator) is None:
            return None
        try:
            validator.validate(record)
        except InvalidRecord as exc:
            field = violation_field(exc)
            where = f"column '{field}'" if field else "record"
            return field, f"{where} does not match the stream's schema: {exc.error_message}"
        return None
