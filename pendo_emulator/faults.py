"""Scheduled faults: what the emulator does instead of (or before) answering normally.

A fault matches a route family and, optionally, a Track body field; it waits `after` matching
requests, then applies to the next `times` (None: for ever). Faults are checked in the order
they were added; the first one that is not waiting out its `after` applies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

# "fields": the field create/delete routes (`/api/v1/metadata/schema/{kind}/{group}[/{field}]`)
ROUTES = ("track", "verify", "metadata", "schema", "fields", "object", "bulkdelete", "*")
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class Fault:
    """One injected behaviour. `status` answers with that code (and `Retry-After` when given);
    `delay` sleeps before handling; `drop` closes the connection without any answer; `cut`
    handles the request, then breaks its answer off mid-body (a proxy or load balancer
    dropping the connection after the request reached Pendo).

    A redirect status (301/302/303/307/308) needs `location`, e.g. another emulator's URL: a
    front end moving a host is a way keys leak, so the target's received headers can be read
    back. `headers` adds any other answer headers."""

    route: str = "*"
    status: int | None = None
    retry_after: str | None = None
    body: str = ""
    delay: float = 0.0
    drop: bool = False
    cut: bool = False
    times: int | None = 1
    after: int = 0
    match_field: str | None = None
    match_value: Any = None
    # After a `delay`, a request whose client already hung up is abandoned unprocessed
    # (like a front end that checks the connection before handing the request on) [I].
    # True: processed anyway, the case where a timed-out call did reach Pendo.
    process_after_disconnect: bool = False
    location: str | None = None
    headers: dict[str, str] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fault:
        fault = cls(**raw)
        if fault.route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {fault.route!r}")
        if fault.status is None and not (fault.drop or fault.delay or fault.cut):
            raise ValueError("a fault needs a status, a delay, drop or cut")
        if fault.times is not None and fault.times < 1:
            raise ValueError("times must be at least 1, or null for ever")
        if fault.retry_after is not None:
            fault.retry_after = str(fault.retry_after)
        if fault.status in REDIRECTS and not fault.location:
            raise ValueError(f"a {fault.status} redirect needs a location")
        if fault.headers is not None and not (
            isinstance(fault.headers, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in fault.headers.items())
        ):
            raise ValueError("headers must be an object of strings")
        return fault

    def answer_headers(self) -> dict[str, str]:
        """The headers this fault's answer carries (Retry-After, Location, extra ones)."""
        headers = dict(self.headers or {})
        if self.retry_after:
            headers["Retry-After"] = self.retry_after
        if self.location:
            headers["Location"] = self.location
        return headers


class FaultPlan:
    """Thread-safe queue of faults consulted once per request."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.applied = 0

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.applied = 0

    def pending(self) -> int:
        with self._lock:
            return len(self._faults)

    def take(self, route: str, body: Any) -> Fault | None:
        """The fault to apply to this request, if any; consumes one use of it."""
        with self._lock:
            for fault in self._faults:
                if fault.route not in ("*", route):
                    continue
                if fault.match_field is not None and not (
                    isinstance(body, dict) and body.get(fault.match_field) == fault.match_value
                ):
                    continue
                if fault.after > 0:  # still waiting: count this request, let others apply
                    fault.after -= 1
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                self.applied += 1
                return fault
            return None
