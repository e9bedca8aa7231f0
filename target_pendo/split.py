"""Split retries: find the bad items of a metadata batch Pendo rejected whole.

Pendo answers 400 to a whole batch when one item in it is invalid, and names (at best) the
first bad item in words we cannot rely on. Bisecting finds every bad item: a rejected batch
is split in halves and each half is sent again, recursively, until a rejected batch is a
single item. With k bad items among n, that is at most 1 + 2·k·⌈log2 n⌉ calls, and every good
item lands in a call that Pendo accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Refused:
    """Pendo refused the whole batch sent; `reason` is its answer."""

    reason: str


@dataclass
class SplitResult(Generic[T, R]):
    accepted: list[tuple[Sequence[T], R]] = field(default_factory=list)  # (items, answer)
    rejected: list[tuple[T, str]] = field(default_factory=list)  # (item, Pendo's reason)
    calls: int = 0


def send_with_splits(
    items: Sequence[T], send: Callable[[Sequence[T]], R | Refused]
) -> SplitResult[T, R]:
    """Send `items` as one batch; on Refused, bisect until only the bad items are left out.

    `send` returns Pendo's answer for an accepted batch, or Refused; any exception it raises
    (a fatal error) propagates at once.
    """
    result: SplitResult[T, R] = SplitResult()
    pending: list[Sequence[T]] = [items] if items else []
    while pending:
        batch = pending.pop()
        answer = send(batch)
        result.calls += 1
        if not isinstance(answer, Refused):
            result.accepted.append((batch, answer))
        elif len(batch) == 1:
            result.rejected.append((batch[0], answer.reason))
        else:
            middle = len(batch) // 2
            # pushed right first so the left half is sent first: rows keep their order
            pending.append(batch[middle:])
            pending.append(batch[:middle])
    return result
