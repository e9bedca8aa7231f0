"""The Track calls of one events batch, spread over the run's workers (Pendo's Track API takes
one event a call). The sink owns what each answer means for its rows (`TrackRows`). The
crash-safety rule reads top-down in `_track_one`, one call:

1. wait for the call's turn: room on the wire, then the pacer's go (``PendoClient.track_call``);
   a call still waiting has not left, so it is not marked: killed now, it is not in doubt;
2. mark the call in flight, with the worker's answers since it last reported, in one ledger
   transaction, committed before anything else happens (`TrackRows.going_out`);
3. send: the bytes leave at once, no wait left in between; retries keep the mark;
4. the answer is recorded with the worker's next mark (or when the worker ends); a call that
   went out and then failed is recorded at once: not sent, or, when an attempt got no answer
   (`CallEnded.in_doubt`), left in flight, so the next run counts it in doubt.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Protocol

from target_pendo.errors import CallEnded
from target_pendo.pendo.answers import CallOutcome, CallResult
from target_pendo.pendo.client import PendoClient
from target_pendo.run.workers import Workers

# (index of the call in the batch, its result)
Answers = Sequence[tuple[int, CallResult]]


class TrackRows(Protocol):
    """What becomes of a batch's rows as its calls go (the events sink's, which records
    through the run's ``recorder.OutcomeRecorder``). Called from every worker: thread-safe."""

    def going_out(self, index: int, answered: Answers) -> None:
        """Call `index` is about to go on the wire: record `answered` and mark the call in
        flight, committed when this returns (one ledger transaction)."""

    def answered(self, answered: Answers) -> None:
        """Record `answered`: a worker's last answers, or a call that failed once out."""


def _track_one(
    client: PendoClient,
    index: int,
    body: bytes,
    answered: list[tuple[int, CallResult]],
    rows: TrackRows,
    stream: str | None,
) -> CallResult:
    """One Track call, in the module's four steps. `answered` is the worker's answers not
    recorded yet: they go with this call's mark (one transaction instead of two per call)."""
    with client.track_call(body, stream=stream) as send:  # 1. its turn: nothing left yet
        rows.going_out(index, answered)  # 2. marked in flight, committed
        answered.clear()
        try:
            return send()  # 3. on the wire
        except CallEnded as exc:  # 4. out, then failed: recorded now
            outcome = CallOutcome.UNANSWERED if exc.in_doubt else CallOutcome.NOT_SENT
            rows.answered([(index, CallResult(outcome, 0, client.redact(str(exc))[:300]))])
            raise


def send_tracks(
    client: PendoClient,
    workers: Workers,
    bodies: Sequence[bytes],
    rows: TrackRows,
    *,
    stream: str | None = None,
) -> list[CallResult]:
    """POST each body to the Track host, as many at once as `workers` has; one result per
    body, in order. A fatal error stops the remaining sends and is raised after the running
    ones end; the answers got until then are still recorded."""
    results: list[CallResult | None] = [None] * len(bodies)
    counter = itertools.count()

    def loop(failed: threading.Event) -> None:
        answered: list[tuple[int, CallResult]] = []
        try:
            while not failed.is_set():
                index = next(counter)  # atomic: count() is C code under the GIL
                if index >= len(bodies):
                    break
                result = _track_one(client, index, bodies[index], answered, rows, stream)
                results[index] = result
                answered.append((index, result))
        finally:
            if answered:
                rows.answered(answered)

    workers.spread(len(bodies), loop)
    return [r if r is not None else CallResult(CallOutcome.NOT_SENT) for r in results]
