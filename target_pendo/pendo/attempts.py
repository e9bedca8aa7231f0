"""The seam through which the call log and observers (progress, timeline) learn of each HTTP
attempt, rather than by wrapping the client's parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
    """Told from worker threads of attempts and retries; each method must be quick, never raise."""

    def attempt_started(self, stream: str | None) -> None: ...

    def attempt_ended(self, attempt: Attempt) -> None: ...

    def retrying(self, stream: str | None, cause: str) -> None: ...
