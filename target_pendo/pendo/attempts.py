"""What the client tells the rest of the run about its HTTP attempts, as it makes them: the
call log and the observers (the progress monitor, the timeline) learn of calls through this
seam rather than by wrapping the client's parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class Attempt:
    """One attempt's end: the URL as shown (no credentials), its answer or error."""

    method: str
    url: str
    status: int | None  # None: no answer (timeout, connection error)
    seconds: float
    attempt: int  # 1 for the first try of a call
    stream: str | None
    request_body: bytes | None
    response: requests.Response | None  # read only by whoever needs its text (the call log)
    error: str | None


class CallObserver(Protocol):
    """Told, from the run's worker threads, when an attempt starts and ends and when a call
    waits to retry. Each method must be quick and must not raise."""

    def attempt_started(self, stream: str | None) -> None: ...

    def attempt_ended(self, attempt: Attempt) -> None: ...

    def retrying(self, stream: str | None, cause: str) -> None: ...
