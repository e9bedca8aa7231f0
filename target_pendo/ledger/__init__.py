"""The sync ledger: what Pendo accepted, row by row, so events go once and unchanged objects
are not re-sent. SQLite under `state_dir` by default; any SQLAlchemy URL (PostgreSQL) by
`ledger_url`.

Tables (a versioned schema, migrated forward on open, one transaction per open):
- `row_state`: one row per (stream, key): the last status (in_flight, sent, rejected,
  unknown, not_sent, cleared, deleted), the hash of the values Pendo holds, reason, attempts,
  the run that last saw the key in the source, and what waits to be sent again (version 3).
- `sync_runs`: one row per run, with its status (running, succeeded, failed, abandoned) and
  report.
- `sync_rows`: one row per row and run: the outcome (sent, already_sent, unchanged,
  skipped_unknown, rejected + reason, not_sent + reason, in_doubt, cleared, deleted): "which
  rows failed and why" is a SQL query.
- `stream_leases` (version 2): which run holds each stream's lease, for a waiting run to name.
- `stream_schemas` (version 4): the SCHEMA each object stream was last synced with.

One job per module, named in its docstring; `facade.py`'s `Ledger`, made of their parts, is
the object the rest of target-pendo holds.

`read_only=True` (dry runs, `ledger status`) writes nothing at all: no file, no migration, no
lease.
"""

from __future__ import annotations

from target_pendo.ledger.engine import default_url, url_secret
from target_pendo.ledger.errors import (
    LedgerBusyError,
    LedgerCorruptError,
    LedgerError,
    LedgerOpenError,
    LedgerReadOnlyError,
    LedgerStorageError,
)
from target_pendo.ledger.facade import Ledger
from target_pendo.ledger.history import HistoryPruned
from target_pendo.ledger.locks import LeaseHolder, lock_file_name
from target_pendo.ledger.migrations import READABLE_FROM_VERSION, SCHEMA_VERSION
from target_pendo.ledger.queries import RowState, RunRow
from target_pendo.ledger.storable import MAX_KEY_CHARS, unstorable_reason
from target_pendo.ledger.tables import METADATA, sync_rows, sync_runs
from target_pendo.ledger.writes import RowOutcome

__all__ = [
    "MAX_KEY_CHARS",
    "METADATA",
    "READABLE_FROM_VERSION",
    "SCHEMA_VERSION",
    "HistoryPruned",
    "LeaseHolder",
    "Ledger",
    "LedgerBusyError",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerOpenError",
    "LedgerReadOnlyError",
    "LedgerStorageError",
    "RowOutcome",
    "RowState",
    "RunRow",
    "default_url",
    "lock_file_name",
    "sync_rows",
    "sync_runs",
    "unstorable_reason",
    "url_secret",
]
