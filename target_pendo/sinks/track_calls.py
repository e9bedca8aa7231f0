"""The Track calls of one events batch, spread over the run's workers (Pendo's Track API takes
one event a call, so a batch is many calls side by side).

It sits beside the events sink because the sink owns what each answer means for its rows:
each worker tells the sink, through `note(answered, sending)`, the answers it got since it last
reported and the call it is about to put on the wire, so the sink records each answer and
marks the next call in flight in one ledger transaction, before the bytes leave.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence

from target_pendo.errors import PendoError, StopRequested
from target_pendo.pendo.answers import CallOutcome, CallResult
from target_pendo.pendo.client import PendoClient
from target_pendo.workers import Workers

# `note(answered, sending)`: a worker's answers since it last reported, and the call it is
# about to put on the wire (None when it has no more).
TrackNote = Callable[[Sequence[tuple[int, CallResult]], int | None], None]


def _track_one(
    client: PendoClient,
    index: int,
    body: bytes,
    answered: list[tuple[int, CallResult]],
    note: TrackNote,
    stream: str | None,
) -> CallResult:
    """One Track call. `note(answered, index)` runs right before it goes on the wire: the
    worker's previous answers and this call's in-flight mark in one go (one ledger
    transaction instead of two per call). A call that went out and then failed is noted at
    once: not sent, or unanswered (in doubt)."""
    sent = False

    def before_send() -> None:
        nonlocal sent
        note(answered, index)
        answered.clear()
        sent = True

    try:
        return client.track(body, stream=stream, before_send=before_send)
    except (PendoError, StopRequested) as exc:
        if sent:
            doubt = bool(getattr(exc, "in_doubt", False))
            outcome = CallOutcome.UNANSWERED if doubt else CallOutcome.NOT_SENT
            note([(index, CallResult(outcome, 0, client.redact(str(exc))[:300]))], None)
        raise


def send_tracks(
    client: PendoClient,
    workers: Workers,
    bodies: Sequence[bytes],
    note: TrackNote,
    *,
    stream: str | None = None,
) -> list[CallResult]:
    """POST each body to the Track host (one event a call), as many at once as `workers` has.

    Returns one result per body, in order. `note` must be thread-safe. A fatal error (bad key,
    Pendo down past the retry budget, a stop request) stops the remaining sends and is raised
    after the running ones end; the answers got until then are still noted.
    """
    results: list[CallResult | None] = [None] * len(bodies)
    counter = itertools.count()

    def loop(failed: threading.Event) -> None:
        answered: list[tuple[int, CallResult]] = []
        try:
            while not failed.is_set():
                index = next(counter)  # atomic: count() is C code under the GIL
                if index >= len(bodies):
                    break
                result = _track_one(client, index, bodies[index], answered, note, stream)
                results[index] = result
                answered.append((index, result))
        finally:
            if answered:
                note(answered, None)

    workers.spread(len(bodies), loop)
    return [r if r is not None else CallResult(CallOutcome.NOT_SENT) for r in results]
