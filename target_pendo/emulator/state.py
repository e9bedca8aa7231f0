"""What the emulated Pendo holds, and the rules it applies to writes (per ../shared/pendo-api.md).

Kept apart from HTTP so tests can seed and read it directly when the emulator runs in-process,
and the server can expose the same operations over its `/_emulator/*` control routes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class TrackInvalid(Exception):
    """A Track body Pendo answers 400 to; the message is the plain-text reason."""


@dataclass
class TrackRule:
    """Server-side validation the target cannot see: Pendo refuses events whose `field`
    (a top-level Track body key) has one of `values`. Tests use it for "invalid for Pendo"."""

    field: str
    values: frozenset[Any]
    reason: str


@dataclass
class PendoState:
    """All data and counters, guarded by one lock (the server is threaded)."""

    track_secrets: set[str] = field(default_factory=set)
    integration_keys: dict[str, bool] = field(default_factory=dict)  # key -> write access
    events: list[dict[str, Any]] = field(default_factory=list)
    track_rules: list[TrackRule] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- keys ----------------------------------------------------------------------------
    def track_key_ok(self, key: str | None) -> bool:
        return key is not None and key in self.track_secrets

    def api_key_access(self, key: str | None) -> bool | None:
        """None: unknown key; else whether it may write."""
        if key is None:
            return None
        return self.integration_keys.get(key)

    # --- counters ------------------------------------------------------------------------
    def count(self, route: str) -> None:
        with self.lock:
            self.requests[route] += 1

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.requests)

    # --- Track ---------------------------------------------------------------------------
    def add_track_rule(self, field_name: str, values: list[Any], reason: str) -> None:
        with self.lock:
            self.track_rules.append(TrackRule(field_name, frozenset(values), reason))

    def accept_track(self, body: Any) -> None:
        """Validate like Pendo (400 reasons are plain text) and store the event."""
        if not isinstance(body, dict):
            raise TrackInvalid("body must be a JSON object")
        if body.get("type") != "track":
            raise TrackInvalid("type must be 'track'")
        for key in ("event", "visitorId"):
            value = body.get(key)
            if not isinstance(value, str) or not value:
                raise TrackInvalid(f"missing or empty '{key}'")
        timestamp = body.get("timestamp")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise TrackInvalid("'timestamp' must be an integer (epoch milliseconds)")
        props = body.get("properties", {})
        if props is not None and not isinstance(props, dict):
            raise TrackInvalid("'properties' must be an object")
        context = body.get("context", {})
        if context is not None and not isinstance(context, dict):
            raise TrackInvalid("'context' must be an object")
        with self.lock:
            for rule in self.track_rules:
                if body.get(rule.field) in rule.values:
                    raise TrackInvalid(rule.reason)
            stored = dict(body)
            stored["_received_at"] = int(time.time() * 1000)
            self.events.append(stored)

    def events_snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.events]

    def reset(self) -> None:
        with self.lock:
            self.events.clear()
            self.track_rules.clear()
            self.requests.clear()
