"""The API-call log (`call_log: true`): every HTTP attempt as one JSONL line, for debugging a
sync without a proxy: method, URL, status, latency, attempt number, request and response
bodies (truncated). Secrets never reach it: the key header is shown as `***`, and bodies pass
through the run's Redactor.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import IO

from target_pendo import private
from target_pendo.mapping import jsonl_line
from target_pendo.pendo.api import KEY_HEADER
from target_pendo.pendo.attempts import Attempt
from target_pendo.redact import MASK, Redactor

MAX_BODY_CHARS = 4000


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    if len(text) <= MAX_BODY_CHARS:
        return text
    return text[:MAX_BODY_CHARS] + f"... ({len(text) - MAX_BODY_CHARS} more characters)"


class CallLog:
    """Thread-safe; one file per run: `state_dir/calls/<run_id>.jsonl`."""

    def __init__(self, path: Path, redact: Redactor) -> None:
        self.path = path
        self._redact = redact
        self._file: IO[str] = private.open_file(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, attempt: Attempt) -> None:
        body = attempt.request_body
        request_text = None if body is None else body.decode("utf-8", "replace")
        response_text = attempt.response_text
        error = attempt.error
        entry = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "stream": attempt.stream,
            "method": attempt.method,
            "url": attempt.url,
            "status": attempt.status,
            "latency_ms": round(attempt.seconds * 1000, 1),
            "attempt": attempt.attempt,
            "request_headers": {KEY_HEADER: MASK},
            "request_body": _clip(self._redact(request_text)) if request_text else None,
            "response_body": _clip(self._redact(response_text)) if response_text else None,
            "error": self._redact(error) if error else None,
        }
        line = jsonl_line(entry).decode("utf-8")
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
