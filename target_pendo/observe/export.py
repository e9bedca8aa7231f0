"""`target-pendo ledger export`: the ledger's sync log (`sync_runs`, `sync_rows`) as Singer
messages on stdout, for any Singer loader; docs/sync-log-export.md says what it writes and why.

Only finished runs, each whole (record, lines, STATE; a loader that stops part way gets the
run again), in the order they finished, so the bookmark never passes a running run.
`occurrence` numbers a key's lines within a run, as (run_id, stream, row_key) is not unique.
The bookmark looks back OVERLAP before its `finished_at` and names the runs exported in it
(`recent_runs`): a finish is timed before its commit by its own machine's clock, so a run can
become visible late. Pages of runs and lines keep memory flat; every string is redacted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from singer_sdk import typing as th
from singer_sdk.singerlib import Message, RecordMessage, SchemaMessage, StateMessage, format_message

from target_pendo.config import config_secrets
from target_pendo.errors import ConfigError, TargetPendoError
from target_pendo.ledger import Ledger, sync_rows, sync_runs
from target_pendo.ledger.tables import now
from target_pendo.observe.redact import Redactor
from target_pendo.run.outcomes import RunStatus

RUNS_STREAM = "pendo_sync_runs"
ROWS_STREAM = "pendo_sync_rows"
RUNS_KEY = ["run_id"]
ROWS_KEY = ["run_id", "stream", "row_key", "occurrence"]
# Far more than a commit takes or clocks drift, few enough runs to keep the state small.
OVERLAP = dt.timedelta(hours=1)
RUN_PAGE = 100  # runs (reports included) read per query
ROW_PAGE = 5000  # sync_rows lines fetched at a time
# (the coalesce only keeps a hand-edited row in order)
_finished = sa.func.coalesce(sync_runs.c.finished_at, sync_runs.c.started_at)
# run_id, status, started_at, finished_at, full_resync, report
_Run = sa.Row[str, str, str, str, int, str | None]

RUNS_SCHEMA = th.PropertiesList(
    th.Property("run_id", th.StringType, required=True, description="the run's id"),
    th.Property(
        "status",
        th.StringType,
        required=True,
        description="succeeded, failed, stopped (by a signal) or abandoned (killed)",
    ),
    th.Property("started_at", th.DateTimeType, required=True),
    th.Property("finished_at", th.DateTimeType),
    th.Property("full_resync", th.BooleanType, required=True),
    th.Property(
        "report",
        th.ObjectType(),
        description="the run report (per-stream counts, HTTP timeline, reject reasons); null "
        "for a run that was killed",
    ),
).to_dict()
ROWS_SCHEMA = th.PropertiesList(
    th.Property("run_id", th.StringType, required=True),
    th.Property("stream", th.StringType, required=True),
    th.Property("row_key", th.StringType, required=True),
    th.Property(
        "occurrence",
        th.IntegerType,
        required=True,
        description="1 for the run's first line of this key of this stream, 2 for its next...",
    ),
    th.Property(
        "outcome",
        th.StringType,
        required=True,
        description="sent, rejected, superseded, skipped_unknown, cleared, deleted, in_doubt, "
        "not_sent",
    ),
    th.Property("reason", th.StringType, description="why, for a row not sent"),
    th.Property("at", th.DateTimeType, required=True),
).to_dict()


class ExportError(TargetPendoError):
    """The export cannot start where it was asked to, or its reader went away."""


def _earlier(moment: str, by: dt.timedelta) -> str:
    when = dt.datetime.fromisoformat(moment)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when.astimezone(dt.UTC) - by).isoformat(timespec="milliseconds")


@dataclass
class Bookmark:
    """Runs up to `finished_at` are exported; `recent` names those within OVERLAP before it."""

    finished_at: str | None = None
    recent: dict[str, str] = field(default_factory=dict)

    def lower_bound(self) -> str | None:
        return None if self.finished_at is None else _earlier(self.finished_at, OVERLAP)

    def advance(self, run_id: str, finished_at: str, now: str) -> None:
        """`run_id` is exported. The bookmark is never later than `now`, this machine's clock,
        so one host with a clock far ahead cannot make the next exports skip others' runs."""
        self.recent[run_id] = finished_at
        latest = min(finished_at, now)
        if self.finished_at is None or latest > self.finished_at:
            self.finished_at = latest
        bound = self.lower_bound()
        assert bound is not None
        self.recent = {r: f for r, f in self.recent.items() if f >= bound}

    def state(self) -> dict[str, Any]:
        mark = {
            "replication_key": "finished_at",
            "replication_key_value": self.finished_at,
            "recent_runs": dict(sorted(self.recent.items())),
        }
        return {"bookmarks": {RUNS_STREAM: mark}}

    @classmethod
    def from_state(cls, value: Any, where: str) -> Bookmark:
        if isinstance(value, dict) and value.get("type") == "STATE" and "value" in value:
            value = value["value"]
        if value is None or value == {}:
            return cls()
        bookmarks = value.get("bookmarks") if isinstance(value, dict) else None
        if not isinstance(bookmarks, dict):
            raise ConfigError(
                f"{where} is not a Singer state: it has no 'bookmarks' object; give the last "
                "STATE the loader wrote after an export (or no --state to export every run)"
            )
        mark = bookmarks.get(RUNS_STREAM)
        if mark is None:
            return cls()  # a state without our bookmark: nothing exported yet
        try:  # (AttributeError: a mark that is not an object)
            finished_at, recent = mark.get("replication_key_value"), mark.get("recent_runs", {})
            if finished_at is not None:  # a time (written as the ledger writes them), or else
                finished_at = _earlier(str(finished_at), dt.timedelta(0))
            if not isinstance(recent, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in recent.items()
            ):
                raise ValueError("recent_runs")
        except (AttributeError, TypeError, ValueError):
            raise ConfigError(
                f"{where}: bookmarks.{RUNS_STREAM} is not a bookmark this export wrote (it "
                "needs replication_key_value, a time, and recent_runs, an object of run ids and "
                "times); give the loader's last STATE, or --since RUN_ID"
            ) from None
        return cls(finished_at, dict(recent))


def read_state_file(path: str) -> Bookmark:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read state file {path}: {why}") from None
    if not text.strip():
        return Bookmark()
    try:
        value = json.loads(text)
    except ValueError:
        try:  # the loader's whole output, one state per line: its last
            value = json.loads(text.strip().splitlines()[-1])
        except ValueError:
            raise ConfigError(
                f"state file {path} is not JSON: give the last STATE the loader wrote"
            ) from None
    return Bookmark.from_state(value, f"state file {path}")


class SyncLogExport:
    """One export: the SCHEMAs, then each run after the bookmark with its lines and a STATE."""

    def __init__(self, ledger: Ledger, redact: Redactor, out: TextIO) -> None:
        self.ledger = ledger
        self.redact = redact
        self.out = out
        self.runs = 0
        self.rows = 0
        self.unreadable_reports: list[str] = []

    def _runs_after(self, bookmark: Bookmark) -> Iterator[_Run]:
        """The finished runs from the bookmark's overlap on, in the order they finished (keyset
        paging: a run that commits meanwhile is not skipped or read twice)."""
        t = sync_runs.c
        columns = (t.run_id, t.status, t.started_at, _finished.label("finished_at"))
        query = (
            sa.select(*columns, t.full_resync, t.report)
            .where(t.status != str(RunStatus.RUNNING))
            .order_by(_finished, t.run_id)
            .limit(RUN_PAGE)
        )
        bound = bookmark.lower_bound()
        if bound is not None:
            query = query.where(_finished >= bound)
        page = query
        while True:
            with self.ledger.reading("reading its runs"), self.ledger.engine.connect() as conn:
                found = conn.execute(page).all()
            for run in found:
                if run.run_id not in bookmark.recent:
                    yield run
            if len(found) < RUN_PAGE:
                return
            end, last = found[-1].finished_at, found[-1].run_id
            page = query.where(sa.or_(_finished > end, sa.and_(_finished == end, t.run_id > last)))

    def _lines(self, run_id: str) -> Iterator[dict[str, Any]]:
        """The run's sync_rows lines as records, numbered per key, from one query (one snapshot)."""
        r = sync_rows.c
        query = (
            sa.select(r.stream, r.row_key, r.outcome, r.reason, r.at)
            .where(r.run_id == run_id)
            .order_by(r.stream, r.row_key, r.at, r.outcome, r.reason)
        )
        last: tuple[str, str] | None = None
        occurrence = 0
        doing = f"reading the rows of run {run_id}"
        with self.ledger.reading(doing), self.ledger.engine.connect() as conn:
            # a server-side cursor (PostgreSQL), fetched ROW_PAGE lines at a time
            result = conn.execution_options(yield_per=ROW_PAGE).execute(query)
            for stream, row_key, outcome, reason, at in result:
                occurrence = occurrence + 1 if last == (stream, row_key) else 1
                last = (stream, row_key)
                yield {
                    "run_id": run_id,
                    "stream": self.redact(stream),
                    "row_key": self.redact(row_key),
                    "occurrence": occurrence,
                    "outcome": outcome,
                    "reason": None if reason is None else self.redact(reason),
                    "at": at,
                }

    def run_of(self, run_id: str) -> Bookmark:
        """`--since RUN_ID`: that run and every run that finished before it count as exported."""
        t = sync_runs.c
        with self.ledger.reading(f"reading run {run_id}"), self.ledger.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.status, _finished).where(t.run_id == run_id)
            ).one_or_none()
            if row is None:
                raise ExportError(
                    f"--since {run_id}: no such run in the ledger at {self.ledger.where} (a "
                    "typo, or pruned by the retention window); give the run_id of the latest "
                    f"run in the warehouse's {RUNS_STREAM}"
                )
            if row[0] == str(RunStatus.RUNNING):
                raise ExportError(
                    f"--since {run_id}: that run is still running, so it has not been exported "
                    "yet; give the latest exported run (it is in the warehouse's "
                    f"{RUNS_STREAM})"
                )
            end = str(row[1])
            window = conn.execute(
                sa.select(t.run_id, _finished).where(
                    t.status != str(RunStatus.RUNNING),
                    _finished >= _earlier(end, OVERLAP),
                    sa.or_(_finished < end, sa.and_(_finished == end, t.run_id <= run_id)),
                )
            ).all()
        return Bookmark(end, {r[0]: str(r[1]) for r in window})

    def _write(self, message: Message) -> None:
        self.out.write(format_message(message) + "\n")

    def _report(self, run: _Run) -> dict[str, Any] | None:
        if not run.report:
            return None
        try:
            report = json.loads(run.report)
        except ValueError:
            report = None
        if not isinstance(report, dict):
            self.unreadable_reports.append(run.run_id)
            return None
        value = self.redact.value(report)
        assert isinstance(value, dict)
        return value

    def run(self, bookmark: Bookmark) -> Bookmark:
        started = now()
        self._write(SchemaMessage(RUNS_STREAM, RUNS_SCHEMA, RUNS_KEY))
        self._write(SchemaMessage(ROWS_STREAM, ROWS_SCHEMA, ROWS_KEY))
        for run in self._runs_after(bookmark):
            record = run._asdict()  # the properties in the SELECT's order
            record.update(full_resync=bool(run.full_resync), report=self._report(run))
            self._write(RecordMessage(RUNS_STREAM, record))
            for line in self._lines(run.run_id):
                self._write(RecordMessage(ROWS_STREAM, line))
                self.rows += 1
            self.runs += 1
            bookmark.advance(run.run_id, run.finished_at, started)
            self._write(StateMessage(bookmark.state()))
            self.out.flush()  # the loader commits this run while the next one is read
        if not self.runs:  # the bookmark as it was: a loader passes it on, the state stays
            self._write(StateMessage(bookmark.state()))
            self.out.flush()
        return bookmark


def export_sync_log(
    config: dict[str, Any],
    url: str,
    *,
    since: str | None = None,
    state_path: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Write the export to `out` (stdout) and say on stderr what it held."""
    bookmark = read_state_file(state_path) if state_path else Bookmark()
    stream = out or sys.stdout
    with contextlib.closing(Ledger(url, read_only=True)) as ledger:
        export = SyncLogExport(ledger, Redactor(config_secrets(config)), stream)
        if since is not None:
            bookmark = export.run_of(since)
        try:
            export.run(bookmark)
        except BrokenPipeError:
            if out is None:  # no second error when Python flushes stdout at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise ExportError(
                f"the program reading the export stopped after {export.runs} run(s) (broken "
                "pipe): the runs whose STATE it did not pass on are exported again next time"
            ) from None
    if export.unreadable_reports:
        print(
            f"target-pendo: the report of {len(export.unreadable_reports)} run(s) is not a JSON "
            f"object and was exported as null: {', '.join(export.unreadable_reports[:5])}",
            file=sys.stderr,
        )
    print(
        f"target-pendo: exported {export.runs} finished run(s) and {export.rows} sync_rows "
        f"line(s) from the ledger at {ledger.where}",
        file=sys.stderr,
    )
    return 0
