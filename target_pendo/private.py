"""What target-pendo writes under `state_dir` is its owner's alone, whatever the umask.

Rejects files hold whole rows (emails, names), call logs request and response bodies, the
ledger row keys: with a normal umask (022) they would be 0644 files in 0755 folders, readable
by every user of a shared Airflow or cron host. So every folder target-pendo creates is 0700
and every file it writes 0600, set explicitly after creation (a umask can only take bits
away). The SQLite ledger's journal files take the database file's mode (SQLite copies it), so
creating that file 0600 covers them. A `state_dir` that already lets others in is not changed
behind the user's back (nor are files an older version made 0644): the run warns, naming the
command that fixes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

DIR_MODE = 0o700
FILE_MODE = 0o600

log = logging.getLogger("target_pendo.private")


def make_dir(folder: Path) -> None:
    """Create `folder` and its missing parents, each 0700 (folders that exist stay as they
    are)."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    for created in missing:
        with contextlib.suppress(OSError):  # made by another process meanwhile: theirs
            created.chmod(DIR_MODE)


def make_file(path: Path) -> None:
    """Create `path` empty and 0600 if it is not there (one that is stays as it is)."""
    make_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(_create(path, os.O_WRONLY))


def open_file(path: Path, mode: str, **kwargs: Any) -> IO[Any]:
    """`path.open(mode)` for appending ("a", "ab") or writing ("w"); a file it creates is
    0600 (one that is there keeps its mode: `warn_if_shared` speaks of those)."""
    flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    make_dir(path.parent)
    try:
        fd = _create(path, flags)
    except FileExistsError:
        fd = os.open(path, flags)
    try:
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def write_text(path: Path, text: str) -> None:
    with open_file(path, "w", encoding="utf-8") as out:
        out.write(text)


def _create(path: Path, flags: int) -> int:
    """A new file, 0600 whatever the umask; FileExistsError when it is there."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def warn_if_shared(state_dir: Path) -> None:
    """A warning naming the fix when an existing `state_dir` lets other users in."""
    try:
        mode = stat.S_IMODE(state_dir.stat().st_mode)
    except OSError:
        return  # not there yet: it is created 0700
    if mode & 0o077:
        log.warning(
            "state_dir %s can be read by other users of this machine (mode %s): it holds "
            "rejected rows, call bodies and the ledger. Make it private with: chmod -R go-rwx %s",
            state_dir,
            oct(mode)[2:],
            state_dir,
        )
