"""What every target-pendo sink shares: the run context, rejects, and record validation.

Record validation policy: with `validate_records` on (the SDK's default), a row that violates
its stream's JSON schema is *rejected* (rejects file, field and reason) instead of failing the
whole run; the SDK's own per-record date-time parsing is skipped because mapping parses
timestamps itself and reports a bad one against the row.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink

from target_pendo.ledger import RowOutcome

if TYPE_CHECKING:
    from target_pendo.run import RunContext


class PendoSink(BatchSink):
    """Base for the events and objects sinks; subclasses set SYNC and implement hooks."""

    SYNC = "events"
    PROGRESS_EVERY_SECONDS = 30.0

    def __init__(self, target: Any, stream_name: str, schema: dict, key_properties: Any) -> None:
        self.run: RunContext = target.run_context
        super().__init__(target, stream_name, schema, key_properties)
        self._started = time.monotonic()
        self._last_progress = self._started

    def process_batch(self, context: dict) -> None:
        """Times each drain for the report and logs progress on long runs."""
        started = time.monotonic()
        try:
            self.drain(context)
        finally:
            now = time.monotonic()
            self.run.report.add_seconds(self.stream_name, self.SYNC, now - started)
            if now - self._last_progress >= self.PROGRESS_EVERY_SECONDS:
                self._last_progress = now
                counts = self.run.report.counts(self.stream_name)
                self.logger.info(
                    "Progress of stream '%s': %d received, %d sent, %d rejected (%.0f rows/s)",
                    self.stream_name,
                    counts.received,
                    counts.sent,
                    counts.rejected,
                    counts.received / max(now - self._started, 1e-9),
                )

    def drain(self, context: dict) -> None:
        """Send one batch; return only when each of its rows has an outcome."""
        raise NotImplementedError

    # The SDK calls this private hook on every record before `process_record`. We take
    # validation over (see the module docstring) and leave values as the tap sent them.
    def _validate_and_parse(self, record: dict) -> dict:
        return record

    def row_key(self, record: dict) -> Any:
        """The row's Singer key (for rejects and, later, the ledger); None without one."""
        if not self.key_properties:
            return None
        if len(self.key_properties) == 1:
            return record.get(self.key_properties[0])
        return {k: record.get(k) for k in self.key_properties}

    def reject(self, record: dict, field: str | None, reason: str, key: str | None = None) -> None:
        """Write the row to the rejects file; with a ledger `key`, the ledger keeps it as
        rejected (reason, attempts) so a later run that sees it again sends it again."""
        self.run.rejects.reject(self.stream_name, self.row_key(record), field, reason, record)
        self.run.report.add(self.stream_name, self.SYNC, rejected=1)
        if key is not None:
            self.run.ledger.record(
                self.stream_name, self.run.run_id, [RowOutcome(key, "rejected", reason)]
            )

    def schema_violation(self, record: dict) -> tuple[str | None, str] | None:
        """(field, reason) when the record breaks its schema and validation is on."""
        if self._validator is None:
            return None
        try:
            self._validator.validate(record)
        except InvalidRecord as exc:
            cause = exc.__cause__
            path = list(getattr(cause, "absolute_path", []) or [])
            field = ".".join(str(p) for p in path) or None
            where = f"column '{field}'" if field else "record"
            return field, f"{where} does not match the stream's schema: {exc.error_message}"
        return None
