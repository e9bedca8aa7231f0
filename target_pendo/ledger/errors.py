"""The ledger's errors, and the database's errors translated into them: one line that names
the file, URL (password hidden) or table and says what to do."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from target_pendo.errors import ConfigError, TargetPendoError
from target_pendo.ledger.locks import LeaseHolder
from target_pendo.ledger.tables import METADATA


class LedgerError(TargetPendoError):
    """The ledger cannot be used as it is; the message names it and says what to do."""


class LedgerOpenError(LedgerError, ConfigError):
    """The ledger cannot be opened at all: a configuration problem, found before any data."""


class LedgerBusyError(LedgerError):
    """Another live run holds the lease on a stream (or the run id) this run asked for."""

    def __init__(self, message: str, *, holder: LeaseHolder | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class LedgerCorruptError(LedgerError):
    """The ledger is damaged: not a database, or an expected table gone."""


class LedgerStorageError(LedgerError):
    """The ledger cannot be written where it is: read-only, disk full or failing."""


class LedgerReadOnlyError(LedgerError):
    """A change was asked of a ledger opened read-only (a dry run, `ledger status`)."""


@dataclass(frozen=True)
class Errors:
    """How one ledger's problems read: `where` names it (its file, else `url`, password hidden)."""

    url: str
    where: str
    path: Path | None
    password: str | None = field(repr=False)  # hidden from every message

    def fresh_advice(self) -> str:
        then = "(the next run then sends every event again and every object once)"
        if self.path is not None:
            return f"move {self.path} aside to start an empty ledger {then}"
        tables = ", ".join(sorted(METADATA.tables))
        return f"drop its tables ({tables}) to start an empty ledger {then}"

    @contextlib.contextmanager
    def guard(self, doing: str, *, opening: bool = False) -> Iterator[None]:
        """Database errors while `doing` as LedgerErrors (`opening`: LedgerOpenError at worst)."""
        try:
            yield
        except TargetPendoError:
            raise
        except Exception as exc:
            error = self.translate(exc, doing, opening)
            if error is None:
                raise
            raise error from exc

    def translate(self, exc: Exception, doing: str, opening: bool) -> LedgerError | None:
        """None: not a database error, or a bug to show as is."""
        orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        # psycopg has `sqlstate`, psycopg2 `pgcode`; the drivers need not be importable here
        sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
        classes = {c.__name__ for c in type(orig).__mro__}
        if not (isinstance(orig, sqlite3.Error) or sqlstate or "OperationalError" in classes):
            return None
        text = " ".join(str(orig).split())  # one line, and no password
        if self.password:
            text = text.replace(self.password, "***")
        low = text.lower()
        where = self.where
        if table := re.search(r'no such table: (\w+)|relation "(\w+)" does not exist', text):
            name = table.group(1) or table.group(2)
            return LedgerCorruptError(
                f"the ledger at {where} has no table '{name}' (found while {doing}): it was "
                f"damaged or changed by hand; restore it from a backup, or {self.fresh_advice()}"
            )
        if "not a database" in low or "malformed" in low or sqlstate in ("XX001", "XX002"):
            return LedgerCorruptError(
                f"the ledger at {where} is damaged or is not a SQLite database ({text}; found "
                f"while {doing}): restore it from a backup, or {self.fresh_advice()}"
            )
        if "readonly" in low or "read-only" in low or sqlstate == "25006":
            return LedgerStorageError(
                f"cannot write the ledger at {where} while {doing} ({text}): it is read-only "
                "for this user; make the database (for SQLite: the file and its folder) "
                "writable, or set 'state_dir' (or 'ledger_url') to a writable place"
            )
        if "disk is full" in low or "no space left" in low or sqlstate == "53100":
            return LedgerStorageError(
                f"cannot write the ledger at {where} while {doing}: the disk is full ({text}); "
                "free space on the disk that holds it and run again (what was recorded so far "
                "is kept)"
            )
        if "disk i/o error" in low or sqlstate == "58030":
            return LedgerStorageError(
                f"cannot write the ledger at {where} while {doing}: disk I/O error ({text}); "
                "check the disk that holds it (full, read-only, removed or failing?) and run "
                "again (what was recorded so far is kept)"
            )
        if "unable to open database file" in low:
            return LedgerStorageError(
                f"cannot open the ledger file {where} ({text}): check that its folder exists "
                "and that this user may read and write both, or set 'state_dir' (or "
                "'ledger_url')"
            )
        if "database is locked" in low:
            return LedgerError(
                f"the ledger file {where} stayed locked by another process for 30 s while "
                f"{doing}: find the process holding it (another target-pendo, or a tool with "
                "the file open in a write transaction) and run again"
            )
        if opening:
            return LedgerOpenError(
                f"cannot open the ledger at {where}: {text}; check 'ledger_url' (or 'state_dir')"
            )
        if "OperationalError" in classes or sqlstate[:2] in ("08", "53", "57", "58"):
            return LedgerError(
                f"the ledger at {where} failed while {doing}: {text}; check that the database "
                "is reachable and healthy, then run again (what was recorded so far is kept)"
            )
        return None
