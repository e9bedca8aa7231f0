"""Track calls as the events sink makes them (`sinks/track_calls.py`), for client tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from target_pendo.pendo.answers import CallResult
from target_pendo.pendo.client import PendoClient
from target_pendo.sinks.track_calls import TrackNote
from target_pendo.sinks.track_calls import send_tracks as send_on
from target_pendo.workers import Workers

ResultCallback = Callable[[int, CallResult], None]
SendCallback = Callable[[int], None]


def note_with(on_result: ResultCallback | None, on_send: SendCallback | None) -> TrackNote:
    """A `note` made of one callback per answer and one per call going out."""

    def note(answered: Sequence[tuple[int, CallResult]], sending: int | None) -> None:
        for index, result in answered:
            if on_result is not None:
                on_result(index, result)
        if sending is not None and on_send is not None:
            on_send(sending)

    return note


def send_tracks(
    client: PendoClient,
    bodies: Sequence[bytes],
    on_result: ResultCallback | None = None,
    on_send: SendCallback | None = None,
    *,
    stream: str | None = None,
    concurrency: int = 4,
) -> list[CallResult]:
    """Send `bodies` on `concurrency` workers, as a run would."""
    workers = Workers(concurrency)
    try:
        return send_on(client, workers, bodies, note_with(on_result, on_send), stream=stream)
    finally:
        workers.close()
