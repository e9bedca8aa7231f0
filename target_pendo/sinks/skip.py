"""SkipSink: where unmapped streams go when `unmapped_streams` is `skip`: counted, not sent."""

from __future__ import annotations

from target_pendo.sinks.base import PendoSink


class SkipSink(PendoSink):
    SYNC = "skipped"

    def process_record(self, record: dict, context: dict) -> None:
        self.count_received(context)

    def drain(self, context: dict) -> None:
        received = context.get("received", 0)
        self.run.report.add(self.stream_name, self.SYNC, received=received, skipped=received)
