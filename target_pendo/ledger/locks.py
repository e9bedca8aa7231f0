"""What the leases' locks are named by (a lock file's name, an advisory-lock key), the holder a
waiter names, and the keepalives that let a PostgreSQL session end with its vanished client."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from target_pendo.ledger.tables import now

Kind = Literal["stream", "run"]  # a stream's lease, or a run's own lock

# Client side (libpq): notice a server that vanished. 20 s idle, then a probe every 5 s, 6
# unanswered probes: the connection is declared dead after about 50 s.
PG_KEEPALIVE_CONNECT_ARGS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 20,
    "keepalives_interval": 5,
    "keepalives_count": 6,
}
# Server side, the same: the server ends the lease session (dropping its locks) when our
# container vanishes. The session idles all run, so no `idle_session_timeout` (PostgreSQL 14+).
PG_LEASE_SESSION_SETTINGS = (
    *(f"SET tcp_{k} = {v}" for k, v in PG_KEEPALIVE_CONNECT_ARGS.items() if k != "keepalives"),
    "SET idle_session_timeout = 0",
)


def _sha256(name: str) -> bytes:
    """sha256, not `hash()`: the same on every machine and Python version."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()


def pg_key(name: str) -> int:
    """A stable signed 32-bit advisory-lock key for a stream name, run id or namespace."""
    return int.from_bytes(_sha256(name)[:4], "big", signed=True)


# The first key of PostgreSQL's two-key advisory locks: a fixed namespace per kind of lock, so
# our locks collide neither with each other's kinds nor with other applications' locks.
_PG_NAMESPACES: dict[Kind, int] = {
    "stream": pg_key("target-pendo:stream-lease"),
    "run": pg_key("target-pendo:run"),
}
PG_NAMESPACE_MIGRATION = pg_key("target-pendo:migration")


def pg_keys(kind: Kind, name: str) -> tuple[int, int]:
    return _PG_NAMESPACES[kind], pg_key(name)


def lock_file_name(name: str) -> str:
    """A file name for any stream name or run id (which may hold `/`, spaces, anything)."""
    return _sha256(name).hex()[:16] + ".lock"


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease: enough for a waiter to find the other run."""

    run_id: str
    host: str
    pid: int
    acquired_at: str

    @classmethod
    def this_process(cls, run_id: str) -> LeaseHolder:
        return cls(run_id, socket.gethostname(), os.getpid(), now())

    @classmethod
    def from_file(cls, path: Path) -> LeaseHolder | None:
        """Who wrote the lock file last; None for a missing, empty or half-written file."""
        try:
            raw = json.loads(path.read_bytes())
            return cls(str(raw["run_id"]), str(raw["host"]), int(raw["pid"]), raw["acquired_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"run {self.run_id} on host {self.host} (pid {self.pid}), since {self.acquired_at}"
