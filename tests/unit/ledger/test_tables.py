"""The ledger's Core metadata (ledger/tables.py) is what its migrations build, on both
backends: the statements compiled from it write the tables that are really there, and each
schema version's declared tables are the ones its DDL creates."""

from __future__ import annotations

import sqlalchemy as sa

from target_pendo.ledger import METADATA, Ledger, RowOutcome
from target_pendo.ledger.migrations import _MIGRATIONS, SCHEMA_VERSION, tables_of
from target_pendo.run.outcomes import Outcome, Status

from ...ledger_helpers import ledger_url  # noqa: F401  (the fixture)


def _shape(inspector: sa.Inspector, table: str) -> dict[str, object]:
    key = inspector.get_pk_constraint(table)["constrained_columns"]
    # nullability of key columns is left out: SQLite lets a text primary key hold NULL
    columns = {
        c["name"]: None if c["name"] in key else bool(c["nullable"])
        for c in inspector.get_columns(table)
    }
    indexes = {i["name"]: tuple(i["column_names"]) for i in inspector.get_indexes(table)}
    return {"columns": columns, "primary_key": sorted(key), "indexes": indexes}


def test_the_tables_described_are_the_tables_migrated(ledger_url: str) -> None:  # noqa: F811
    ledger = Ledger(ledger_url)
    try:
        inspector = sa.inspect(ledger.engine)
        for table in METADATA.sorted_tables:
            described = {
                "columns": {
                    c.name: None if c.primary_key else bool(c.nullable) for c in table.columns
                },
                "primary_key": sorted(c.name for c in table.primary_key.columns),
                "indexes": {i.name: tuple(c.name for c in i.columns) for i in table.indexes},
            }
            assert _shape(inspector, table.name) == described, table.name
        migrated = set(inspector.get_table_names())
        assert {t.name for t in METADATA.sorted_tables} == migrated
    finally:
        ledger.close()


def test_the_compiled_upsert_keeps_a_hash_until_a_send_and_resets_attempts(
    ledger_url: str,  # noqa: F811
) -> None:
    ledger = Ledger(ledger_url)
    try:
        ledger.record("s", "r1", [RowOutcome("k", Outcome.SENT, value_hash="h1")])
        ledger.record("s", "r2", [RowOutcome("k", Outcome.REJECTED, "no", value_hash="h2")])
        ledger.record("s", "r3", [RowOutcome("k", Outcome.REJECTED, "no")])
        state = ledger.states("s", ["k"])["k"]
        assert (state.status, state.value_hash, state.attempts) == (Status.REJECTED, "h1", 2)
        ledger.record("s", "r4", [RowOutcome("k", Outcome.SENT, value_hash="h3")])
        state = ledger.states("s", ["k"])["k"]
        assert (state.status, state.value_hash, state.attempts) == (Status.SENT, "h3", 0)
    finally:
        ledger.close()


def test_each_version_declares_the_tables_its_ddl_creates() -> None:
    engine = sa.create_engine("sqlite://")
    try:
        with engine.begin() as conn:
            for version in range(1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    conn.exec_driver_sql(statement)
                assert set(sa.inspect(conn).get_table_names()) == tables_of(version), version
    finally:
        engine.dispose()
    assert tables_of(SCHEMA_VERSION) == set(METADATA.tables)
