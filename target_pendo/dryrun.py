"""Dry run (`dry_run: true`): everything is mapped, validated and diffed against the ledger as in
a real run, and each payload that would go to Pendo is written to
`state_dir/dry_run/<run_id>/<stream>.jsonl` instead. Nothing is sent and the ledger is not
written. Reads that change nothing (Pendo's field schema) still go to Pendo, so coercion and
missing-field checks are real.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from target_pendo.answers import MetadataAnswer
from target_pendo.client import (
    CallOutcome,
    CallResult,
    PendoClient,
    ResultCallback,
    SendCallback,
    TrackNote,
)
from target_pendo.pendo_api import (
    BULK_DELETE_LIST_KEYS,
    BULK_DELETE_PATH,
    CREATE_FIELDS_PATH,
    METADATA_PATH,
    TRACK_PATH,
)
from target_pendo.rejects import RowLog
from target_pendo.split import Refused, TooBig


class DryRunClient(PendoClient):
    """A PendoClient whose writes land in files; every write "succeeds"."""

    def __init__(self, *args: Any, payloads: RowLog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._payloads = payloads

    def close(self) -> None:
        super().close()
        self._payloads.close()

    def _record(self, stream: str | None, method: str, path: str, body: Any) -> None:
        self._payloads.append(
            stream or "_", {"method": method, "path": path, "body": self.redact.value(body)}
        )

    def send_tracks(
        self,
        bodies: Sequence[bytes],
        on_result: ResultCallback | None = None,
        on_send: SendCallback | None = None,
        *,
        stream: str | None = None,
        note: TrackNote | None = None,
    ) -> list[CallResult]:
        results = []
        for index, body in enumerate(bodies):
            self._record(stream, "POST", TRACK_PATH, json.loads(body))
            result = CallResult(CallOutcome.ACCEPTED, 200)
            if note is not None:
                note([(index, result)], None)
            elif on_result is not None:
                on_result(index, result)
            results.append(result)
        return results

    def create_fields(
        self, kind: str, group: str, fields: Sequence[dict[str, str]], *, stream: str | None = None
    ) -> bool:
        self._record(stream, "POST", CREATE_FIELDS_PATH.format(kind=kind, group=group), fields)
        return True

    def update_metadata(
        self, kind: str, group: str, body: bytes, rows: int, *, stream: str | None = None
    ) -> MetadataAnswer | Refused | TooBig:
        items = json.loads(body)
        self._record(stream, "POST", METADATA_PATH.format(kind=kind, group=group), items)
        return MetadataAnswer.all_updated(len(items))

    def bulk_delete(self, kind: str, ids: Sequence[str], *, stream: str | None = None) -> list[str]:
        list_key = BULK_DELETE_LIST_KEYS[kind]
        self._record(stream, "POST", BULK_DELETE_PATH.format(kind=kind), {list_key: list(ids)})
        return ["dry-run"]
