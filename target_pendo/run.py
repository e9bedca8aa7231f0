"""What one run shares between the target and its sinks: settings, client, rejects, report.

The target builds it once; sinks receive it and never look further up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from target_pendo.client import PendoClient
from target_pendo.rejects import RejectsWriter
from target_pendo.report import RunReport
from target_pendo.settings import Settings


@dataclass
class RunContext:
    settings: Settings
    client: PendoClient
    rejects: RejectsWriter
    report: RunReport
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

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
            rejects=RejectsWriter(settings.state_dir, run_id, client.redact),
            report=RunReport(run_id=run_id),
            run_id=run_id,
        )

    def close(self) -> None:
        self.client.close()
        self.rejects.close()
