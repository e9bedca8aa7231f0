"""The rejects files: `state_dir/rejects/<stream>.jsonl`, one line per row that was not sent.

Appended, never truncated, so nothing of an earlier run is lost; every line carries the run id.
Each line is flushed as written: a row is either in Pendo or here before STATE moves past it.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path
from typing import IO, Any

from target_pendo.mapping import dumps
from target_pendo.redact import Redactor

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def rejects_path(state_dir: str | Path, stream: str) -> Path:
    """Where a stream's rejects go; stream names are made safe as file names."""
    return Path(state_dir) / "rejects" / f"{_UNSAFE_FILENAME.sub('_', stream)}.jsonl"


class RejectsWriter:
    """Thread-safe: sinks drained in parallel may write at the same time."""

    def __init__(self, state_dir: str | Path, run_id: str, redact: Redactor) -> None:
        self._state_dir = Path(state_dir)
        self._run_id = run_id
        self._redact = redact
        self._files: dict[str, IO[bytes]] = {}
        self._lock = threading.Lock()

    def write(
        self, stream: str, key: Any, field: str | None, reason: str, record: Any
    ) -> None:
        line = dumps(
            {
                "run_id": self._run_id,
                "rejected_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "stream": stream,
                "key": key,
                "field": field,
                "reason": self._redact(reason),
                "record": record,
            }
        )
        with self._lock:
            handle = self._files.get(stream)
            if handle is None:
                path = rejects_path(self._state_dir, stream)
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = self._files[stream] = path.open("ab")
            handle.write(line + b"\n")
            handle.flush()

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
