"""Track calls as the events sink makes them (`sinks/track_calls.py`), for client tests."""

from __future__ import annotations

from collections.abc import Sequence

from target_pendo.pendo.answers import CallResult
from target_pendo.pendo.client import PendoClient
from target_pendo.sinks.track_calls import ResultCallback, SendCallback, note_with
from target_pendo.sinks.track_calls import send_tracks as send_on
from target_pendo.workers import Workers


def send_tracks(
    client: PendoClient,
    bodies: Sequence[bytes],
    on_result: ResultCallback | None = None,
    on_send: SendCallback | None = None,
    *,
    stream: str | None = None,
) -> list[CallResult]:
    """Send `bodies` on `client.max_concurrency` workers, as a run would."""
    workers = Workers(client.max_concurrency)
    try:
        return send_on(client, workers, bodies, note_with(on_result, on_send), stream=stream)
    finally:
        workers.close()
