"""ObjectsSink: rows update existing Pendo visitors, accounts or parent accounts. Only changed rows
are sent (by a hash of values and mapping); an id Pendo lacks is skipped and listed, never
created. Deletes apply once the whole input was read, never during `full_resync`, up to
`max_delete_fraction`. A drain returns only when every row has an outcome, so STATE never covers
a row that is nowhere."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from target_pendo.config import ObjectsSpec
from target_pendo.errors import DeleteGuardError, FieldGoneError, StreamConfigError
from target_pendo.ledger import RowOutcome
from target_pendo.mapping.fields import (
    FieldSchema,
    FieldTarget,
    ObjectPlan,
    live_field,
    pendo_field_type,
    pendo_type_for,
    wanted_fields,
)
from target_pendo.mapping.rows import RowRejected, dumps, unencodable_field, unencodable_reason
from target_pendo.pendo.answers import MetadataAnswer, Refused, TooBig, Verdict, reconcile
from target_pendo.pendo.api import WRITABLE_GROUPS
from target_pendo.run.outcomes import Outcome, Status
from target_pendo.run.recorder import UnknownId, key_problem
from target_pendo.sinks.base import PendoSink
from target_pendo.sinks.split import CallSize, send_batches


@dataclass
class _Row:
    object_id: str
    values: dict[str, dict[str, Any]]  # group -> field -> value
    record: dict[str, Any]
    value_hash: str = ""
    outcome: Outcome = Outcome.SENT  # until Pendo says otherwise: SKIPPED_UNKNOWN, REJECTED
    reason: str = ""
    groups_done: list[str] = field(default_factory=list)
    retry_later: bool = False  # Pendo failed it per item: it may take it on a later try
    pending_since: str | None = None  # a row from the pending queue: when it began to wait
    settled: bool = False  # its outcome is recorded (once: the call that settled it)

    def has_outcome(self) -> bool:
        return self.outcome is not Outcome.SENT or set(self.values) <= set(self.groups_done)


class ObjectsSink(PendoSink):
    MAX_SIZE_DEFAULT = 5000  # rows held before a drain, cut into `batch_size` calls per group

    def __init__(
        self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any
    ) -> None:
        self.spec = target.run_context.settings.spec_for(stream_name)
        assert isinstance(self.spec, ObjectsSpec)
        self.sync = self.spec.sync  # before the base's __init__: its recorder counts under it
        super().__init__(target, stream_name, schema, key_properties)
        self.key_columns = [self.spec.id_column]
        self._stream_state = self.run.streams[stream_name]  # shared with a replaced sink
        self._call_size = CallSize(self.spec.batch_size)
        self._parent_hint_given = False

    def setup(self) -> None:
        """Under the stream's lease: Pendo's field schema read (missing fields created when
        asked), the mapping planned against it, the SCHEMA kept for `ledger retry`."""
        super().setup()
        columns: Mapping[str, Any] = self.schema.get("properties") or {}
        pendo_schema: FieldSchema = self.run.field_schema(self.spec.kind)
        if self.spec.create_missing_fields:
            pendo_schema = self._create_missing_fields(columns, pendo_schema)
        self.plan = ObjectPlan.build(self.spec, columns.keys(), pendo_schema)
        self._mapping_hash = self.plan.fingerprint()
        self.run.ledger.remember_schema(
            self.stream_name,
            {"schema": self.original_schema, "key_properties": list(self.key_properties)},
        )
        if self.plan.new_agent_fields:
            self.logger.info(
                "Stream '%s': agent field(s) %s do not exist in Pendo yet; they are written by "
                "value, which makes Pendo create them (create_missing_fields).",
                self.stream_name,
                self.plan.new_agent_fields,
            )

    def _create_missing_fields(
        self, columns: Mapping[str, Any], pendo_schema: FieldSchema
    ) -> FieldSchema:
        """Create the fields Pendo lacks, typed from the columns; returns the schema read again."""
        spec, run, kind = self.spec, self.run, self.spec.kind
        configured = wanted_fields(spec, columns.keys())
        missing = [w for w in configured if live_field(pendo_schema, w.group, w.key) is None]
        asked: list[tuple[FieldTarget, str]] = []
        for group in WRITABLE_GROUPS:
            entries: list[tuple[FieldTarget, str]] = []
            for wanted in (w for w in missing if w.group == group):
                pendo_type = pendo_type_for(columns.get(wanted.column) or {})
                if pendo_type is None:
                    if group == "custom":
                        raise StreamConfigError(
                            self.stream_name,
                            f"custom field '{wanted.key}' does not exist in Pendo and column "
                            f"'{wanted.column}' holds arrays or objects, which no Pendo custom "
                            "field type can hold; map a text column, or create the field in "
                            "Pendo under Settings > Data Mappings",
                        )
                    continue  # an agent list: written by value, Pendo infers its type
                entries.append((wanted, pendo_type))
            if not entries:
                continue
            body = [{"name": w.key, "displayname": w.name, "type": t} for w, t in entries]
            if run.client.create_fields(kind, group, body, stream=self.stream_name):
                asked += entries
            else:
                self.logger.warning(
                    "Stream '%s': Pendo has no route to create %s %s fields here; %s",
                    self.stream_name,
                    kind,
                    group,
                    "they are written by value instead"
                    if group == "agent"
                    else "create them under Settings > Data Mappings",
                )
        if not asked:
            return pendo_schema
        if run.settings.dry_run:
            created = {g: dict[str, Any](pendo_schema.get(g) or {}) for g in WRITABLE_GROUPS}
            for wanted, pendo_type in asked:
                created[wanted.group][wanted.key] = {"Type": pendo_type, "DisplayName": wanted.name}
            return {**pendo_schema, **created}
        fresh = run.field_schema(kind, fresh=True)
        made = [
            f"{w.group} field '{w.key}' ({pendo_field_type(entry)})"
            for w, _ in asked
            if (entry := live_field(fresh, w.group, w.key)) is not None
        ]
        if made:
            self.logger.info(
                "Stream '%s': created %s %s in Pendo (create_missing_fields).",
                self.stream_name,
                kind,
                ", ".join(made),
            )
            run.report.add(self.stream_name, self.spec.sync, fields_created=len(made))
        return fresh

    def _warn_fields_written_by_value(self) -> None:
        """Pendo's "Block undefined agent metadata fields" drops values written by value: say so."""
        new, run = self.plan.new_agent_fields, self.run
        if not new or run.settings.dry_run or not run.report.counts(self.stream_name).sent:
            return
        fresh = run.field_schema(self.spec.kind, fresh=True)
        if absent := [key for key in new if live_field(fresh, "agent", key) is None]:
            self.logger.warning(
                "Stream '%s': agent field(s) %s were written by value but Pendo does not have "
                "them afterwards: the subscription's 'Block undefined agent metadata fields' "
                "setting may be on, and those values were discarded. Create the fields in "
                "Pendo (Settings > Data Mappings) and run with 'full_resync'.",
                self.stream_name,
                absent,
            )

    @property
    def include_sdc_metadata_properties(self) -> bool:
        """Deletes need `_sdc_deleted_at`, which the SDK strips unless metadata is kept."""
        return super().include_sdc_metadata_properties or self.spec.delete_behavior != "nothing"

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        self.count_received(context)
        column = self.spec.deleted_column  # a soft-delete column: set when not null, not false
        flagged = column is not None and record.get(column) not in (None, False)
        gone = flagged or record.get("_sdc_deleted_at") is not None
        if gone and self.spec.delete_behavior != "nothing":
            raw_id = record.get(self.spec.id_column)
            if raw_id is not None and key_problem(str(raw_id)) is None:  # the ledger keeps it
                self._stream_state.deleted_ids.append(str(raw_id))
                return
        try:
            if (violation := self.schema_violation(record)) is not None:
                raise RowRejected(*violation)
            object_id, values = self.plan.row_values(record)
            if (why := key_problem(object_id)) is not None:
                raise RowRejected(self.spec.id_column, f"the id cannot be kept: {why}")
            encoded = dumps(values)
        except RowRejected as exc:
            self._reject_row(record, exc.field, exc.reason)
            return
        except UnicodeEncodeError:
            column = self.plan.column_for(unencodable_field(values) or "")
            self._reject_row(record, column, unencodable_reason(column))
            return
        row = _Row(object_id, values, record, self._value_hash(encoded))
        context.setdefault("rows", []).append(row)

    def _value_hash(self, encoded: bytes) -> str:
        """What the ledger compares to find a changed row: the values and the mapping."""
        return hashlib.sha256(self._mapping_hash.encode() + encoded).hexdigest()[:32]

    def _reject_row(self, record: dict[str, Any], field: str | None, reason: str) -> None:
        raw_id = record.get(self.spec.id_column)
        key = None if raw_id is None or raw_id == "" else str(raw_id)
        self.outcomes.reject(record, field, reason, key=key)

    def drain(self, context: dict[str, Any]) -> None:
        rows: list[_Row] = context.get("rows", [])
        if not rows:
            return
        # One id twice in a batch: only its last row is sent (chunks go out concurrently).
        last = {r.object_id: r for r in rows}
        self._record([r.object_id for r in rows if last[r.object_id] is not r], Outcome.SUPERSEDED)
        rows = [r for r in rows if last[r.object_id] is r]
        if not self.run.settings.full_resync:
            known = self.run.ledger.states(self.stream_name, last)
            sent = {k: s.value_hash for k, s in known.items() if s.status == Status.SENT}
            unchanged = [r.object_id for r in rows if sent.get(r.object_id, "") == r.value_hash]
            self._record(unchanged, Outcome.UNCHANGED)
            rows = [r for r in rows if sent.get(r.object_id, "") != r.value_hash]
        # Recorded as each call is answered: a run killed mid-drain resends only unanswered ones.
        self._send_chunks(rows, self._settle)

    def _record(self, ids: list[str], outcome: Outcome, reason: str | None = None) -> None:
        if ids:
            self.outcomes.record([RowOutcome(i, outcome, reason) for i in ids])

    def _send_chunks(
        self, rows: list[_Row], on_answered: Callable[[list[_Row]], None] | None = None
    ) -> None:
        """Per group (agent first, so ids Pendo lacks skip the rest), a group's calls on the
        run's workers; `on_answered` gets, on the worker, the rows a call settled (each once)."""
        for group in self.plan.groups:
            pending = [r for r in rows if r.outcome is Outcome.SENT and group in r.values]
            size = self._call_size.value
            chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
            refusals = itertools.count(1)
            send = functools.partial(self._send_group, group, refusals, on_answered)
            self.run.workers.each(send, chunks)

    def _send_group(
        self,
        group: str,
        refusals: Iterator[int],
        on_answered: Callable[[list[_Row]], None] | None,
        rows: list[_Row],
        checkpoint: Callable[[], None],
    ) -> None:
        plan, client, stream = self.plan, self.run.client, self.stream_name

        def send(batch: Sequence[_Row]) -> Verdict | Refused | TooBig:
            body = dumps([{plan.id_key: r.object_id, "values": r.values[group]} for r in batch])
            answer = client.update_metadata(plan.kind, group, body, len(batch), stream=stream)
            if isinstance(answer, MetadataAnswer):
                return reconcile(answer, [r.object_id for r in batch])
            return answer

        def on_refused(refusal: Refused) -> None:
            # Schema read again at a group's 1st, 2nd, 4th... 400: a gone field found in O(log k).
            if refusal.status == 400 and (n := next(refusals)) & (n - 1) == 0:
                self._stop_if_a_field_is_gone(group, refusal.reason)

        result = send_batches(
            rows,
            send,
            key=lambda r: r.object_id,
            size=self._call_size,
            on_refused=on_refused,
            checkpoint=checkpoint,
        )
        for row in result.confirmed:
            row.groups_done.append(group)
        for row in result.missing:
            row.outcome = Outcome.SKIPPED_UNKNOWN
        for verb, rejected in (("failed", result.failed), ("refused", result.refused)):
            for row, reason in rejected:
                row.outcome = Outcome.REJECTED
                row.reason = f"Pendo {verb} the {group} update: {reason}"
                row.retry_later = verb == "failed"  # per item: a later try may take it
        answered = [r for r in rows if not r.settled and r.has_outcome()]
        for row in answered:
            row.settled = True
        if on_answered is not None and answered:
            on_answered(answered)
        self._hint_parent_accounts(len(rows), len(result.missing))
        if result.halvings:
            self.logger.info(
                "Stream '%s': Pendo could not finish %d %s call(s) in time (408 or no answer); "
                "calls now carry at most %d rows.",
                self.stream_name,
                result.halvings,
                group,
                self._call_size.value,
            )
        if (extra := result.calls - 1 - result.halvings) > 0:
            self.logger.info(
                "Stream '%s': %d more %s call(s) found %d row(s) Pendo refused or failed.",
                self.stream_name,
                extra,
                group,
                len(result.refused) + len(result.failed),
            )

    def _stop_if_a_field_is_gone(self, group: str, reason: str) -> None:
        """A 400 may mean a field was deleted mid-run: stop, naming it, rather than bisect rows."""
        fresh = self.run.field_schema(self.spec.kind, fresh=True)
        for target in self.plan.targets:
            known = target.type is not None  # a field to be created by value is not "gone"
            if target.group == group and known and live_field(fresh, group, target.key) is None:
                raise FieldGoneError(
                    self.stream_name,
                    f"{group} field '{target.key}' (column '{target.column}') no longer "
                    f"exists in Pendo's {self.spec.kind} fields, and Pendo refused the call "
                    f"({reason}); re-create the field in Pendo or remove it from "
                    f"'{group}_fields'. Rows not confirmed were not marked sent.",
                )

    def _hint_parent_accounts(self, rows: int, missing: int) -> None:
        """Most ids of an account call unknown: maybe the subscription uses parent accounts."""
        likely = self.spec.kind == "account" and rows >= 10 and missing >= rows / 2
        if not likely or self._parent_hint_given:
            return
        self._parent_hint_given = True
        self.logger.warning(
            "Stream '%s': Pendo does not know %d of %d account ids of a call. If the "
            "subscription has parent accounts on, its account ids are "
            "'ParentAccountID::childAccountID': map a column holding ids in that form.",
            self.stream_name,
            missing,
            rows,
        )

    def _pending_values(self, row: _Row) -> str | None:
        """What the pending queue keeps of a row Pendo could not take yet (values, mapping)."""
        retry = row.outcome is Outcome.SKIPPED_UNKNOWN or row.retry_later
        if not (retry and self.run.settings.retry_pending_days):
            return None
        return dumps({"mapping": self._mapping_hash, "values": row.values}).decode("utf-8")

    def _outcome(self, row: _Row) -> RowOutcome:
        key, outcome, since = row.object_id, row.outcome, row.pending_since
        if outcome is Outcome.SENT:
            return RowOutcome(key, outcome, value_hash=row.value_hash, from_source=since is None)
        reason = (
            f"no such {self.plan.kind}"
            if outcome is Outcome.SKIPPED_UNKNOWN
            else self.run.client.redact(self._reason(row))  # Pendo's words may quote a value
        )
        pending = self._pending_values(row)
        return RowOutcome(key, outcome, reason, None, pending, since, since is None)

    @staticmethod
    def _reason(row: _Row) -> str:
        done = f" (its {', '.join(row.groups_done)} fields were updated)" if row.groups_done else ""
        return row.reason + done

    def _settle(self, rows: list[_Row]) -> None:
        """Each row's outcome to the recorder: a rejected row on its own (`reject` redacts its
        reason and writes the rejects file), the rest in one go."""
        outcomes: list[RowOutcome] = []
        unknown: list[UnknownId] = []
        for row in rows:
            if row.outcome is Outcome.REJECTED:
                pending = self._pending_values(row)
                reason = self._reason(row)
                self.outcomes.reject(row.record, None, reason, key=row.object_id, pending=pending)
                continue
            outcomes.append(self._outcome(row))
            if row.outcome is Outcome.SKIPPED_UNKNOWN:
                unknown.append(UnknownId(self.plan.kind, row.object_id, self.row_key(row.record)))
        self.outcomes.record(outcomes, unknown)

    def _retry_pending(self) -> None:
        """Send again, after this run's rows, those Pendo could not take before (a tap never resends
        an unchanged row). Dropped instead: rows past retry_pending_days, of another mapping,
        deleted, or any after a complete full-table sync (a row it did not send left)."""
        run, stream, state = self.run, self.stream_name, self._stream_state
        days = run.settings.retry_pending_days
        if not days or not run.input_complete or self.replaced:
            return
        cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat()
        gone = set(state.deleted_ids)
        full_table = state.versions.completed is not None
        counts: Counter[str] = Counter()
        lock = threading.Lock()

        def count(**increments: int) -> None:
            with lock:
                counts.update(increments)
            run.report.add(stream, self.sync, **increments)

        def record(answered: list[_Row]) -> None:
            """Outcomes to the ledger only (not the tap's counts or files), counts to the report."""
            outcomes = [self._outcome(r) for r in answered]
            self.outcomes.record(outcomes)
            sent = sum(o.outcome is Outcome.SENT for o in outcomes)
            waiting = sum(o.pending is not None for o in outcomes)
            count(
                pending_sent=sent,
                pending_left=waiting,
                pending_refused=len(outcomes) - sent - waiting,
            )

        after: str | None = None
        while page := run.ledger.pending_rows(stream, run.run_id, after=after):
            after = page[-1][0]
            rows: list[_Row] = []
            expired: list[str] = []
            invalid: list[str] = []
            for key, blob, since in page:
                kept = json.loads(blob)
                if since < cutoff:
                    expired.append(key)
                elif full_table or key in gone or kept.get("mapping") != self._mapping_hash:
                    invalid.append(key)
                else:
                    rows.append(self._from_queue(key, kept["values"], since))
            if expired or invalid:
                self.outcomes.drop_pending(expired + invalid)
                count(pending_expired=len(expired), pending_invalidated=len(invalid))
            if rows:
                count(pending_retried=len(rows))
                try:
                    self._send_chunks(rows, record)
                finally:  # a row without an answer (the run stopped) still waits in the queue
                    count(pending_left=sum(not r.settled for r in rows))
        if counts["pending_retried"]:
            self.logger.info(
                "Stream '%s': %d row(s) Pendo could not take before were sent again from the "
                "ledger's pending queue: %d now sent, %d still pending, %d refused.",
                stream,
                counts["pending_retried"],
                counts["pending_sent"],
                counts["pending_left"],
                counts["pending_refused"],
            )

    def _from_queue(self, key: str, values: dict[str, dict[str, Any]], since: str) -> _Row:
        """A row of the pending queue, under today's null rule."""
        if self.plan.skip_nulls:
            values = {
                group: kept
                for group, fields in values.items()
                if (kept := {k: v for k, v in fields.items() if v is not None})
            }
        value_hash = self._value_hash(dumps(values))
        return _Row(key, values, {self.spec.id_column: key}, value_hash, pending_since=since)

    def activate_version(self, _new_version: int) -> None:
        """Silences the SDK's warning: `clean_up` acts on the versions (``singer/versions.py``)."""

    def clean_up(self) -> None:
        super().clean_up()
        self._retry_pending()
        self._warn_fields_written_by_value()
        run, state = self.run, self._stream_state
        if self.spec.delete_behavior == "nothing" or not run.input_complete or self.replaced:
            return  # deletes once per stream, by its last sink, after the whole input
        full_table = state.versions.completed is not None
        if run.settings.full_resync:
            if state.deleted_ids or full_table:
                self.logger.info(
                    "Stream '%s': deletes are not applied during a full resync.", self.stream_name
                )
            return
        if not full_table and state.versions.incomplete:
            self.logger.warning(
                "Stream '%s': the full-table sync (version %s) was never seen complete: the "
                "tap announced it with ACTIVATE_VERSION but sent no closing ACTIVATE_VERSION "
                "(it stopped early, or it is a singer-sdk tap, which announces a sync only when "
                "it begins). Ids absent from it are not %sed.",
                self.stream_name,
                state.versions.incomplete[-1],
                self.spec.delete_behavior,
            )
            run.report.add(self.stream_name, self.sync, deletes_withheld=1)
        in_pendo = set(run.ledger.keys_with_status(self.stream_name, [Status.SENT]))
        candidates = {i for i in state.deleted_ids if i in in_pendo}
        if full_table:
            candidates |= set(run.ledger.unseen_since(self.stream_name, run.run_id, [Status.SENT]))
        if not candidates:
            return
        verb = self.spec.delete_behavior
        if len(candidates) > run.settings.max_delete_fraction * len(in_pendo):
            raise DeleteGuardError(
                f"stream '{self.stream_name}': this run would {verb} {len(candidates)} of the "
                f"{len(in_pendo)} {self.plan.kind}s it has in Pendo "
                f"({len(candidates) / len(in_pendo):.0%}), more than max_delete_fraction="
                f"{run.settings.max_delete_fraction:g}; nothing was {verb}ed. If the source "
                "really lost these rows, raise 'max_delete_fraction' for one run."
            )
        ids = sorted(candidates)
        if verb == "delete":
            jobs = run.client.bulk_delete(self.plan.kind, ids, stream=self.stream_name)
            self.logger.info(
                "Stream '%s': asked Pendo to delete %d %s(s) (jobs %s).",
                self.stream_name,
                len(ids),
                self.plan.kind,
                jobs,
            )
            self._record(ids, Outcome.DELETED, f"bulk delete job(s) {', '.join(jobs)}")
            return
        nulls = {
            group: {t.key: None for t in self.plan.targets if t.group == group}
            for group in self.plan.groups
        }
        rows = [_Row(i, nulls, {self.spec.id_column: i}) for i in ids]
        self._send_chunks(rows)
        cleared = [r.object_id for r in rows if r.outcome is Outcome.SENT]
        self._record(cleared, Outcome.CLEARED, "left the source")
        for row in rows:
            if row.outcome is not Outcome.SENT:
                self.logger.warning(
                    "Stream '%s': could not clear %s '%s': %s",
                    self.stream_name,
                    self.plan.kind,
                    row.object_id,
                    row.reason or "Pendo does not have it",
                )
