"""ObjectsSink: rows update existing Pendo visitors, accounts or parent accounts.

Only changed rows are sent: the ledger keeps, per object id, a hash of the values Pendo was
last sent (and of the mapping, so a config change re-sends); a row with the same hash is
counted "unchanged" (`full_resync` sends everything once). Rows rejected or unknown earlier are
sent again when they arrive again.

One bulk call per field group (agent, custom) per `batch_size` rows. Pendo's answer sorts each
row: updated; `missing` (an id Pendo does not have: skipped and listed, never created); failed
with an error (rejected). A batch Pendo refuses whole (400) is bisected by
``split.send_with_splits`` so only the bad rows are rejected, each with Pendo's reason.

Deletes (`delete_behavior` clear | delete): ids whose row arrives with `_sdc_deleted_at`, and,
after a completed full-table sync (ACTIVATE_VERSION), ids sent before that the sync did not
see. They are acted on once the whole input was read, never during `full_resync`, and only if
they are at most `max_delete_fraction` of the ids the stream has in Pendo.
`process_batch` returns only when every row has an outcome, so STATE, which the SDK writes
after a full drain, never covers a row that is nowhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from target_pendo.client import MetadataAnswer
from target_pendo.errors import DeleteGuardError
from target_pendo.fields import ObjectPlan
from target_pendo.ledger import RowOutcome
from target_pendo.mapping import RowRejected, dumps
from target_pendo.settings import ObjectsSpec
from target_pendo.sinks.base import PendoSink
from target_pendo.split import Refused, send_with_splits

DELETED_AT = "_sdc_deleted_at"


@dataclass
class _Row:
    object_id: str
    values: dict[str, dict[str, Any]]  # group -> field -> value
    record: dict
    value_hash: str = ""
    outcome: str = "sent"  # sent | skipped_unknown | rejected
    reason: str = ""
    groups_done: list[str] = field(default_factory=list)


class ObjectsSink(PendoSink):
    # Rows held before a drain; each drain is cut into `batch_size` calls per group.
    MAX_SIZE_DEFAULT = 5000

    def __init__(self, target: Any, stream_name: str, schema: dict, key_properties: Any) -> None:
        self.spec = target.run_context.settings.spec_for(stream_name)
        assert isinstance(self.spec, ObjectsSpec)
        super().__init__(target, stream_name, schema, key_properties)
        self.SYNC = self.spec.sync
        self.plan = ObjectPlan.build(
            self.spec,
            (self.schema.get("properties") or {}).keys(),
            self.run.field_schema(self.spec.kind),
        )
        self._mapping_hash = self.plan.fingerprint()
        self._deleted_ids: list[str] = []
        self._full_table_done = False
        if self.plan.new_agent_fields:
            self.logger.info(
                "Stream '%s': agent field(s) %s do not exist in Pendo yet; they are created by "
                "the first write (create_missing_fields).",
                stream_name,
                self.plan.new_agent_fields,
            )

    @property
    def include_sdc_metadata_properties(self) -> bool:
        """Deletes need `_sdc_deleted_at`, which the SDK strips unless metadata is kept."""
        return super().include_sdc_metadata_properties or self.spec.delete_behavior != "nothing"

    def row_key(self, record: dict) -> Any:
        return record.get(self.spec.id_column)

    # --- rows -------------------------------------------------------------------------------
    def process_record(self, record: dict, context: dict) -> None:
        context["received"] = context.get("received", 0) + 1
        if record.get(DELETED_AT) is not None and self.spec.delete_behavior != "nothing":
            raw_id = record.get(self.spec.id_column)
            if raw_id is not None:
                self._deleted_ids.append(str(raw_id))
                return
        violation = self.schema_violation(record)
        if violation is not None:
            self._reject_row(record, *violation)
            return
        try:
            object_id, values = self.plan.row_values(record)
        except RowRejected as exc:
            self._reject_row(record, exc.field, exc.reason)
            return
        digest = hashlib.sha256(self._mapping_hash.encode() + dumps(values)).hexdigest()[:32]
        context.setdefault("rows", []).append(_Row(object_id, values, record, digest))

    def _reject_row(self, record: dict, field: str | None, reason: str) -> None:
        raw_id = record.get(self.spec.id_column)
        key = None if raw_id is None or raw_id == "" else str(raw_id)
        self.reject(record, field, reason, key=key)

    def drain(self, context: dict) -> None:
        rows: list[_Row] = context.get("rows", [])
        run, stream = self.run, self.stream_name
        run.report.add(stream, self.SYNC, received=context.get("received", 0))
        if not rows:
            return
        # One id twice in a batch: only its last row is sent (chunks go out concurrently, so
        # order between them is not kept); the earlier rows are logged as superseded.
        last = {r.object_id: i for i, r in enumerate(rows)}
        superseded = [r for i, r in enumerate(rows) if last[r.object_id] != i]
        if superseded:
            run.ledger.record(
                stream, run.run_id, [RowOutcome(r.object_id, "superseded") for r in superseded]
            )
            run.report.add(stream, self.SYNC, superseded=len(superseded))
            rows = [r for i, r in enumerate(rows) if last[r.object_id] == i]
        live = rows
        if not run.full_resync:
            known = run.ledger.states(stream, (r.object_id for r in rows))
            unchanged = [
                r
                for r in rows
                if (s := known.get(r.object_id)) is not None
                and s.status == "sent"
                and s.value_hash == r.value_hash
            ]
            if unchanged:
                run.ledger.record(
                    stream, run.run_id, [RowOutcome(r.object_id, "unchanged") for r in unchanged]
                )
                run.report.add(stream, self.SYNC, unchanged=len(unchanged))
                skip = {id(r) for r in unchanged}
                live = [r for r in rows if id(r) not in skip]
        self._send_chunks(live, lambda r, g: r.values[g])
        size = self.spec.batch_size
        for start in range(0, len(live), size):
            self._settle(live[start : start + size])

    def _send_chunks(self, rows: list[_Row], values_of: Any) -> None:
        """Per group (agent first, so ids Pendo lacks skip the rest), `batch_size` rows a
        call, the calls of a group concurrently on the client's pool."""
        size = self.spec.batch_size
        for group in self.plan.groups:
            pending = [r for r in rows if r.outcome == "sent" and group in r.values]
            chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
            self.run.client.parallel(
                lambda chunk, g=group: self._send_group(g, chunk, values_of),
                chunks,
            )

    def _send_group(self, group: str, rows: list[_Row], values_of: Any) -> None:
        plan, client = self.plan, self.run.client

        def send(batch: Sequence[_Row]) -> MetadataAnswer | Refused:
            body = dumps([{plan.id_key: r.object_id, "values": values_of(r, group)} for r in batch])
            return client.update_metadata(plan.kind, group, body, stream=self.stream_name)

        result = send_with_splits(rows, send)
        for batch, answer in result.accepted:
            for row in batch:
                if row.object_id in answer.missing:
                    row.outcome = "skipped_unknown"
                elif row.object_id in answer.errors:
                    row.outcome = "rejected"
                    row.reason = f"Pendo failed the {group} update: {answer.errors[row.object_id]}"
                else:
                    row.groups_done.append(group)
            if answer.unattributed_errors:
                self.logger.warning(
                    "Pendo reported errors for the %s %s update it did not tie to an id: %s",
                    plan.kind,
                    group,
                    list(answer.unattributed_errors)[:5],
                )
        for row, reason in result.rejected:
            row.outcome = "rejected"
            row.reason = f"Pendo refused the {group} update: {reason}"
        if result.calls > 1:
            self.logger.info(
                "Stream '%s': Pendo refused a %s batch; %d split call(s) isolated %d bad row(s).",
                self.stream_name,
                group,
                result.calls - 1,
                len(result.rejected),
            )

    def _settle(self, rows: list[_Row]) -> None:
        """Record each row's outcome: ledger, report, rejects and unknown-id files."""
        run, stream = self.run, self.stream_name
        outcomes: list[RowOutcome] = []
        unknown: list[str] = []
        sent = 0
        for row in rows:
            if row.outcome == "sent":
                sent += 1
                outcomes.append(RowOutcome(row.object_id, "sent", value_hash=row.value_hash))
            elif row.outcome == "skipped_unknown":
                unknown.append(row.object_id)
                outcomes.append(
                    RowOutcome(row.object_id, "skipped_unknown", f"no such {self.plan.kind}")
                )
                run.unknown.append(
                    stream,
                    {"kind": self.plan.kind, "id": row.object_id, "key": self.row_key(row.record)},
                )
            else:
                reason = row.reason
                if row.groups_done:
                    reason += f" (its {', '.join(row.groups_done)} fields were updated)"
                self.reject(row.record, None, reason, key=row.object_id)
        run.ledger.record(stream, run.run_id, outcomes)
        run.report.add(stream, self.SYNC, sent=sent)
        if unknown:
            run.report.add_unknown(stream, self.SYNC, unknown)

    # --- deletes ----------------------------------------------------------------------------
    def activate_version(self, new_version: int) -> None:
        """A full-table sync of this stream completed (or began): the ids it did not send
        are candidates for `delete_behavior` once the whole input was read."""
        self._full_table_done = True

    def clean_up(self) -> None:
        super().clean_up()
        run = self.run
        if self.spec.delete_behavior == "nothing" or not run.input_complete:
            return
        if run.full_resync:
            if self._deleted_ids or self._full_table_done:
                self.logger.info(
                    "Stream '%s': deletes are not applied during a full resync.", self.stream_name
                )
            return
        in_pendo = set(run.ledger.keys_with_status(self.stream_name, ["sent"]))
        candidates = {i for i in self._deleted_ids if i in in_pendo}
        if self._full_table_done:
            candidates |= set(run.ledger.unseen_since(self.stream_name, run.run_id, ["sent"]))
        if not candidates:
            return
        limit = run.settings.max_delete_fraction * len(in_pendo)
        verb = self.spec.delete_behavior
        if len(candidates) > limit:
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
            self._record_removed(ids, "deleted", f"bulk delete job(s) {', '.join(jobs)}")
        else:
            self._clear(ids)

    def _clear(self, ids: list[str]) -> None:
        nulls = {
            group: {t.key: None for t in self.plan.targets if t.group == group}
            for group in self.plan.groups
        }
        rows = [_Row(i, nulls, {self.spec.id_column: i}) for i in ids]
        self._send_chunks(rows, lambda r, g: r.values[g])
        cleared = [r.object_id for r in rows if r.outcome == "sent"]
        self._record_removed(cleared, "cleared", "left the source")
        for row in rows:
            if row.outcome != "sent":
                self.logger.warning(
                    "Stream '%s': could not clear %s '%s': %s",
                    self.stream_name,
                    self.plan.kind,
                    row.object_id,
                    row.reason or "Pendo does not have it",
                )

    def _record_removed(self, ids: list[str], outcome: str, reason: str) -> None:
        run = self.run
        run.ledger.record(
            self.stream_name, run.run_id, [RowOutcome(i, outcome, reason) for i in ids]
        )
        run.report.add(self.stream_name, self.SYNC, **{outcome: len(ids)})
