"""EventsSink: each row becomes one Pendo Track event (Pendo has no batch Track route).

Rows are mapped as they arrive, so a row that cannot be sent is rejected at once; the batch is
sent when the SDK drains the sink, and `process_batch` returns only when every row of the
batch was accepted by Pendo or written to the rejects file. That is what lets the SDK's STATE,
emitted after a full drain, follow only data Pendo holds.
"""

from __future__ import annotations

import time
from typing import Any

from target_pendo.client import CallResult, Outcome
from target_pendo.mapping import EventPlan, RowRejected, dumps
from target_pendo.settings import EventsSpec
from target_pendo.sinks.base import PendoSink

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


class EventsSink(PendoSink):
    SYNC = "events"
    # Each row is its own HTTP call, so the batch size only sets how often STATE can move and
    # how many rows wait in memory; big enough to keep every worker busy between drains.
    MAX_SIZE_DEFAULT = 2000

    def __init__(self, target: Any, stream_name: str, schema: dict, key_properties: Any) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        spec = self.run.settings.spec_for(stream_name)
        assert isinstance(spec, EventsSpec)
        self.plan = EventPlan.build(spec, (self.schema.get("properties") or {}).keys())
        self._uses_send_time = spec.timestamp_column is None

    def process_record(self, record: dict, context: dict) -> None:
        context["received"] = context.get("received", 0) + 1
        violation = self.schema_violation(record)
        if violation is not None:
            self.reject(record, *violation)
            return
        try:
            body = self.plan.track_body(record, now_ms=0)
        except RowRejected as exc:
            self.reject(record, exc.field, exc.reason)
            return
        context.setdefault("items", []).append((body, record))

    def process_batch(self, context: dict) -> None:
        items: list[tuple[dict[str, Any], dict]] = context.get("items", [])
        report, stream = self.run.report, self.stream_name
        report.add(stream, self.SYNC, received=context.get("received", 0))
        if not items:
            return
        now_ms = int(time.time() * 1000)
        old = 0
        bodies = []
        for body, _record in items:
            if self._uses_send_time:
                body["timestamp"] = now_ms
            elif now_ms - body["timestamp"] > SEVEN_DAYS_MS:
                old += 1
            bodies.append(dumps(body))
        if old:
            report.add(stream, self.SYNC, old_events=old)
            self.logger.warning(
                "%d event(s) in this batch of stream '%s' are more than 7 days old: Pendo "
                "accepts them but does not process them (they will not show in Pendo).",
                old,
                stream,
            )

        def on_result(index: int, result: CallResult) -> None:
            if result.outcome is Outcome.ACCEPTED:
                report.add(stream, self.SYNC, sent=1)
            elif result.outcome is Outcome.REJECTED:
                self.reject(
                    items[index][1],
                    None,
                    f"Pendo refused the event (HTTP {result.status}): {result.reason}",
                )

        self.run.client.send_tracks(bodies, on_result=on_result)
