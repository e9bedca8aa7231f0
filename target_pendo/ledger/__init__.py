"""The sync ledger: what Pendo accepted, row by row, so events go once and unchanged objects
are not re-sent; SQLite under `state_dir` by default, or any SQLAlchemy URL (`ledger_url`).
docs/delivery.md says what its tables hold; `facade.Ledger` is what the rest holds."""

from __future__ import annotations

from target_pendo.ledger.engine import default_url, url_secret
from target_pendo.ledger.errors import (
    LedgerBusyError,
    LedgerCorruptError,
    LedgerReadOnlyError,
    LedgerStorageError,
)
from target_pendo.ledger.facade import Ledger
from target_pendo.ledger.locks import lock_file_name
from target_pendo.ledger.migrations import SCHEMA_VERSION
from target_pendo.ledger.storable import MAX_KEY_CHARS, unstorable_reason
from target_pendo.ledger.tables import METADATA, sync_rows, sync_runs
from target_pendo.ledger.writes import RowOutcome

__all__ = [
    "MAX_KEY_CHARS",
    "METADATA",
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerReadOnlyError",
    "LedgerStorageError",
    "RowOutcome",
    "default_url",
    "lock_file_name",
    "sync_rows",
    "sync_runs",
    "unstorable_reason",
    "url_secret",
]
