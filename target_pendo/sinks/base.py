"""What every target-pendo sink shares: the run context, its stream's recorder, the drain
thread, and record validation: with `validate_records` on, a row that violates its stream's
JSON schema is rejected (field and reason) instead of failing the whole run.
"""

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


# How often the main thread, waiting on a drain, wakes to run Python code.
SIGNAL_CHECK_SECONDS = 0.2


def _outcome_of(drain: Future[None]) -> None:
    """Wait for a drain on the main thread; re-raise its failure. In short waits: the kernel
    may hand SIGTERM to any thread of the process, and Python runs its handler on the main
    thread only when that thread next runs Python code, which a wait without a timeout never
    does while the drain's calls sit in retry waits (up to max_retry_seconds)."""
    while not drain.done():
        wait_for([drain], timeout=SIGNAL_CHECK_SECONDS)
    drain.result()


class PendoSink(SinkHooks):
    """Base of the sinks; subclasses set `sync` (the stream's kind in the report, before this
    __init__) and implement `drain`. What became of each row goes through `outcomes` only.

    Batches are drained on the sink's own thread, so reading and mapping the next batch goes
    on while Pendo answers for this one (on 2 cores that overlap is most of the throughput).
    Drains of one sink run in order, at most MAX_PENDING_DRAINS wait (memory stays bounded),
    and the target waits for every drain before it writes STATE
    (`TargetPendo.state_may_be_written`): STATE still only follows rows with an outcome.
    """

    sync: str = "events"
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
        # Rows Pendo accepted, as an SDK `record_count` metric tagged endpoint "pendo", so
        # progress shows in the same METRIC lines orchestrators already parse.
        self._sent_metric = metrics.record_counter(
            stream_name, endpoint="pendo", log_interval=self.PROGRESS_EVERY_SECONDS
        )
        self._sent_reported = 0

    def setup(self) -> None:
        """The SDK's hook for a sink's I/O, run once the sink is built and before any row.

        One writer per stream and ledger: before this sink reads or writes the stream's state,
        no other run may be sending it (a re-take by this run does nothing). Only then does the
        stream count in the run (its recorder, the sinks the target waits for). What this
        raises ends the run on its one error line (the SDK's own line before it is lowered to
        DEBUG: ``observe/logs.py``)."""
        self.run.ledger.lease_stream(
            self.stream_name, self.run.run_id, self.run.settings.ledger_wait_seconds
        )
        self.outcomes = self.run.recorder.stream(self.stream_name, self.sync)
        self.run.sinks.append(self)

    def process_batch(self, context: dict[str, Any]) -> None:
        """Queue the batch for this sink's drain thread; wait only when too many are queued."""
        while len(self._pending) >= self.MAX_PENDING_DRAINS:
            _outcome_of(self._pending.popleft())  # re-raises a failed drain here
        self._pending.append(self._drainer.submit(self._timed_drain, context))

    def wait_drained(self) -> None:
        """Return when every queued batch has its outcome; re-raise the first failure."""
        while self._pending:
            _outcome_of(self._pending.popleft())

    def stop_draining(self, cancel: bool = False) -> None:
        """After a failure elsewhere: let queued drains finish or fail, quietly, and stop.
        With `cancel`, drains not yet started are dropped (their rows stay unsent)."""
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
        """Times each drain for the report, and tells the run's `drains` (what the progress
        monitor reads) when a batch starts and ends."""
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
            now = time.monotonic()
            self.run.report.add_seconds(self.stream_name, self.sync, now - started)
            counts = self.run.report.counts(self.stream_name)
            self._sent_metric.increment(counts.sent - self._sent_reported)
            self._sent_reported = counts.sent
            self.run.drains.ended(self.stream_name)

    def drain(self, context: dict[str, Any]) -> None:
        """Send one batch; return only when each of its rows has an outcome."""
        raise NotImplementedError

    def count_received(self, context: dict[str, Any]) -> None:
        """Count a row handed to this sink: in its batch and in the sink's total."""
        context["received"] = context.get("received", 0) + 1
        self.received_rows += 1

    def row_key(self, record: dict[str, Any]) -> Any:
        """The row's key (as the rejects file shows it); None without one."""
        if not self.key_columns:
            return None
        if len(self.key_columns) == 1:
            return record.get(self.key_columns[0])
        return {k: record.get(k) for k in self.key_columns}

    def reject(
        self,
        record: dict[str, Any],
        field: str | None,
        reason: str,
        *,
        key: str | None = None,
        pending: str | None = None,
    ) -> None:
        """The row to the stream's recorder as rejected, under its key."""
        self.outcomes.reject(record, self.row_key(record), field, reason, key=key, pending=pending)

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """A compiled validator (see validation.py); the SDK's when the schema won't compile."""
        if not self.validate_schema:
            return None
        return compiled_or_none(self.schema) or super().get_validator()

    def schema_violation(self, record: dict[str, Any]) -> tuple[str | None, str] | None:
        """(field, reason) when the record breaks its schema and validation is on."""
        validator = self.validator
        if validator is None:
            return None
        try:
            validator.validate(record)
        except InvalidRecord as exc:
            field = violation_field(exc)
            where = f"column '{field}'" if field else "record"
            return field, f"{where} does not match the stream's schema: {exc.error_message}"
        return None
