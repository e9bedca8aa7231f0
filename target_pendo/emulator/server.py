"""A local Pendo over real HTTP, for the demo, the tests and the benchmark.

Pendo routes follow ../shared/pendo-api.md. Control routes live under `/_emulator/` (no key):
read back events and request counts, add faults and Track rules, reset. In-process users
(tests) get the same through the ``Emulator`` object without HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import select
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from target_pendo.emulator.faults import Fault, FaultPlan
from target_pendo.emulator.state import MetadataInvalid, PendoState, TrackInvalid

_KIND = r"(visitor|account|parentAccount)"
_METADATA_PATH = re.compile(rf"^/api/v1/metadata/{_KIND}/(agent|custom)/value$")
_SCHEMA_PATH = re.compile(rf"^/api/v1/metadata/schema/{_KIND}$")
_OBJECT_PATH = re.compile(r"^/api/v1/(visitor|account)/([^/]+)$")
_BULK_DELETE_PATH = re.compile(r"^/api/v1/bulkdelete/(visitor|account)$")

DEMO_TRACK_SECRET = "emulator-track-secret"  # noqa: S105 - fake key, only the emulator knows it
DEMO_INTEGRATION_KEY = "emulator-integration-key"
KEY_HEADER = "x-pendo-integration-key"


class TokenBucket:
    """Pendo's per-key leaky bucket: `rate` requests a second, bursts up to `rate`."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.rate, now))
            tokens = min(self.rate, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1, now)
            return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Pendo's front end offers
    server: _EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write("emulator: " + (format % args) + "\n")

    # --- plumbing ---------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _drop(self) -> None:
        """Close the socket with no answer at all: the client sees a reset connection."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _client_gone(self) -> bool:
        """Whether the client closed the connection (e.g. it timed out) while we slept."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _route(self, method: str, path: str) -> str | None:
        if method == "POST" and path == "/data/track":
            return "track"
        if method == "GET" and path == "/api/v1/token/verify":
            return "verify"
        if method == "POST" and _METADATA_PATH.match(path):
            return "metadata"
        if method == "GET" and _SCHEMA_PATH.match(path):
            return "schema"
        if method == "GET" and _OBJECT_PATH.match(path):
            return "object"
        if method == "POST" and _BULK_DELETE_PATH.match(path):
            return "bulkdelete"
        return None

    # --- entry points -------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/_emulator/"):
            self._control(method, path, raw)
            return
        state = self.server.state
        state.count(f"{method} {path}")
        route = self._route(method, path)
        if route is None:
            self._send(404, b"Not Found")
            return
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        fault = self.server.faults.take(route, parsed)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
                if not fault.process_after_disconnect and self._client_gone():
                    self._drop()
                    return
            if fault.drop:
                self._drop()
                return
            if fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                self._send(fault.status, fault.body.encode(), headers=headers)
                return
        key = self.headers.get(KEY_HEADER)
        limiter = self.server.limiter
        if limiter is not None and key is not None and not limiter.allow(key):
            self._send(429, b"Too Many Requests")
            return
        if route == "track":
            self._track(key, raw, parsed)
            return
        access = state.api_key_access(key)
        if access is None or (route in ("metadata", "bulkdelete") and not access):
            self._send(403)
        elif route == "verify":
            self._send_json(200, {"valid": True, "writeAccess": access})
        elif route == "schema":
            kind = _SCHEMA_PATH.match(path)[1]  # type: ignore[index]
            self._send_json(200, state.schema_for(kind))
        elif route == "object":
            kind, object_id = _OBJECT_PATH.match(path).groups()  # type: ignore[union-attr]
            found = state.get_object(kind, urllib.parse.unquote(object_id))
            if found is None:
                self._send(404, b"Not Found")
            else:
                self._send_json(200, {"id": object_id, "metadata": found})
        elif route == "metadata":
            self._metadata(path, raw, parsed)
        elif route == "bulkdelete":
            kind = _BULK_DELETE_PATH.match(path)[1]  # type: ignore[index]
            try:
                job = state.bulk_delete(kind, parsed)
            except MetadataInvalid as exc:
                self._send(400, str(exc).encode())
                return
            self._send_json(200, {"id": job})

    def _metadata(self, path: str, raw: bytes, parsed: Any) -> None:
        kind, group = _METADATA_PATH.match(path).groups()  # type: ignore[union-attr]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        create = query.get("create", ["false"])[0].lower() == "true"
        if parsed is None and raw.strip() != b"null":
            self._send(400, b"malformed JSON")
            return
        try:
            response = self.server.state.apply_metadata(kind, group, parsed, create=create)
        except MetadataInvalid as exc:
            self._send(400, str(exc).encode())
            return
        self._send_json(200, response)

    def _track(self, key: str | None, raw: bytes, parsed: Any) -> None:
        if not self.server.state.track_key_ok(key):
            self._send(403)
            return
        if parsed is None and raw.strip() != b"null":
            self._send(400, b"malformed JSON")
            return
        try:
            self.server.state.accept_track(parsed)
        except TrackInvalid as exc:
            self._send(400, str(exc).encode())
            return
        self._send(200)

    # --- control routes -----------------------------------------------------------------------
    def _control(self, method: str, path: str, raw: bytes) -> None:
        state, faults = self.server.state, self.server.faults
        try:
            body = json.loads(raw) if raw else None
            if method == "GET" and path == "/_emulator/events":
                self._send_json(200, {"events": state.events_snapshot()})
            elif method == "GET" and path == "/_emulator/requests":
                self._send_json(200, {"counts": state.request_counts()})
            elif method == "POST" and path == "/_emulator/faults":
                for item in body if isinstance(body, list) else [body]:
                    faults.add(Fault.from_dict(item))
                self._send_json(200, {"pending": faults.pending()})
            elif method == "DELETE" and path == "/_emulator/faults":
                faults.clear()
                self._send_json(200, {"pending": 0})
            elif method == "POST" and path == "/_emulator/track-rules":
                state.add_track_rule(body["field"], list(body["values"]), body["reason"])
                self._send_json(200, {"ok": True})
            elif method == "POST" and path == "/_emulator/seed":
                if "fields" in body:
                    state.seed_fields(body["kind"], body["group"], body["fields"])
                if "ids" in body:
                    state.seed_objects(body["kind"], [str(i) for i in body["ids"]])
                if "count" in body:  # many objects without a huge request: prefix + 0..count-1
                    prefix = str(body.get("id_prefix", ""))
                    state.seed_objects(body["kind"], [f"{prefix}{i}" for i in range(body["count"])])
                self._send_json(200, {"ok": True})
            elif method == "POST" and path == "/_emulator/metadata-rules":
                state.add_metadata_rule(
                    body["kind"], body["field"], list(body["values"]), body["reason"]
                )
                self._send_json(200, {"ok": True})
            elif method == "GET" and path.startswith("/_emulator/objects/"):
                self._send_json(200, state.objects_snapshot(path.rsplit("/", 1)[1]))
            elif method == "GET" and path.startswith("/_emulator/deleted/"):
                kind = path.rsplit("/", 1)[1]
                self._send_json(200, {"deleted": state.deleted_ids(kind)})
            elif method == "GET" and path.startswith("/_emulator/schema/"):
                self._send_json(200, state.schema_for(path.rsplit("/", 1)[1]))
            elif method == "POST" and path == "/_emulator/reset":
                state.reset()
                faults.clear()
                if self.server.limiter is not None:
                    self.server.limiter.reset()
                self._send_json(200, {"ok": True})
            else:
                self._send(404, b"unknown control route")
        except (ValueError, TypeError, KeyError) as exc:
            self._send(400, f"bad control request: {exc}".encode())


class _EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        state: PendoState,
        faults: FaultPlan,
        limiter: TokenBucket | None,
        verbose: bool,
    ) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.faults = faults
        self.limiter = limiter
        self.verbose = verbose


class Emulator:
    """Start/stop handle plus the test-facing API: seed, inject faults, read back."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        track_secrets: tuple[str, ...] = (DEMO_TRACK_SECRET,),
        integration_keys: dict[str, bool] | None = None,
        rate_limit: float | None = None,
        verbose: bool = False,
    ) -> None:
        self.state = PendoState(
            track_secrets=set(track_secrets),
            integration_keys=dict(integration_keys or {DEMO_INTEGRATION_KEY: True}),
        )
        self.faults = FaultPlan()
        limiter = TokenBucket(rate_limit) if rate_limit else None
        self._server = _EmulatorHTTPServer((host, port), self.state, self.faults, limiter, verbose)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Emulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns fast
            name="pendo-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test API -----------------------------------------------------------------------------
    def inject(self, **fault: Any) -> None:
        self.faults.add(Fault.from_dict(fault))

    def reject_track(self, field: str, values: list[Any], reason: str) -> None:
        self.state.add_track_rule(field, values, reason)

    def events(self) -> list[dict[str, Any]]:
        return self.state.events_snapshot()

    def seed(
        self,
        kind: str,
        ids: list[str] | None = None,
        *,
        group: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        """Create objects (`ids`) and/or fields (`group` + name -> type) in Pendo."""
        if fields:
            self.state.seed_fields(kind, group or "custom", fields)
        if ids:
            self.state.seed_objects(kind, [str(i) for i in ids])

    def reject_metadata(self, kind: str, field: str, values: list[Any], reason: str) -> None:
        self.state.add_metadata_rule(kind, field, values, reason)

    def objects(self, kind: str) -> dict[str, Any]:
        return self.state.objects_snapshot(kind)

    def metadata_writes(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(w) for w in self.state.metadata_writes]

    def deleted(self, kind: str) -> list[str]:
        return self.state.deleted_ids(kind)

    def request_counts(self) -> dict[str, int]:
        return self.state.request_counts()

    def reset(self) -> None:
        self.state.reset()
        self.faults.clear()
        if self._server.limiter is not None:
            self._server.limiter.reset()


def main(argv: list[str] | None = None) -> None:
    """`target-pendo-emulator --port N`: serve until interrupted."""
    parser = argparse.ArgumentParser(description="Local Pendo emulator for target-pendo.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--track-secret",
        action="append",
        dest="track_secrets",
        help=f"accepted Track Event secret (default: {DEMO_TRACK_SECRET})",
    )
    parser.add_argument(
        "--integration-key",
        action="append",
        dest="integration_keys",
        help=f"accepted integration key, write access (default: {DEMO_INTEGRATION_KEY})",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="requests per second per key before 429 (default: none)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    emulator = Emulator(
        host=args.host,
        port=args.port,
        track_secrets=tuple(args.track_secrets or (DEMO_TRACK_SECRET,)),
        integration_keys=dict.fromkeys(args.integration_keys or (DEMO_INTEGRATION_KEY,), True),
        rate_limit=args.rate_limit,
        verbose=args.verbose,
    )
    print(f"Pendo emulator listening on {emulator.url}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
