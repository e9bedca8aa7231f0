"""SkipSink: where unmapped streams go when `unmapped_streams` is `skip`: counted, not sent."""

from __future__ import annotations

from typing import Any

from target_pendo.sinks.base import PendoSink


class SkipSink(PendoSink):
    sync: str = "skipped"

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self.count_received(context)

    def drain(self, context: dict[str, Any]) -> None:
        self.run.report.add(self.stream_name, self.sync, skipped=context.get("received", 0))
