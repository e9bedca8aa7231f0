"""ObjectsSink: rows update existing Pendo visitors, accounts or parent accounts.

One bulk call per field group (agent, custom) per `batch_size` rows. Pendo's answer sorts
each row: updated; `missing` (an id Pendo does not have: skipped and listed, never created);
failed with an error (rejected). A batch Pendo refuses whole (400) is bisected by
``split.send_with_splits`` so only the bad rows are rejected, each with Pendo's reason.
`process_batch` returns only when every row has one of those outcomes, so STATE, which the SDK
writes after a full drain, never covers a row that is nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from target_pendo.client import MetadataAnswer
from target_pendo.fields import ObjectPlan
from target_pendo.mapping import RowRejected, dumps
from target_pendo.settings import ObjectsSpec
from target_pendo.sinks.base import PendoSink
from target_pendo.split import Refused, send_with_splits


@dataclass
class _Row:
    object_id: str
    values: dict[str, dict[str, Any]]  # group -> field -> value
    record: dict
    outcome: str = "sent"  # sent | unknown | rejected
    reason: str = ""
    groups_done: list[str] = field(default_factory=list)


class ObjectsSink(PendoSink):
    # Rows held before a drain; each drain is cut into `batch_size` calls per group.
    MAX_SIZE_DEFAULT = 5000

    def __init__(self, target: Any, stream_name: str, schema: dict, key_properties: Any) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        spec = self.run.settings.spec_for(stream_name)
        assert isinstance(spec, ObjectsSpec)
        self.spec = spec
        self.SYNC = spec.sync
        self.plan = ObjectPlan.build(
            spec,
            (self.schema.get("properties") or {}).keys(),
            self.run.field_schema(spec.kind),
        )
        if self.plan.new_agent_fields:
            self.logger.info(
                "Stream '%s': agent field(s) %s do not exist in Pendo yet; they are created by "
                "the first write (create_missing_fields).",
                stream_name,
                self.plan.new_agent_fields,
            )

    def process_record(self, record: dict, context: dict) -> None:
        context["received"] = context.get("received", 0) + 1
        violation = self.schema_violation(record)
        if violation is not None:
            self.reject(record, *violation)
            return
        try:
            object_id, values = self.plan.row_values(record)
        except RowRejected as exc:
            self.reject(record, exc.field, exc.reason)
            return
        context.setdefault("rows", []).append(_Row(object_id, values, record))

    def process_batch(self, context: dict) -> None:
        rows: list[_Row] = context.get("rows", [])
        self.run.report.add(self.stream_name, self.SYNC, received=context.get("received", 0))
        size = self.spec.batch_size
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            for group in self.plan.groups:
                live = [r for r in chunk if r.outcome == "sent"]
                if live:
                    self._send_group(group, live)
            self._settle(chunk)

    def _send_group(self, group: str, rows: list[_Row]) -> None:
        plan, client = self.plan, self.run.client

        def send(batch: Sequence[_Row]) -> MetadataAnswer | Refused:
            body = dumps([{plan.id_key: r.object_id, "values": r.values[group]} for r in batch])
            return client.update_metadata(plan.kind, group, body)

        result = send_with_splits(rows, send)
        for batch, answer in result.accepted:
            for row in batch:
                if row.object_id in answer.missing:
                    row.outcome = "unknown"
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
        """Write each row's outcome where it belongs: report, rejects, unknown ids."""
        stream, report = self.stream_name, self.run.report
        sent = 0
        unknown: list[str] = []
        for row in rows:
            if row.outcome == "sent":
                sent += 1
            elif row.outcome == "unknown":
                unknown.append(row.object_id)
                self.run.unknown.append(
                    stream,
                    {"kind": self.plan.kind, "id": row.object_id, "key": self.row_key(row.record)},
                )
            elif row.outcome == "rejected":
                reason = row.reason
                if row.groups_done:
                    reason += f" (its {', '.join(row.groups_done)} fields were updated)"
                self.reject(row.record, None, reason)
        report.add(stream, self.SYNC, sent=sent)
        if unknown:
            report.add_unknown(stream, self.SYNC, unknown)
