"""Shared by the ledger store tests: a ledger URL on each backend, and plain queries."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from target_pendo.ledger import default_url


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger URL: SQLite under tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return default_url(tmp_path / "state")
    return request.getfixturevalue("postgres_server").new_database()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def scalar(url: str, sql: str, **params: object) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def rows(url: str, sql: str, **params: object) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()
