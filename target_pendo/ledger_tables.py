"""The ledger's tables as SQLAlchemy Core metadata, and the three statements every accepted
call runs, built from them for the ledger's own dialect.

The migrations in ledger.py are the tables' history (what an existing ledger was created with);
these Table objects describe the result, and a test holds the two equal on SQLite and on
PostgreSQL. Statements are compiled once per ledger with named parameters, so the write path
can hand the DBAPI cursor plain dicts: per accepted Track call, SQLAlchemy's per-statement
machinery would cost more than the commit itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from target_pendo.outcomes import Status

METADATA = sa.MetaData()

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

_p = sa.bindparam


def _row_upsert(dialect: Dialect) -> sa.Insert:
    """Insert a key's state, or update it: a new status, the value hash only when sent, the
    attempts reset by a send (`reset`) or counted up, the last sighting kept when this one
    is not a sighting (`seen` NULL), what is pending replaced (NULL: nothing any more)."""
    insert = (sqlite.insert if dialect.name == "sqlite" else postgresql.insert)(row_state)
    values = insert.values(
        stream=_p("s"),
        row_key=_p("k"),
        status=_p("st"),
        value_hash=_p("h"),
        reason=_p("reason"),
        attempts=_p("a"),
        first_run=_p("r"),
        last_run=_p("r"),
        last_seen_run=_p("seen"),
        updated_at=_p("t"),
        pending=_p("pv"),
        pending_since=_p("ps"),
    )
    new, old = values.excluded, row_state.c
    sent: sa.ColumnElement[str] = sa.literal_column(f"'{Status.SENT.value}'")
    return values.on_conflict_do_update(
        index_elements=[old.stream, old.row_key],
        set_={
            "status": new.status,
            "value_hash": sa.case((new.status == sent, new.value_hash), else_=old.value_hash),
            "reason": new.reason,
            "attempts": sa.case(
                (_p("reset") == sa.literal_column("1"), sa.literal_column("0")),
                else_=old.attempts + new.attempts,
            ),
            "last_run": new.last_run,
            "last_seen_run": sa.func.coalesce(new.last_seen_run, old.last_seen_run),
            "updated_at": new.updated_at,
            "pending": new.pending,
            "pending_since": new.pending_since,
        },
    )


def _row_seen() -> sa.Update:
    """A sighting of a key in the source that leaves its status as it is."""
    return (
        sa.update(row_state)
        .where(row_state.c.stream == _p("s"), row_state.c.row_key == _p("k"))
        .values(last_seen_run=_p("r"))
    )


def _row_logged() -> sa.Insert:
    return sa.insert(sync_rows).values(
        run_id=_p("r"),
        stream=_p("s"),
        row_key=_p("k"),
        outcome=_p("o"),
        reason=_p("reason"),
        at=_p("t"),
    )


def write_statements(dialect: Dialect) -> tuple[str, str, str]:
    """(upsert of row_state, sighting, sync_rows line) as SQL for `dialect`'s DBAPI driver,
    with named parameters (`:s` for sqlite3, `%(s)s` for psycopg), so each row is a dict."""
    if dialect.positional:  # sqlite3 takes named parameters too: compile for those
        dialect = type(dialect)(paramstyle="named")  # type: ignore[call-arg]
    return (
        str(_row_upsert(dialect).compile(dialect=dialect)),
        str(_row_seen().compile(dialect=dialect)),
        str(_row_logged().compile(dialect=dialect)),
    )
