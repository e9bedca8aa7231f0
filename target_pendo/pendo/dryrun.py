"""Dry run (`dry_run: true`): the sessions' adapter records every write (anything but GET and
HEAD) to `state_dir/dry_run/<run_id>/<stream>.jsonl` and answers it as Pendo answers a write
that worked. Reads (Pendo's field schema) still go to Pendo, so coercion and missing-field
checks are real. Everything above the adapter is the code of a real run.
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
from target_pendo.pendo.transport import READ_METHODS, PreparedCall, http_adapter
from target_pendo.run.rejects import RowLog

# What the dry run answers a bulk delete: Pendo answers with the id of the job it started.
DRY_RUN_JOB_ID = "dry-run"


def _route_of(path: str, template: str) -> bool:
    """Whether `path` is an instance of a route template such as `/api/v1/metadata/{kind}/…`."""
    return bool(re.fullmatch(re.sub(r"\{\w+\}", "[^/]*", template.strip("/")), path.strip("/")))


def _answer(path: str, body: Any) -> Any:
    """What Pendo answers a write that worked; None for an empty 200 (Track, field creation)."""
    if _route_of(path, METADATA_PATH):
        rows = len(body) if isinstance(body, list) else 0
        return {"total": rows, "updated": rows, "failed": 0, "missing": [], "errors": []}
    if _route_of(path, BULK_DELETE_PATH):
        return {"id": DRY_RUN_JOB_ID}
    return None


class RecordingAdapter(BaseAdapter):
    """Files each write under the stream and route of the client's call (`PreparedCall`), so a
    host URL with a path of its own changes nothing."""

    def __init__(self, payloads: RowLog, redact: Redactor, network: Network | None = None) -> None:
        super().__init__()
        self._payloads = payloads
        self._redact = redact
        self._reads = http_adapter(network or Network())  # reads go to Pendo as in a real run

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
        raw = request.body or b""
        body = json.loads(raw) if raw else None
        self._payloads.append(
            call.stream or "_",
            {"method": request.method, "path": call.path, "body": self._redact.value(body)},
        )
        return _response(request, _answer(call.path, body))

    def close(self) -> None:
        self._reads.close()


def _response(request: requests.PreparedRequest, answer: Any) -> requests.Response:
    """A 200 as requests would build it from the wire."""
    response = requests.Response()
    response.status_code = 200
    response.reason = "OK (dry run: recorded, not sent)"
    response.url = request.url or ""
    response.request = request
    if answer is not None:
        response.headers["Content-Type"] = "application/json"
    response.raw = io.BytesIO(b"" if answer is None else json.dumps(answer).encode())
    response.encoding = "utf-8"
    return response
