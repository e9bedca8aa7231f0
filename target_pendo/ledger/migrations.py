"""The ledger's schema versions and the migrations forward between them (docs/releasing.md):
`_MIGRATIONS` is the DDL each version ran, never edited once released (ledgers out there ran
it); `tables.py` describes the result and `CREATED` the tables each version's DDL creates."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from target_pendo.errors import ConfigError
from target_pendo.ledger.errors import Errors, LedgerCorruptError
from target_pendo.ledger.locks import PG_NAMESPACE_MIGRATION
from target_pendo.ledger.tables import (
    ledger_meta,
    row_state,
    stream_leases,
    stream_schemas,
    sync_rows,
    sync_runs,
)

logger = logging.getLogger("target_pendo.ledger")

SCHEMA_VERSION = 4
# The oldest schema the lookups can read unmigrated: every column of version 1 is still there
# (the lookups of an older ledger leave out what later versions added).
READABLE_FROM_VERSION = 1
PENDING_QUEUE_VERSION = 3  # the schema version that added row_state.pending
STREAM_SCHEMAS_VERSION = 4  # the schema version that added stream_schemas

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE ledger_meta (
            name VARCHAR(64) PRIMARY KEY,
            value VARCHAR(256) NOT NULL)""",
        """CREATE TABLE sync_runs (
            run_id VARCHAR(64) PRIMARY KEY,
            started_at VARCHAR(40) NOT NULL,
            finished_at VARCHAR(40),
            status VARCHAR(16) NOT NULL,
            full_resync INTEGER NOT NULL DEFAULT 0,
            report TEXT)""",
        """CREATE TABLE row_state (
            stream VARCHAR(512) NOT NULL,
            row_key VARCHAR(2048) NOT NULL,
            status VARCHAR(16) NOT NULL,
            value_hash VARCHAR(64),
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_run VARCHAR(64) NOT NULL,
            last_run VARCHAR(64) NOT NULL,
            last_seen_run VARCHAR(64),
            updated_at VARCHAR(40) NOT NULL,
            PRIMARY KEY (stream, row_key))""",
        "CREATE INDEX row_state_status ON row_state (stream, status)",
        """CREATE TABLE sync_rows (
            run_id VARCHAR(64) NOT NULL,
            stream VARCHAR(512) NOT NULL,
            row_key VARCHAR(2048) NOT NULL,
            outcome VARCHAR(20) NOT NULL,
            reason TEXT,
            at VARCHAR(40) NOT NULL)""",
        "CREATE INDEX sync_rows_run ON sync_rows (run_id, stream, outcome)",
    ],
    # 2: who holds each stream's lease (PostgreSQL; the schema is the same on both backends)
    2: [
        """CREATE TABLE stream_leases (
            stream VARCHAR(512) PRIMARY KEY,
            run_id VARCHAR(64) NOT NULL,
            host VARCHAR(255) NOT NULL,
            pid INTEGER NOT NULL,
            acquired_at VARCHAR(40) NOT NULL)""",
    ],
    # 3: the pending queue: the values of an object row Pendo could not take yet, retried later
    3: [
        "ALTER TABLE row_state ADD COLUMN pending TEXT",
        "ALTER TABLE row_state ADD COLUMN pending_since VARCHAR(40)",
    ],
    # 4: each object stream's last SCHEMA (`ledger retry`); runs found by age (retention)
    4: [
        """CREATE TABLE stream_schemas (
            stream VARCHAR(512) PRIMARY KEY,
            message TEXT NOT NULL,
            updated_at VARCHAR(40) NOT NULL)""",
        "CREATE INDEX sync_runs_started ON sync_runs (started_at)",
    ],
}

CREATED: dict[int, tuple[sa.Table, ...]] = {
    1: (ledger_meta, sync_runs, row_state, sync_rows),
    2: (stream_leases,),
    3: (),
    4: (stream_schemas,),
}


def tables_of(version: int) -> set[str]:
    return {table.name for v in range(1, version + 1) for table in CREATED[v]}


_VERSION_NAME = "schema_version"
_INSERT_VERSION = sa.insert(ledger_meta).values(name=_VERSION_NAME, value=sa.bindparam("v"))
_SET_VERSION = (
    sa.update(ledger_meta)
    .where(ledger_meta.c.name == _VERSION_NAME)
    .values(value=sa.bindparam("v"))
)


def read_version(conn: sa.Connection) -> int:
    """0: no tables yet."""
    if not sa.inspect(conn).has_table("ledger_meta"):
        return 0
    meta = ledger_meta.c
    return int(conn.scalar(sa.select(meta.value).where(meta.name == _VERSION_NAME)) or 0)


def migrate(conn: sa.Connection, errors: Errors) -> None:
    """Forward-only, in one transaction that serialises concurrent openers, so that two runs
    upgrading one ledger do not both create its tables."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(CAST(:ns AS INTEGER), 0)"),
            {"ns": PG_NAMESPACE_MIGRATION},
        )
    version = read_version(conn)
    if version > SCHEMA_VERSION:
        raise newer_error(version, errors)
    run_ddl(conn, version)
    if 0 < version < SCHEMA_VERSION:
        logger.info(
            "Migrated the ledger at %s from schema version %d to %d.",
            errors.where,
            version,
            SCHEMA_VERSION,
        )
    check_tables(conn, SCHEMA_VERSION, errors)
    # a write that changes nothing: a ledger that cannot be written fails here, before any data
    conn.execute(_SET_VERSION, {"v": str(SCHEMA_VERSION)})
    conn.commit()


def run_ddl(conn: sa.Connection, version: int = 0) -> None:
    """Run the DDL of every version after `version`, without serialising or committing."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[target]:
            conn.exec_driver_sql(statement)
        conn.execute(_SET_VERSION if target > 1 else _INSERT_VERSION, {"v": str(target)})


def newer_error(version: int, errors: Errors) -> ConfigError:
    return ConfigError(
        f"the ledger at {errors.url} has schema version {version}, "
        f"newer than this target-pendo ({SCHEMA_VERSION}); upgrade target-pendo"
    )


def check_tables(conn: sa.Connection, version: int, errors: Errors) -> None:
    missing = sorted(tables_of(version) - set(sa.inspect(conn).get_table_names()))
    if missing:
        names = ", ".join(f"'{t}'" for t in missing)
        raise LedgerCorruptError(
            f"the ledger at {errors.where} says schema version {version} but has no table "
            f"{names}: it was damaged or changed by hand; restore it from a backup, or "
            f"{errors.fresh_advice()}"
        )
