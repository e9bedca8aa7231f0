"""The Track calls of one events batch, spread over the run's workers. The crash-safety rule,
top-down in `send_tracks`, one call:

1. wait for the call's turn (room on the wire, the pacer's go): not marked, so not in doubt;
2. mark it in flight, with the worker's earlier answers, in one committed ledger transaction;
3. send: the bytes leave at once, no wait in between; retries keep the mark;
4. the answer is recorded with the worker's next mark (or when it ends); a call that went out
   and failed is recorded at once: not sent, or left in flight when an attempt got no answer."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Protocol

from target_pendo.errors import CallEnded
from target_pendo.pendo.answers import CallOutcome, CallResult
from target_pendo.pendo.client import PendoClient
from target_pendo.run.workers import Workers

Answers = Sequence[tuple[int, CallResult]]  # (index of the call in the batch, its result)


class TrackRows(Protocol):
    """What becomes of a batch's rows as its calls go. Called from every worker: thread-safe."""

    def going_out(self, index: int, answered: Answers) -> None:
        """Record `answered` and mark call `index` in flight, committed when this returns."""

    def answered(self, answered: Answers) -> None:
        """Record `answered`: a worker's last answers, or a call that failed once out."""


def send_tracks(
    client: PendoClient,
    workers: Workers,
    bodies: Sequence[bytes],
    rows: TrackRows,
    *,
    stream: str | None = None,
) -> list[CallResult]:
    """POST each body to the Track host on `workers`; one result per body, in order. A fatal
    error is raised after the running sends end; the answers got until then are recorded."""
    results: list[CallResult | None] = [None] * len(bodies)
    counter = itertools.count()

    def loop(failed: threading.Event) -> None:
        # not recorded yet: they go with the next mark, one commit a call instead of two
        answered: list[tuple[int, CallResult]] = []
        try:
            while not failed.is_set():
                index = next(counter)  # atomic: count() is C code under the GIL
                if index >= len(bodies):
                    break
                with client.track_call(bodies[index], stream=stream) as send:  # 1. its turn
                    rows.going_out(index, answered)  # 2. marked in flight, committed
                    answered.clear()
                    try:
                        result = send()  # 3. on the wire
                    except CallEnded as exc:  # 4. out, then failed: recorded now
                        outcome = CallOutcome.UNANSWERED if exc.in_doubt else CallOutcome.NOT_SENT
                        reason = client.redact(str(exc))[:300]
                        rows.answered([(index, CallResult(outcome, 0, reason))])
                        raise
                results[index] = result
                answered.append((index, result))
        finally:
            if answered:
                rows.answered(answered)

    workers.spread(len(bodies), loop)
    return [r if r is not None else CallResult(CallOutcome.NOT_SENT) for r in results]
