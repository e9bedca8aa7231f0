"""The retention window: a run's history (ledger lines and row, files under `state_dir`) is kept
`retention_days`, then pruned: a bounded amount at the end of each successful run (the first
run on a large old ledger does not stall), or all of it by `target-pendo ledger prune`."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from target_pendo.ledger import Ledger

# Folders under state_dir whose files are history (a test holds this list to what runs write).
HISTORY_FOLDERS = ("reports", "calls", "dry_run", "rejects", "unknown")

# What the end of one run may prune: enough to keep up with any daily volume, in seconds.
END_OF_RUN_MAX_ROWS = 1_000_000
END_OF_RUN_MAX_SECONDS = 15.0
END_OF_RUN_MAX_FILES = 5_000


@dataclass(frozen=True)
class Pruned:
    """What a prune removed, and whether older history is left for the next one."""

    runs: int
    rows: int
    files: int
    more: bool
    space_given_back: bool = False

    def describe(self, days: float) -> str:
        left = "; older history is left for the next run" if self.more else ""
        return (
            f"pruned history older than {days:g} days: {self.runs} run(s), {self.rows} "
            f"sync_rows line(s), {self.files} file(s){left}"
        )


def prune(ledger: Ledger, state_dir: str | Path, days: float, *, bounded: bool) -> Pruned:
    """Prune history older than `days`; `bounded`: no more than one run's end may take."""
    before = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    history = ledger.prune_history(
        before.isoformat(timespec="milliseconds"),
        max_rows=END_OF_RUN_MAX_ROWS if bounded else None,
        max_seconds=END_OF_RUN_MAX_SECONDS if bounded else None,
    )
    files, files_left = prune_files(
        Path(state_dir), before.timestamp(), END_OF_RUN_MAX_FILES if bounded else None
    )
    given_back = ledger.give_space_back(convert=not bounded) if history.rows else False
    return Pruned(
        history.runs, history.rows, files, history.more or files_left, space_given_back=given_back
    )


def prune_files(state_dir: Path, before: float, max_files: int | None) -> tuple[int, bool]:
    """Delete history files older than `before` and the folders they empty: (deleted, any left)."""
    deleted = 0
    for name in HISTORY_FOLDERS:
        top = state_dir / name
        if not top.is_dir():
            continue
        for folder, _subfolders, files in os.walk(top, topdown=False):
            for file_name in files:
                path = Path(folder) / file_name
                try:
                    if path.lstat().st_mtime >= before:
                        continue
                    if max_files is not None and deleted >= max_files:
                        return deleted, True
                    path.unlink()
                    deleted += 1
                except FileNotFoundError:  # pruned by another run meanwhile
                    continue
            if Path(folder) != top:  # a day's or a dry run's folder, emptied: it goes too
                with contextlib.suppress(OSError):  # rmdir refuses one written meanwhile
                    Path(folder).rmdir()
    return deleted, False
