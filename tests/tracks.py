"""Track calls as the events sink makes them (`sinks/track_calls.py`), for client tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from target_pendo.pendo.answers import CallResult
from target_pendo.pendo.client import PendoClient
from target_pendo.run.workers import Workers
from target_pendo.sinks.track_calls import Answers
from target_pendo.sinks.track_calls import send_tracks as send_on

ResultCallback = Callable[[int, CallResult], None]
SendCallback = Callable[[int], None]


@dataclass
class CallbackRows:
    """`TrackRows` made of one callback per answer and one per call going out."""

    on_result: ResultCallback | None
    on_send: SendCallback | None

    def going_out(self, index: int, answered: Answers) -> None:
        self.answered(answered)
        if self.on_send is not None:
            self.on_send(index)

    def answered(self, answered: Answers) -> None:
        for index, result in answered:
            if self.on_result is not None:
                self.on_result(index, result)


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
        return send_on(client, workers, bodies, CallbackRows(on_result, on_send), stream=stream)
    finally:
        workers.close()
