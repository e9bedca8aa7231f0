"""The ledger's tables as SQLAlchemy Core metadata, from which every query and write is built
(`migrations.py` keeps the DDL that made them)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

METADATA = sa.MetaData()


def now() -> str:
    """ISO 8601 text in UTC, to the millisecond: text order is time order."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


ledger_meta = sa.Table(
    "ledger_meta",
    METADATA,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)
sync_runs = sa.Table(
    "sync_runs",
    METADATA,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("finished_at", sa.String(40)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("full_resync", sa.Integer, nullable=False, server_default="0"),
    sa.Column("report", sa.Text),
    sa.Index("sync_runs_started", "started_at"),
)
row_state = sa.Table(
    "row_state",
    METADATA,
    sa.Column("stream", sa.String(512), primary_key=True),
    sa.Column("row_key", sa.String(2048), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("value_hash", sa.String(64)),
    sa.Column("reason", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_run", sa.String(64), nullable=False),
    sa.Column("last_run", sa.String(64), nullable=False),
    sa.Column("last_seen_run", sa.String(64)),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("pending", sa.Text),  # JSON: what to send again (``sinks/objects.py``)
    sa.Column("pending_since", sa.String(40)),
    sa.Index("row_state_status", "stream", "status"),
)
sync_rows = sa.Table(
    "sync_rows",
    METADATA,
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("stream", sa.String(512), nullable=False),
    sa.Column("row_key", sa.String(2048), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Index("sync_rows_run", "run_id", "stream", "outcome"),
)
stream_leases = sa.Table(
    "stream_leases",
    METADATA,
    sa.Column("stream", sa.String(512), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.String(40), nullable=False),
)
stream_schemas = sa.Table(
    "stream_schemas",
    METADATA,
    sa.Column("stream", sa.String(512), primary_key=True),
    sa.Column("message", sa.Text, nullable=False),  # JSON: {"schema", "key_properties"}
    sa.Column("updated_at", sa.String(40), nullable=False),
)
