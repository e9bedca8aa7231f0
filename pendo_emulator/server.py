"""A local Pendo over real HTTP, for the demo, the tests and the benchmark.

Pendo routes follow ../shared/pendo-api.md: `/data/track`, `/api/v1/token/verify`,
`/api/v1/metadata/{kind}/{group}/value`, `/api/v1/metadata/schema/{kind}` (GET), the field
create (POST `.../schema/{kind}/{group}`) and delete (DELETE `.../{field}`) routes,
`/api/v1/{visitor|account}/{id}` and `/api/v1/bulkdelete/{kind}`.

Control routes live under `/_emulator/` (no key), mirroring the ``Emulator`` methods that
in-process users (tests) call without HTTP:
  GET  events, requests, received[?route=R], key-headers, rate-limited, metadata-writes,
       switches (current values and help), objects/{kind}, deleted/{kind}, schema/{kind}
  POST switches {name: value}, faults (one or a list), track-rules, define-event
       {"event", "at"}, seed, metadata-rules, field-deletions {"kind", "group", "field",
       "after"}, reset
  DELETE faults
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import select
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme

from pendo_emulator.contract import KEY_HEADER
from pendo_emulator.faults import Fault, FaultPlan
from pendo_emulator.state import ApiError, PendoState
from pendo_emulator.switches import Switches

_KIND = r"(visitor|account|parentAccount)"
_GROUP = r"(agent|custom)"
_METADATA_PATH = re.compile(rf"^/api/v1/metadata/{_KIND}/{_GROUP}/value$")
_SCHEMA_PATH = re.compile(rf"^/api/v1/metadata/schema/{_KIND}$")
_FIELD_CREATE_PATH = re.compile(rf"^/api/v1/metadata/schema/{_KIND}/{_GROUP}$")
_FIELD_DELETE_PATH = re.compile(rf"^/api/v1/metadata/schema/{_KIND}/{_GROUP}/([^/]+)$")
_OBJECT_PATH = re.compile(r"^/api/v1/(visitor|account)/([^/]+)$")
_BULK_DELETE_PATH = re.compile(r"^/api/v1/bulkdelete/(visitor|account)$")
_WRITE_ROUTES = ("metadata", "fields", "bulkdelete")  # need an integration key with write access

DEMO_TRACK_SECRET = "emulator-track-secret"  # noqa: S105 - fake key, only the emulator knows it
DEMO_INTEGRATION_KEY = "emulator-integration-key"

# What a proxy in front of Pendo might answer with a 200 (switch `ok_body` = "html").
PROXY_HTML = (
    b"<html><head><title>Request received</title></head><body><h1>Thank you</h1>"
    b"<p>Your request was received by the proxy and will be forwarded.</p></body></html>"
)


class TokenBucket:
    """Pendo's leaky bucket: `rate` requests a second, bursts up to `rate`, per bucket name
    (a key, or a key and an endpoint: switch `rate_limit_scope`)."""

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
    _cut = False  # the answer to this request breaks off (a `cut` fault)

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
        cut = self._cut  # a `cut` fault: promise more than is sent, then close
        self._cut = False
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) + (16 if cut else 0)))
        if body:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)
        if cut:
            self.wfile.flush()
            self._drop()

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send_error(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        """A 4xx from the emulated Pendo, its body as switch `error_body` says: plain text,
        `{"message": ...}` or nothing [T]."""
        style = self.server.state.switches.error_body
        if style == "json":
            body, content_type = json.dumps({"message": text}).encode(), "application/json"
        elif style == "empty":
            body, content_type = b"", "text/plain"
        else:
            body, content_type = text.encode(), "text/plain"
        self._send(status, body, content_type, headers)

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
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except OSError:
            return True

    def _route(self, method: str, path: str) -> str | None:
        """The route family of a Pendo request, None for a route Pendo does not have (404)."""
        route = self._route_family(method, path)
        if route in ("metadata", "schema", "fields") and "/parentAccount" in path:
            # parent-account routes are unverified [I]: switch `parent_account_routes`
            return route if self.server.state.switches.parent_account_routes else None
        return route

    @staticmethod
    def _route_family(method: str, path: str) -> str | None:
        if method == "POST" and path == "/data/track":
            return "track"
        if method == "GET" and path == "/api/v1/token/verify":
            return "verify"
        if method == "POST" and _METADATA_PATH.match(path):
            return "metadata"
        if method == "GET" and _SCHEMA_PATH.match(path):
            return "schema"
        if method == "POST" and _FIELD_CREATE_PATH.match(path):
            return "fields"
        if method == "DELETE" and _FIELD_DELETE_PATH.match(path):
            return "fields"
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

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        raw = self._read_body()
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        if path.startswith("/_emulator/"):
            self._control(method, path, split.query, raw)
            return
        if self.server.latency:
            time.sleep(self.server.latency)  # the round trip of a Pendo far away
        state = self.server.state
        state.count(f"{method} {path}")
        route = self._route(method, path)
        state.record_request(method, path, split.query, route, dict(self.headers.items()))
        if route is None:
            self._send_error(404, "Not Found")
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
            self._cut = fault.cut
            if fault.status is not None:
                self._send(fault.status, fault.body.encode(), headers=fault.answer_headers())
                return
        key = self.headers.get(KEY_HEADER)
        if not self._within_rate_limit(key, route):
            return
        if route == "track":
            self._track(key, raw, parsed)
            return
        access = state.api_key_access(key)
        if access is None:
            self._send(state.switches.api_bad_key_status)
        elif route in _WRITE_ROUTES and not access:
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
                self._send_error(404, "Not Found")
            else:
                self._send_json(200, {"id": object_id, "metadata": found})
        elif route == "metadata":
            self._metadata(path, split.query, raw, parsed)
        elif route == "fields":
            self._fields(method, path, raw, parsed)
        elif route == "bulkdelete":
            kind = _BULK_DELETE_PATH.match(path)[1]  # type: ignore[index]
            try:
                job = state.bulk_delete(kind, parsed)
            except ApiError as exc:
                self._send_error(exc.status, str(exc))
                return
            self._send_json(200, {"id": job})

    def _within_rate_limit(self, key: str | None, route: str) -> bool:
        """Apply the limiter (per key and endpoint by default); answer 429 when over it."""
        limiter = self.server.limiter
        if limiter is None or key is None:
            return True
        switches = self.server.state.switches
        bucket = key if switches.rate_limit_scope == "key" else f"{key}\n{route}"
        if limiter.allow(bucket):
            return True
        self.server.state.count_rate_limited(route)
        retry = switches.rate_limit_retry_after
        headers = {"Retry-After": str(retry)} if retry is not None else None
        self._send_error(429, "Too Many Requests", headers)
        return False

    def _proxy_answer(self) -> None:
        """A 200 that is not Pendo's answer (switch `ok_body`): it confirms nothing."""
        if self.server.state.switches.ok_body == "html":
            self._send(200, PROXY_HTML, "text/html; charset=utf-8")
        else:
            self._send_json(200, {})

    def _metadata(self, path: str, query_string: str, raw: bytes, parsed: Any) -> None:
        kind, group = _METADATA_PATH.match(path).groups()  # type: ignore[union-attr]
        state = self.server.state
        switches = state.switches
        if switches.ok_body != "json" and not switches.ok_body_writes:
            self._proxy_answer()  # Pendo never saw the call
            return
        query = urllib.parse.parse_qs(query_string)
        create = query.get("create", ["false"])[0].lower() == "true"
        if parsed is None and raw.strip() != b"null":
            self._send_error(400, "malformed JSON or missing field mappings: body is not JSON")
            return
        try:
            answer = state.apply_metadata(kind, group, parsed, create=create)
        except ApiError as exc:
            self._send_error(exc.status, str(exc))
            return
        if switches.ok_body != "json":
            self._proxy_answer()  # written, but the answer was replaced on the way
            return
        self._send_json(200, answer)

    def _fields(self, method: str, path: str, raw: bytes, parsed: Any) -> None:
        """Create/undelete fields (POST) or delete one (DELETE) [C, Postman collection]."""
        state = self.server.state
        try:
            if method == "POST":
                kind, group = _FIELD_CREATE_PATH.match(path).groups()  # type: ignore[union-attr]
                if parsed is None:
                    raise ApiError("malformed JSON: body is not JSON")
                keys = state.create_fields(kind, group, parsed)
                text = f"created or undeleted {len(keys)} field(s): {', '.join(keys)}"
            else:
                match = _FIELD_DELETE_PATH.match(path)
                kind, group, name = match.groups()  # type: ignore[union-attr]
                name = urllib.parse.unquote(name)
                state.delete_field(kind, group, name)
                text = f"deleted field {name.lower()}"
        except ApiError as exc:
            self._send_error(exc.status, str(exc))
            return
        if state.switches.field_route_body == "text":
            self._send(200, text.encode())
        else:
            self._send(200)

    def _track(self, key: str | None, raw: bytes, parsed: Any) -> None:
        state = self.server.state
        if not state.track_key_ok(key):
            self._send(state.switches.track_bad_secret_status)
            return
        if parsed is None and raw.strip() != b"null":
            self._send_error(400, "malformed JSON")
            return
        try:
            state.accept_track(parsed)
        except ApiError as exc:
            self._send_error(exc.status, str(exc))
            return
        self._send(200)

    # --- control routes -----------------------------------------------------------------------
    def _control(self, method: str, path: str, query_string: str, raw: bytes) -> None:
        emulator = self.server.emulator
        state, faults = self.server.state, self.server.faults
        query = urllib.parse.parse_qs(query_string)
        try:
            body: Any = json.loads(raw) if raw else None  # checked by the route it is for
            if method == "GET" and path == "/_emulator/events":
                self._send_json(200, {"events": state.events_snapshot()})
            elif method == "GET" and path == "/_emulator/requests":
                self._send_json(200, {"counts": state.request_counts()})
            elif method == "GET" and path == "/_emulator/received":
                route = query.get("route", [None])[0]
                self._send_json(200, {"received": state.received_snapshot(route)})
            elif method == "GET" and path == "/_emulator/key-headers":
                self._send_json(200, {"routes": state.key_header_counts()})
            elif method == "GET" and path == "/_emulator/rate-limited":
                self._send_json(200, {"rate_limited": state.rate_limited_counts()})
            elif method == "GET" and path == "/_emulator/switches":
                self._send_json(
                    200, {"switches": state.switches.as_dict(), "help": Switches.describe()}
                )
            elif method == "POST" and path == "/_emulator/switches":
                if not isinstance(body, dict):
                    raise ValueError("a JSON object of switch -> value")
                self._send_json(200, {"switches": emulator.set_switches(**body).as_dict()})
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
            elif method == "POST" and path == "/_emulator/define-event":
                state.define_event(str(body["event"]), int(body["at"]))
                self._send_json(200, {"ok": True})
            elif method == "POST" and path == "/_emulator/seed":
                if "fields" in body:
                    state.seed_fields(body["kind"], body.get("group", "custom"), body["fields"])
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
            elif method == "POST" and path == "/_emulator/field-deletions":
                state.schedule_field_deletion(
                    body["kind"], body["group"], body["field"], int(body.get("after", 0))
                )
                self._send_json(200, {"ok": True})
            elif method == "GET" and path == "/_emulator/metadata-writes":
                self._send_json(200, {"writes": state.metadata_writes_snapshot()})
            elif method == "GET" and path.startswith("/_emulator/objects/"):
                self._send_json(200, state.objects_snapshot(path.rsplit("/", 1)[1]))
            elif method == "GET" and path.startswith("/_emulator/deleted/"):
                kind = path.rsplit("/", 1)[1]
                self._send_json(200, {"deleted": state.deleted_ids(kind)})
            elif method == "GET" and path.startswith("/_emulator/schema/"):
                self._send_json(200, state.schema_for(path.rsplit("/", 1)[1]))
            elif method == "POST" and path == "/_emulator/reset":
                emulator.reset()
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
        emulator: Emulator,
        limiter: TokenBucket | None,
        verbose: bool,
        tls: ssl.SSLContext | None = None,
        latency: float = 0.0,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.emulator = emulator
        self.state = emulator.state
        self.faults = emulator.faults
        self.limiter = limiter
        self.verbose = verbose
        self.tls = tls
        self.latency = latency

    def finish_request(self, request: Any, client_address: Any) -> None:
        """With TLS, the handshake runs here, on the request's own thread: a client that
        stalls or refuses the certificate holds up no one else."""
        if self.tls is not None:
            try:
                request.settimeout(10)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return  # the client refused the certificate, or went away: nothing to answer
        super().finish_request(request, client_address)


def _as_switches(switches: Switches | dict[str, Any] | None) -> Switches:
    if switches is None:
        return Switches()
    if isinstance(switches, Switches):
        return switches
    return Switches().updated(dict(switches))


class Emulator:
    """Start/stop handle plus the test-facing API: seed, inject faults, flip switches, read
    back. `switches` (a Switches or a dict of changes to the defaults) is what `reset()`
    restores."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        track_secrets: tuple[str, ...] = (DEMO_TRACK_SECRET,),
        integration_keys: dict[str, bool] | None = None,
        rate_limit: float | None = None,
        verbose: bool = False,
        switches: Switches | dict[str, Any] | None = None,
        tls_names: tuple[str, ...] | None = None,
        latency: float = 0.0,
    ) -> None:
        """`latency`: seconds every Pendo route waits before it answers (a round trip over
        the internet; control routes answer at once). `tls_names`: serve https with a
        certificate made now for these names (localhost and 127.0.0.1 are always in it),
        signed by a CA of its own (`ca_pem`, `write_ca`); None serves plain http."""
        base = _as_switches(switches)
        self.state = PendoState(
            track_secrets=set(track_secrets),
            integration_keys=dict(integration_keys or {DEMO_INTEGRATION_KEY: True}),
            switches=base,
            base_switches=base,
        )
        self.faults = FaultPlan()
        limiter = TokenBucket(rate_limit) if rate_limit else None
        self.ca_pem: bytes | None = None
        context: ssl.SSLContext | None = None
        if tls_names is not None:
            ca = trustme.CA(organization_name="target-pendo emulator")
            names = dict.fromkeys(("localhost", "127.0.0.1", host, *tls_names))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(*names).configure_cert(context)
            self.ca_pem = ca.cert_pem.bytes()
        self._server = _EmulatorHTTPServer((host, port), self, limiter, verbose, context, latency)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        if isinstance(host, bytes):
            host = host.decode()
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.ca_pem is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def latency(self) -> float:
        """Seconds every Pendo route waits before it answers."""
        return self._server.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._server.latency = seconds

    def write_ca(self, path: str) -> str:
        """Write the CA that signed the https certificate (PEM), for `REQUESTS_CA_BUNDLE`."""
        if self.ca_pem is None:
            raise ValueError("the emulator serves plain http: it has no CA")
        with open(path, "wb") as out:
            out.write(self.ca_pem)
        return path

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

    # --- switches -----------------------------------------------------------------------------
    @property
    def switches(self) -> Switches:
        """The switches in force now (frozen: change them with `set_switches`)."""
        return self.state.switches

    def set_switches(self, **changes: Any) -> Switches:
        """Flip switches mid-run, e.g. `set_switches(bad_value="batch")`; validated first, so
        a bad name or value raises ValueError and changes nothing."""
        return self.state.set_switches(changes)

    # --- test API -----------------------------------------------------------------------------
    def inject(self, **fault: Any) -> None:
        self.faults.add(Fault.from_dict(fault))

    def reject_track(self, field: str, values: list[Any], reason: str) -> None:
        self.state.add_track_rule(field, values, reason)

    def define_event(self, name: str, at_ms: int) -> None:
        """Pretend Pendo first saw event `name` at `at_ms` (see the "before the event name
        was defined" rule: backfills of a new name are not processed)."""
        self.state.define_event(name, at_ms)

    def events(self) -> list[dict[str, Any]]:
        return self.state.events_snapshot()

    def seed(
        self,
        kind: str,
        ids: list[str] | None = None,
        *,
        group: str | None = None,
        fields: dict[str, str | dict[str, Any]] | None = None,
    ) -> None:
        """Create objects (`ids`) and/or fields (`group` + name -> type, or name -> attributes
        such as `{"type": "string", "isDeleted": True}`) in Pendo."""
        if fields:
            self.state.seed_fields(kind, group or "custom", fields)
        if ids:
            self.state.seed_objects(kind, [str(i) for i in ids])

    def schema(self, kind: str) -> dict[str, Any]:
        """The field schema exactly as Pendo's schema route answers it now."""
        return self.state.schema_for(kind)

    def delete_field(self, kind: str, group: str, field: str) -> None:
        """Mark a field `isDeleted` now, as the DELETE route or Pendo's UI would."""
        self.state.delete_field(kind, group, field)

    def delete_field_after(self, kind: str, group: str, field: str, *, after: int) -> None:
        """Mark a field deleted once `after` more metadata calls have been accepted: a field
        deleted while a run goes."""
        self.state.schedule_field_deletion(kind, group, field, after)

    def reject_metadata(self, kind: str, field: str, values: list[Any], reason: str) -> None:
        self.state.add_metadata_rule(kind, field, values, reason)

    def objects(self, kind: str) -> dict[str, Any]:
        return self.state.objects_snapshot(kind)

    def metadata_writes(self) -> list[dict[str, Any]]:
        return self.state.metadata_writes_snapshot()

    def deleted(self, kind: str) -> list[str]:
        return self.state.deleted_ids(kind)

    def request_counts(self) -> dict[str, int]:
        return self.state.request_counts()

    def received(self, route: str | None = None) -> list[dict[str, Any]]:
        """The last requests received (method, path, query, route, key_present, headers),
        optionally of one route family ("track", "metadata", ..., "unknown")."""
        return self.state.received_snapshot(route)

    def key_header_counts(self) -> dict[str, dict[str, int]]:
        """route family -> {"with_key": n, "without_key": n} over every request received."""
        return self.state.key_header_counts()

    def rate_limited(self) -> dict[str, int]:
        """route family -> 429s the rate limiter answered (injected faults not counted)."""
        return self.state.rate_limited_counts()

    def reset(self) -> None:
        self.state.reset()
        self.faults.clear()
        if self._server.limiter is not None:
            self._server.limiter.reset()


def _switch_value(text: str) -> Any:
    """A CLI switch value: JSON when it parses (`true`, `100`, `null`), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> None:
    """`target-pendo-emulator --port N [--SWITCH VALUE ...]`: serve until interrupted."""
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
        help="requests per second per key and endpoint before 429 (default: none)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="every Pendo route answers after this long, like a Pendo far away (default 0)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a certificate made at start for localhost, 127.0.0.1 and each "
        "--tls-name, signed by a CA of its own written to --ca-file",
    )
    parser.add_argument(
        "--tls-name",
        action="append",
        dest="tls_names",
        default=[],
        metavar="NAME",
        help="another host name for the certificate (e.g. app.pendo.io); repeat for more",
    )
    parser.add_argument(
        "--ca-file",
        default="target-pendo-emulator-ca.pem",
        help="where --tls writes its CA (PEM), for REQUESTS_CA_BUNDLE "
        "(default: %(default)s in the current folder)",
    )
    switches = parser.add_argument_group(
        "switches", "Pendo behaviours the contract leaves open (GET /_emulator/switches)"
    )
    for spec in dataclasses.fields(Switches):
        values = spec.metadata["values"]
        choices = f" (one of {', '.join(json.dumps(v) for v in values)})" if values else ""
        switches.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=f"switch_{spec.name}",
            type=_switch_value,
            default=argparse.SUPPRESS,  # absent unless given, so `null` can be a value
            metavar="VALUE",
            help=f"default {json.dumps(spec.default)}{choices}",
        )
    args = parser.parse_args(argv)
    changes = {
        spec.name: getattr(args, f"switch_{spec.name}")
        for spec in dataclasses.fields(Switches)
        if hasattr(args, f"switch_{spec.name}")
    }
    try:
        chosen = Switches().updated(changes)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    emulator = Emulator(
        host=args.host,
        port=args.port,
        track_secrets=tuple(args.track_secrets or (DEMO_TRACK_SECRET,)),
        integration_keys=dict.fromkeys(args.integration_keys or (DEMO_INTEGRATION_KEY,), True),
        rate_limit=args.rate_limit,
        verbose=args.verbose,
        switches=chosen,
        tls_names=tuple(args.tls_names) if args.tls or args.tls_names else None,
        latency=args.latency,
    )
    if emulator.ca_pem is not None:
        path = os.path.abspath(emulator.write_ca(args.ca_file))
        print(f"Its CA is in {path}: REQUESTS_CA_BUNDLE={path}", file=sys.stderr)
    print(f"Pendo emulator listening on {emulator.url}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
