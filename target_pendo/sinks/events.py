"""EventsSink: each row becomes one Pendo Track event (Pendo has no batch Track route). Each event
is sent once, by its key: keys the ledger has as sent, and repeats in a run, are skipped. A call
is marked in flight before it goes out and sent the moment Pendo accepts it, so a crash leaves
only the calls then in flight in doubt (``track_calls.py``). A drain returns only when every row
has its outcome, so STATE follows only data Pendo holds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from target_pendo.config import EventsSpec
from target_pendo.errors import StreamConfigError
from target_pendo.ledger import RowOutcome
from target_pendo.mapping.rows import (
    EventPlan,
    RowRejected,
    check_columns,
    dumps,
    unencodable_field,
    unencodable_reason,
)
from target_pendo.pendo.answers import CallOutcome
from target_pendo.pendo.api import MAX_EVENT_AGE_MS, MAX_PROPERTIES_BYTES
from target_pendo.run.outcomes import Outcome, Status
from target_pendo.run.recorder import key_problem
from target_pendo.sinks.base import PendoSink
from target_pendo.sinks.track_calls import Answers, send_tracks


def _encoded_key(value: object) -> str:
    """A key that is not a plain string: its compact JSON (a lone surrogate: a flagged key)."""
    try:
        return dumps(value).decode()
    except UnicodeEncodeError:
        return "\ud800"  # flagged by key_problem: the row is rejected, its column named


_RESENT_IN_DOUBT = "in flight when an earlier run stopped; sent again (Pendo may now hold it twice)"


@dataclass
class _Item:
    key: str
    record: dict[str, Any]
    body: dict[str, Any] | None  # None: rejected locally, see `reason`
    field: str | None = None
    reason: str = ""


class EventsSink(PendoSink):
    MAX_SIZE_DEFAULT = 2000  # one call a row: sets how often STATE moves; enough for all workers

    def __init__(
        self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        spec = self.run.settings.spec_for(stream_name)
        assert isinstance(spec, EventsSpec)
        columns = (self.schema.get("properties") or {}).keys()
        self.plan = EventPlan.build(spec, columns)
        check_columns(stream_name, columns, [("primary_key_column", spec.primary_key_column)])
        if spec.primary_key_column:
            self.key_columns = [spec.primary_key_column]
        if not self.key_columns:
            raise StreamConfigError(
                stream_name,
                "an events stream needs a key so each event is sent once: set "
                "'primary_key_column' to a column that is unique per event (the tap declares "
                "no key properties for this stream)",
            )

    def event_key(self, record: dict[str, Any]) -> str:
        """The row's key as the ledger stores it; RowRejected when it is missing or unstorable."""
        values = [record.get(c) for c in self.key_columns]
        if missing := [c for c, v in zip(self.key_columns, values, strict=True) if v is None]:
            raise RowRejected(missing[0], f"key column '{missing[0]}' is null")
        if len(values) == 1:
            value = values[0]
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)  # what dumps would give, without the encoder
            key = value if isinstance(value, str) else _encoded_key(value)
        else:
            key = _encoded_key(values)
        if (why := key_problem(key)) is not None:
            column = ", ".join(self.key_columns)
            raise RowRejected(self.key_columns[0], f"the key ({column}) cannot be kept: {why}")
        return key

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self.count_received(context)
        try:
            key = self.event_key(record)
        except RowRejected as exc:
            self.outcomes.reject(record, exc.field, exc.reason)  # no key: nothing to remember it by
            return
        items = context.setdefault("items", [])
        try:
            if (violation := self.schema_violation(record)) is not None:
                raise RowRejected(*violation)
            body = self.plan.track_body(record, now_ms=0)
            if (bad := unencodable_field(body)) is not None:
                column = self.plan.column_for(bad)
                raise RowRejected(column, unencodable_reason(column))
        except RowRejected as exc:
            items.append(_Item(key, record, None, exc.field, exc.reason))
            return
        items.append(_Item(key, record, body))

    def drain(self, context: dict[str, Any]) -> None:
        items: list[_Item] = context.get("items", [])
        if not items:
            return
        known = self.run.ledger.states(self.stream_name, (i.key for i in items))
        skipped: list[RowOutcome] = []
        rejected: list[_Item] = []
        to_send: dict[str, _Item] = {}
        for item in items:
            state = known.get(item.key)
            if item.key in to_send or (state is not None and state.status == Status.SENT):
                skipped.append(RowOutcome(item.key, Outcome.ALREADY_SENT))
            elif item.body is None:
                rejected.append(item)  # an unusable row does not claim its key
            else:
                to_send[item.key] = item
                if state and state.status == Status.IN_FLIGHT and state.last_run != self.run.run_id:
                    skipped.append(RowOutcome(item.key, Outcome.IN_DOUBT, _RESENT_IN_DOUBT))
        self.outcomes.record(skipped)
        for item in rejected:
            self.outcomes.reject(item.record, item.field, item.reason, key=item.key)
        if to_send:
            self._send(list(to_send.values()))

    def _send(self, items: list[_Item]) -> None:
        run, stream, report = self.run, self.stream_name, self.run.report
        now_ms = int(time.time() * 1000)
        old = large = 0
        bodies = []
        for item in items:
            body = item.body
            assert body is not None
            if self.plan.timestamp_column is None:
                body["timestamp"] = now_ms
            elif now_ms - body["timestamp"] > MAX_EVENT_AGE_MS:
                old += 1
            encoded = dumps(body)
            # Only a body over the limit can hold properties over it: no second encode else.
            over = len(encoded) > MAX_PROPERTIES_BYTES
            large += over and len(dumps(body["properties"])) > MAX_PROPERTIES_BYTES
            bodies.append(encoded)
        if large:
            report.add(stream, self.sync, large_properties=large)
            self.logger.warning(
                "%d event(s) in this batch of stream '%s' have properties over %d bytes of JSON: "
                "Pendo accepts them but shows them as 'too large'; map fewer columns with "
                "'properties'.",
                large,
                stream,
                MAX_PROPERTIES_BYTES,
            )
        if old:
            report.add(stream, self.sync, old_events=old)
            self.logger.warning(
                "%d event(s) in this batch of stream '%s' are more than 7 days old: Pendo "
                "accepts them but does not process them (they will not show in Pendo).",
                old,
                stream,
            )
        send_tracks(run.client, run.workers, bodies, _BatchRows(self, items), stream=stream)


@dataclass(frozen=True)
class _BatchRows:
    """What becomes of a batch's rows as its Track calls go (``track_calls.TrackRows``)."""

    sink: EventsSink
    items: list[_Item]

    def going_out(self, index: int, answered: Answers) -> None:
        self.sink.outcomes.mark_in_flight(self.items[index].key, self._settled(answered))

    def answered(self, answered: Answers) -> None:
        self.sink.outcomes.record(self._settled(answered))

    def _settled(self, answered: Answers) -> list[RowOutcome]:
        """The ledger outcomes of these answers (a refused event is rejected at once). A call
        that got no answer has none: it stays in flight, in doubt for the next run."""
        outcomes: list[RowOutcome] = []
        for index, result in answered:
            item = self.items[index]
            if result.outcome is CallOutcome.ACCEPTED:
                outcomes.append(RowOutcome(item.key, Outcome.SENT))
            elif result.outcome is CallOutcome.NOT_SENT:  # not in Pendo: not "in doubt" next run
                outcomes.append(RowOutcome(item.key, Outcome.NOT_SENT, result.reason))
            elif result.outcome is CallOutcome.REJECTED:
                self.sink.outcomes.reject(
                    item.record,
                    None,
                    f"Pendo refused the event (HTTP {result.status}): {result.reason}",
                    key=item.key,
                )
        return outcomes
