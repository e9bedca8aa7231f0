"""What target-pendo writes under `state_dir` (rows, call bodies, row keys) is its owner's alone
whatever the umask: new folders 0700, files 0600 (the SQLite ledger's journals copy its mode).
A `state_dir` open to others is not changed behind the user's back: the run warns instead."""

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
    """Create `folder` and its missing parents, each 0700 (folders that exist stay as they are)."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    for created in missing:
        with contextlib.suppress(OSError):  # made by another process meanwhile: theirs
            created.chmod(DIR_MODE)


def make_file(path: Path) -> None:
    """Create `path` empty and 0600 if it is not there."""
    make_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(_create(path, os.O_WRONLY))


def open_file(path: Path, mode: str, **kwargs: Any) -> IO[Any]:
    """`path.open(mode)` for appending ("a", "ab") or writing ("w"); a file it creates is 0600."""
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
