"""Send one field group's rows in calls Pendo takes, and find exactly the rows it failed.

- ``Refused`` (a 400: one bad value may fail the whole call): bisected down to single rows.
- ``TooBig`` (a 408, Pendo's 5-minute budget, or no answer in time): halved, and the smaller
  size kept for the rest of the stream (``CallSize``).
- a ``Verdict`` with failures not tied to ids: those rows sent again in halves.

With k bad rows among n: at most 1 + 2·k·⌈log2 n⌉ calls besides halvings, and every good row
lands in a call Pendo confirmed. Pure: `send` does I/O."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from target_pendo.pendo.answers import Refused, TooBig, Verdict

T = TypeVar("T")


class CallSize:
    """The most rows one call may carry; only ever shrinks. Shared by a stream's calls."""

    def __init__(self, size: int) -> None:
        self.value = max(1, size)
        self._lock = threading.Lock()

    def halve_below(self, rows: int) -> None:
        """A call of `rows` rows was too big: from now on send at most half of it."""
        with self._lock:
            self.value = max(1, min(self.value, (rows + 1) // 2))


@dataclass
class SplitResult(Generic[T]):
    confirmed: list[T] = field(default_factory=list)
    missing: list[T] = field(default_factory=list)  # ids Pendo does not have
    failed: list[tuple[T, str]] = field(default_factory=list)  # Pendo's answer failed the row
    refused: list[tuple[T, str]] = field(default_factory=list)  # a 400 for the row alone
    calls: int = 0
    halvings: int = 0


def send_batches(
    items: Sequence[T],
    send: Callable[[Sequence[T]], Verdict | Refused | TooBig],
    key: Callable[[T], str],
    size: CallSize,
    *,
    on_refused: Callable[[Refused], None] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> SplitResult[T]:
    """Send `items` in calls of at most `size.value` rows until each row has its fate.
    `on_refused` runs on every refused call before it is split, `checkpoint` before every call;
    either may raise to stop."""
    result: SplitResult[T] = SplitResult()
    pending: list[Sequence[T]] = [items] if items else []
    while pending:
        batch = pending.pop()
        limit = size.value
        if len(batch) > limit:
            # pushed last piece first, so the first piece goes first and rows keep their order
            pending.extend(batch[i : i + limit] for i in reversed(range(0, len(batch), limit)))
            continue
        if checkpoint is not None:
            checkpoint()
        answer = send(batch)
        result.calls += 1
        if isinstance(answer, TooBig):
            result.halvings += 1
            size.halve_below(len(batch))
            pending.append(batch)  # re-cut at the new size on the next turn
        elif isinstance(answer, Refused):
            if on_refused is not None:
                on_refused(answer)
            if len(batch) == 1:
                result.refused.append((batch[0], answer.reason))
            else:
                _push_halves(pending, batch)
        else:
            unresolved = set(answer.unresolved)
            again: list[T] = []
            for item in batch:
                item_key = key(item)
                if item_key in answer.confirmed:
                    result.confirmed.append(item)
                elif item_key in answer.missing:
                    result.missing.append(item)
                elif item_key in answer.failed:
                    result.failed.append((item, answer.failed[item_key]))
                elif item_key in unresolved:
                    again.append(item)
            if again:
                _push_halves(pending, again)
    return result


def _push_halves(pending: list[Sequence[T]], batch: Sequence[T]) -> None:
    middle = len(batch) // 2
    pending.append(batch[middle:])
    pending.append(batch[:middle])  # the left half goes first
