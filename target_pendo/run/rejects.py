"""Per-stream JSONL logs under `state_dir`: `rejects/` and `unknown/` (per UTC day, so
retention drops old days whole), a dry run's payloads. Appended, each line with the run id and
flushed as written: a row is either in Pendo or here before STATE moves past it."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from target_pendo import private
from target_pendo.mapping.rows import json_safe, jsonl_line
from target_pendo.observe.redact import Redactor
from target_pendo.observe.report import mask_quoted_values

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(eq=False)
class RowLog:
    """Thread-safe: sinks drained in parallel may write at the same time."""

    state_dir: str | Path
    folder: str
    run_id: str
    redact: Redactor
    # False: a rejected row's line keeps key, field and reason (quoted values masked), no row
    include_values: bool = field(default=True, kw_only=True)
    daily: bool = field(default=False, kw_only=True)  # one file per stream and day
    _files: dict[tuple[str, str | None], IO[bytes]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def reject(self, stream: str, key: Any, field: str | None, reason: str, record: Any) -> None:
        """A row not sent, and why; its data redacted too (a key pasted into a column)."""
        reason = self.redact(reason)
        if not self.include_values:
            reason = mask_quoted_values(reason)
        entry = {"key": self.redact.value(key), "field": field, "reason": reason}
        if self.include_values:
            entry["record"] = self.redact.value(record)
        self.append(stream, entry)

    def append(self, stream: str, entry: dict[str, Any]) -> None:
        now = dt.datetime.now(dt.UTC)
        full = {
            "run_id": self.run_id,
            "at": now.isoformat(timespec="milliseconds"),
            "stream": stream,
            **entry,
        }
        try:
            line = jsonl_line(full)
        except UnicodeEncodeError:
            # lone surrogates: an escaped copy any JSON reader takes, marked as such
            full["escaped"] = True
            line = json.dumps(json_safe(full), ensure_ascii=True, separators=(",", ":")).encode()
        day = f"{now:%Y-%m-%d}" if self.daily else None
        with self._lock:
            handle = self._files.get((stream, day))
            if handle is None:
                safe, folder = _UNSAFE_FILENAME.sub("_", stream), Path(self.state_dir) / self.folder
                path = folder / f"{safe}.jsonl" if day is None else folder / safe / f"{day}.jsonl"
                handle = self._files[stream, day] = private.open_file(path, "ab")
            handle.write(line + b"\n")
            handle.flush()

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
