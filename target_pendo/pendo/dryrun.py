"""Dry run (`dry_run: true`): the sessions' adapter records every write to
`state_dir/dry_run/<run_id>/<stream>.jsonl` and answers as Pendo answers a write that worked.
Reads (the field schema) still go to Pendo, so coercion and missing-field checks are real.
Everything above the adapter is a real run's code, so a dry run walks the path a real run takes.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import requests
from requests.adapters import BaseAdapter

from target_pendo.network import Network
from target_pendo.observe.redact import Redactor
from target_pendo.pendo.api import BULK_DELETE_PATH, METADATA_PATH
from target_pendo.pendo.transport import READ_METHODS, PreparedCall
from target_pendo.run.rejects import RowLog

DRY_RUN_JOB_ID = "dry-run"  # Pendo answers a bulk delete with the id of the job it started


def _route_of(path: str, template: str) -> bool:
    """Whether `path` is an instance of a route template such as `/api/v1/metadata/{kind}/…`."""
    return bool(re.fullmatch(re.sub(r"\{\w+\}", "[^/]*", template.strip("/")), path.strip("/")))


class RecordingAdapter(BaseAdapter):
    """Files each write under its client call's stream and route (`PreparedCall`), not the URL's."""

    def __init__(self, payloads: RowLog, redact: Redactor, network: Network | None = None) -> None:
        super().__init__()
        self._payloads = payloads
        self._redact = redact
        self._reads = (network or Network()).adapter()  # reads go to Pendo as in a real run

    # requests' Session.send passes the adapter's options as keywords: one **kwargs takes them
    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if request.method in READ_METHODS:
            return self._reads.send(request, **kwargs)
        if not isinstance(request, PreparedCall):
            # only the transport sends here; anything else is a bug, not a write
            raise RuntimeError("a dry-run write outside a client call")
        call = request.call
        body = json.loads(request.body) if request.body else None
        self._payloads.append(
            call.stream or "_",
            {"method": request.method, "path": call.path, "body": self._redact.value(body)},
        )
        answer: Any = None  # what Pendo answers a write that worked: empty for Track, fields
        if _route_of(call.path, METADATA_PATH):
            rows = len(body) if isinstance(body, list) else 0
            answer = {"total": rows, "updated": rows, "failed": 0, "missing": [], "errors": []}
        elif _route_of(call.path, BULK_DELETE_PATH):
            answer = {"id": DRY_RUN_JOB_ID}
        response = requests.Response()  # a 200 as requests would build it from the wire
        response.status_code = 200
        response.reason = "OK (dry run: recorded, not sent)"
        response.url = request.url or ""
        response.request = request
        if answer is not None:
            response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(b"" if answer is None else json.dumps(answer).encode())
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        self._reads.close()
