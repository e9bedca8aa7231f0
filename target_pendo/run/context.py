"""What one run shares between the target and its sinks, built once by the target; sinks
receive it and never look further up."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from target_pendo import private
from target_pendo.config import Settings
from target_pendo.ledger import Ledger
from target_pendo.network import Network
from target_pendo.observe.drains import Drains
from target_pendo.observe.redact import Redactor, install_log_redaction
from target_pendo.observe.report import RunReport
from target_pendo.pendo.calllog import CallLog
from target_pendo.pendo.client import PendoClient
from target_pendo.pendo.dryrun import RecordingAdapter
from target_pendo.run.recorder import OutcomeRecorder
from target_pendo.run.rejects import RowLog
from target_pendo.run.workers import Workers
from target_pendo.singer.versions import FullTableVersions


@dataclass
class StreamRunState:
    """Per stream, for its sinks: full-table versions seen, ids the source marked deleted."""

    versions: FullTableVersions = field(default_factory=FullTableVersions)
    deleted_ids: list[str] = field(default_factory=list)


@dataclass
class RunContext:
    settings: Settings
    client: PendoClient
    workers: Workers  # every sink's calls share these threads
    recorder: OutcomeRecorder  # the only writer of what became of a row
    report: RunReport
    ledger: Ledger
    run_id: str  # set by `create`: sortable start time plus a random tail
    # All input read (not on SIGTERM): only then may a full-table sync say which ids left.
    input_complete: bool = False
    sinks: list[Any] = field(default_factory=list)  # every sink of the run, to wait on
    abandoned_runs: list[str] = field(default_factory=list)  # runs found killed, now marked
    payloads: RowLog | None = None  # a dry run's record of what it would send
    network: Network = field(default_factory=Network)  # proxies and trust, for every call out
    drains: Drains = field(default_factory=Drains)  # batches under way, for progress
    # per stream, shared by its sinks (a SCHEMA change makes a new one); main thread only
    streams: defaultdict[str, StreamRunState] = field(
        default_factory=lambda: defaultdict(StreamRunState)
    )
    _schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    _schema_lock: threading.Lock = field(default_factory=threading.Lock)

    def field_schema(self, kind: str, *, fresh: bool = False) -> dict[str, Any]:
        """Pendo's field schema for a kind, read once per run; `fresh`: read it again, outside
        the lock (workers re-read after 400s, and one kind's retries must not hold the rest)."""
        if fresh:
            schema = self.client.get_field_schema(kind)
            with self._schema_lock:
                self._schemas[kind] = schema
            return schema
        with self._schema_lock:
            if kind not in self._schemas:
                self._schemas[kind] = self.client.get_field_schema(kind)
            return self._schemas[kind]

    def unsent_rows(self) -> int:
        return sum(s.received_rows - s.settled_rows for s in self.sinks)

    @classmethod
    def create(cls, settings: Settings) -> RunContext:
        now = dt.datetime.now(dt.UTC)
        run_id = f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}-{uuid.uuid4().hex[:6]}"
        network = Network.from_environment()
        private.warn_if_shared(Path(settings.state_dir))
        ledger = Ledger(settings.resolved_ledger_url, read_only=settings.dry_run)
        redact = Redactor([*settings.secrets, *network.secrets()])
        install_log_redaction(redact)
        calls = Path(settings.state_dir) / "calls" / f"{run_id}.jsonl"
        call_log = CallLog(calls, redact) if settings.call_log else None
        payloads: RowLog | None = None
        if settings.dry_run:
            # Writes are recorded by the adapter: nothing paced, one worker keeps row order.
            payloads = RowLog(settings.state_dir, f"dry_run/{run_id}", run_id, redact)
        client = PendoClient(
            settings.api_url,
            track_url=settings.track_url,
            track_event_secret=settings.track_event_secret,
            integration_key=settings.integration_key,
            max_requests_per_second=0 if payloads else settings.max_requests_per_second,
            max_concurrency=1 if payloads else settings.max_concurrency,
            request_timeout=settings.request_timeout,
            max_retry_seconds=settings.max_retry_seconds,
            redact=redact,
            call_log=call_log,
            adapter=(lambda: RecordingAdapter(payloads, redact, network)) if payloads else None,
            sends=payloads is None,
            network=network,
        )
        abandoned = ledger.start_run(run_id, settings.full_resync)
        report = RunReport(run_id=run_id)
        recorder = OutcomeRecorder(
            run_id=run_id,
            ledger=ledger,
            report=report,
            rejects=RowLog(
                settings.state_dir,
                "rejects",
                run_id,
                client.redact,
                include_values=settings.rejects_include_values,
                daily=True,
            ),
            unknown=RowLog(settings.state_dir, "unknown", run_id, client.redact, daily=True),
            redact=client.redact,
            include_values=settings.rejects_include_values,
        )
        return cls(
            abandoned_runs=abandoned,
            network=network,
            settings=settings,
            client=client,
            workers=Workers(1 if payloads else settings.max_concurrency),
            payloads=payloads,
            recorder=recorder,
            report=report,
            ledger=ledger,
            run_id=run_id,
        )

    def close(self) -> None:
        self.workers.close()  # first: no call may still be running when the client closes
        self.client.close()
        if self.payloads is not None:
            self.payloads.close()
        self.recorder.close()  # the rejects and unknown-id files
        self.ledger.close()
