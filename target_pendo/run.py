"""What one run shares between the target and its sinks: settings, client, rejects, report.

The target builds it once; sinks receive it and never look further up.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from target_pendo.client import PendoClient
from target_pendo.rejects import RowLog
from target_pendo.report import RunReport
from target_pendo.settings import Settings


@dataclass
class RunContext:
    settings: Settings
    client: PendoClient
    rejects: RowLog
    unknown: RowLog
    report: RunReport
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    _schema_lock: threading.Lock = field(default_factory=threading.Lock)

    def field_schema(self, kind: str) -> dict[str, Any]:
        """Pendo's field schema for a kind, read once per run and shared by its streams."""
        with self._schema_lock:
            if kind not in self._schemas:
                self._schemas[kind] = self.client.get_field_schema(kind)
            return self._schemas[kind]

    @classmethod
    def create(cls, settings: Settings) -> RunContext:
        run_id = uuid.uuid4().hex[:12]
        client = PendoClient(
            settings.api_url,
            track_event_secret=settings.track_event_secret,
            integration_key=settings.integration_key,
            max_concurrency=settings.max_concurrency,
            max_requests_per_second=settings.max_requests_per_second,
            request_timeout=settings.request_timeout,
            max_retry_seconds=settings.max_retry_seconds,
        )
        return cls(
            settings=settings,
            client=client,
            rejects=RowLog(settings.state_dir, "rejects", run_id, client.redact),
            unknown=RowLog(settings.state_dir, "unknown", run_id, client.redact),
            report=RunReport(run_id=run_id),
            run_id=run_id,
        )

    def close(self) -> None:
        self.client.close()
        self.rejects.close()
        self.unknown.close()
