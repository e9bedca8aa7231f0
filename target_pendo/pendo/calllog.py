"""The API-call log (`call_log: true`): every HTTP attempt as one JSONL line. Secrets never
reach it: the key header is shown as `***`, bodies and errors pass through the run's Redactor.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import IO

from target_pendo import private
from target_pendo.mapping.rows import jsonl_line
from target_pendo.observe.redact import MASK, Redactor
from target_pendo.pendo.api import KEY_HEADER
from target_pendo.pendo.attempts import Attempt

MAX_BODY_CHARS = 4000


class CallLog:
    """Thread-safe; one file per run: `state_dir/calls/<run_id>.jsonl`."""

    def __init__(self, path: Path, redact: Redactor) -> None:
        self._redact = redact
        self._file: IO[str] = private.open_file(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def _shown(self, text: str | None, clip: bool = True) -> str | None:
        """`text` redacted, and clipped to MAX_BODY_CHARS; None for no text."""
        if not text:
            return None
        text = self._redact(text)
        if not clip or len(text) <= MAX_BODY_CHARS:
            return text
        return text[:MAX_BODY_CHARS] + f"... ({len(text) - MAX_BODY_CHARS} more characters)"

    def write(self, attempt: Attempt) -> None:
        response = attempt.response
        entry = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "stream": attempt.stream,
            "method": attempt.method,
            "url": attempt.url,
            "status": attempt.status,
            "latency_ms": round(attempt.seconds * 1000, 1),
            "attempt": attempt.attempt,
            "request_headers": {KEY_HEADER: MASK},
            "request_body": self._shown((attempt.request_body or b"").decode("utf-8", "replace")),
            "response_body": self._shown(None if response is None else response.text),
            "error": self._shown(attempt.error, clip=False),
        }
        line = jsonl_line(entry).decode("utf-8")
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
