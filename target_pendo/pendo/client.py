"""Pendo's operations, each with a typed answer: the only code that knows Pendo's hosts, key
headers and status codes. Fatal answers raise a `CallEnded` naming the setting, never its value.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import requests

from target_pendo.errors import (
    PendoAuthError,
    PendoError,
    PendoFieldCreateError,
    PendoNotFoundError,
    PendoRedirectError,
    PendoRequestError,
    PendoUnconfirmedError,
    StopRequested,
)
from target_pendo.network import Network
from target_pendo.observe.redact import Redactor, shown_url
from target_pendo.pendo import api
from target_pendo.pendo.answers import CallOutcome, CallResult, MetadataAnswer, Refused, TooBig
from target_pendo.pendo.calllog import CallLog
from target_pendo.pendo.inflight import DEFAULT_CEILING
from target_pendo.pendo.transport import (
    READ_METHODS,
    AdapterFactory,
    Request,
    TooBigSignal,
    Transport,
)

TRACK_SETTING = "track_event_secret"
API_SETTING = "integration_key"
PARENT_ACCOUNT_KIND = "parentAccount"
UNVERIFIED_PARENT_ROUTES = (
    "Pendo's parentAccount API routes are not publicly documented and could not be verified; "
    "your subscription may not offer them"
)

_ROW_REJECT_STATUSES = frozenset({400, 413, 422})  # refuse only what was sent, not the run
UNCONFIRMED_TRIES = 3  # asks for a 200 metadata answer that is not Pendo's JSON; then stop
RECORDED_KEY = "(none: recorded by the dry run)"

log = logging.getLogger("target_pendo.client")


class PendoClient:
    """Pendo's operations, shared by every sink of a run and safe from several threads. How a
    call travels (sessions, pacing, retries, the call log) is its transport's."""

    def __init__(
        self,
        api_url: str,
        *,
        track_url: str | None = None,
        track_event_secret: str | None,
        integration_key: str | None,
        max_requests_per_second: float | None = None,
        max_concurrency: int = DEFAULT_CEILING,
        request_timeout: float = 30,
        max_retry_seconds: float = 300,
        redact: Redactor | None = None,
        call_log: CallLog | None = None,
        adapter: AdapterFactory | None = None,
        sends: bool = True,
        network: Network | None = None,
    ) -> None:
        """`sends=False` (dry run): writes need no key; waits that only spare Pendo are skipped.
        A plain-http host reached through a proxy is refused here: the key would travel in
        clear."""
        self.api_url = api_url.rstrip("/")
        self.track_url = (track_url or api_url).rstrip("/")
        self._keys = {TRACK_SETTING: track_event_secret, API_SETTING: integration_key}
        self.sends = sends
        network = network or Network()
        network.refuse_clear_text(self.api_url, "api_url")
        network.refuse_clear_text(self.track_url, "track_url" if track_url else "api_url")
        self.redact = redact or Redactor(self._keys.values())
        self.transport = Transport(
            max_requests_per_second=max_requests_per_second,
            max_concurrency=max_concurrency,
            request_timeout=request_timeout,
            max_retry_seconds=max_retry_seconds,
            redact=self.redact,
            call_log=call_log,
            adapter=adapter,
            network=network,
        )
        # the transport's counters and controls, for the run
        self.stats = self.transport.stats
        self.in_flight = self.transport.in_flight
        self.pacing = self.transport.pacing
        self.observe = self.transport.observe
        self.stop = self.transport.stop
        self.close = self.transport.close

    def request(
        self,
        method: str,
        path: str,
        setting: str,
        body: bytes | None = None,
        *,
        stream: str | None = None,
        refusals_ok: bool = False,
        size_sensitive: bool = False,
    ) -> requests.Response:
        """One call with retries; raises typed errors for fatal answers. With `refusals_ok`, a
        400/413/422 is returned: it refuses only what was sent, and the caller rejects or splits."""
        request = self._request(method, path, setting, body, stream, size_sensitive)
        answer = functools.partial(self._answer, path, setting, refusals_ok)
        with self.transport.outgoing(request, answer) as send:
            return send()

    def _request(
        self,
        method: str,
        path: str,
        setting: str,
        body: bytes | None,
        stream: str | None,
        size_sensitive: bool = False,
    ) -> Request:
        key = self._keys.get(setting)
        if not key and (self.sends or method in READ_METHODS):  # a dry run's write never leaves
            raise PendoAuthError(f"setting '{setting}' is empty; set it to sync this stream")
        headers = {api.KEY_HEADER: key or RECORDED_KEY}
        base, endpoint = (
            (self.track_url, "track") if path == api.TRACK_PATH else (self.api_url, "api")
        )
        return Request(method, base, path, headers, body, stream, endpoint, size_sensitive)

    def _answer(
        self, path: str, setting: str, refusals_ok: bool, response: requests.Response
    ) -> requests.Response:
        """The response that ended a call, or the typed error its status means."""
        status = response.status_code
        if status < 300 or (refusals_ok and status in _ROW_REJECT_STATUSES):
            return response
        fatal: PendoError
        if status < 400:
            location = response.headers.get("Location") or "(no Location header)"
            fatal = PendoRedirectError(
                f"{shown_url(response.url or path)} answered HTTP {status}, a redirect to "
                f"{shown_url(location)}; target-pendo never follows a redirect with a key "
                "attached, and the call's rows were not sent. Point setting 'api_url' / "
                "'track_url' (or 'region') at the host that answers."
            )
        elif status in (401, 403):
            fatal = PendoAuthError(
                f"Pendo refused the key in setting '{setting}' (HTTP {status} on {path}). "
                + (
                    "Use the app's Track Event Shared Secret (Subscription Settings > app > "
                    "App Details)"
                    if setting == TRACK_SETTING
                    else "Use an Integration Key with write access (Settings > Integrations > "
                    "Integration Keys)"
                )
                + "; a key from another region also fails: check 'region' / 'api_url'."
            )
        elif status == 404 and PARENT_ACCOUNT_KIND in path:
            fatal = PendoNotFoundError(
                f"Pendo answered 404 on {path}: {UNVERIFIED_PARENT_ROUTES}. Sync parent "
                "accounts' fields another way, or ask Pendo support whether the route exists."
            )
        elif status == 404:
            fatal = PendoNotFoundError(
                f"{shown_url(response.url or self.api_url + path)} answered 404: check setting "
                "'region' (or 'api_url' / 'track_url') points at your Pendo subscription's host"
            )
        else:
            fatal = PendoRequestError(
                f"Pendo answered HTTP {status} on {path}: {self.redact(response.text[:300])!r}"
            )
        raise fatal

    def track(self, body: bytes, *, stream: str | None = None) -> CallResult:
        """One event: ACCEPTED, or REJECTED with Pendo's reason (a refusal of this event only)."""
        with self.track_call(body, stream=stream) as send:
            return send()

    @contextlib.contextmanager
    def track_call(
        self, body: bytes, *, stream: str | None = None
    ) -> Iterator[Callable[[], CallResult]]:
        """`track` in two steps, for a caller that marks the call in flight between them
        (``sinks/track_calls.py``): entering waits for room and pacing, raising PendoAuthError or
        StopRequested, neither in doubt; `send()` then puts the call on the wire at once."""
        request = self._request("POST", api.TRACK_PATH, TRACK_SETTING, body, stream)
        with self.transport.outgoing(request, self._track_result) as send:
            yield send

    def _track_result(self, response: requests.Response) -> CallResult:
        status = self._answer(api.TRACK_PATH, TRACK_SETTING, True, response).status_code
        if status in _ROW_REJECT_STATUSES:
            return CallResult(CallOutcome.REJECTED, status, self._reason(response))
        return CallResult(CallOutcome.ACCEPTED, status)

    def _reason(
        self, response: requests.Response, chars: int = 500, empty: str = "no reason given"
    ) -> str:
        return self.redact(response.text.strip()[:chars]) or empty

    def get_field_schema(self, kind: str) -> dict[str, Any]:
        """`GET /api/v1/metadata/schema/{kind}`: group -> field -> attributes."""
        response = self.request("GET", api.SCHEMA_PATH.format(kind=kind), API_SETTING)
        try:
            data = response.json()
        except ValueError:
            raise PendoRequestError(
                f"Pendo's {kind} field schema is not JSON: {self.redact(response.text[:200])!r}"
            ) from None
        return data if isinstance(data, dict) else {}

    def create_fields(
        self, kind: str, group: str, fields: Sequence[dict[str, str]], *, stream: str | None = None
    ) -> bool:
        """Create (or undelete) fields `{"name", "displayname", "type"}`; False on 404/405."""
        path = api.CREATE_FIELDS_PATH.format(kind=kind, group=group)
        body = json.dumps(list(fields)).encode()
        try:
            response = self.request(
                "POST", path, API_SETTING, body, stream=stream, refusals_ok=True
            )
        except PendoNotFoundError:
            return False
        except PendoRequestError as exc:
            if " 405 " in str(exc):
                return False
            raise
        if response.status_code in _ROW_REJECT_STATUSES:
            names = ", ".join(f"'{f['name']}'" for f in fields)
            raise PendoFieldCreateError(
                f"Pendo refused to create {kind} {group} field(s) {names} (HTTP "
                f"{response.status_code}: {self._reason(response, 300, 'no reason')}"
                "); create them in Pendo under Settings > Data Mappings"
            )
        return True

    def update_metadata(
        self, kind: str, group: str, body: bytes, rows: int, *, stream: str | None = None
    ) -> MetadataAnswer | Refused | TooBig:
        """One bulk write; a 200 not in Pendo's JSON confirms nothing: asked again, then fatal."""
        path = api.METADATA_PATH.format(kind=kind, group=group)
        for attempt in range(1, UNCONFIRMED_TRIES + 1):
            try:
                response = self.request(
                    "POST",
                    path,
                    API_SETTING,
                    body,
                    stream=stream,
                    refusals_ok=True,
                    size_sensitive=rows > 1,
                )
            except TooBigSignal as exc:
                return TooBig(self.redact(str(exc)))
            if response.status_code in _ROW_REJECT_STATUSES:
                reason = self._reason(response)
                if kind == PARENT_ACCOUNT_KIND:
                    reason += f" ({UNVERIFIED_PARENT_ROUTES})"
                return Refused(f"HTTP {response.status_code}: {reason}", response.status_code)
            answer = MetadataAnswer.parse(response.content, self.redact)
            if answer is not None:
                return answer
            preview = self._reason(response, 120, "an empty body")
            log.warning(
                "Pendo's 200 answer to POST %s is not its JSON object (%s: %r); nothing in "
                "that call is recorded as sent (try %d of %d).",
                path,
                response.headers.get("Content-Type") or "no content type",
                preview,
                attempt,
                UNCONFIRMED_TRIES,
            )
            if attempt < UNCONFIRMED_TRIES and self.transport.wait(attempt):
                raise StopRequested("the run was asked to stop")
        raise PendoUnconfirmedError(
            f"Pendo answered POST {path} with 200 but not with its JSON answer ({preview!r}), "
            f"{UNCONFIRMED_TRIES} times; no row of those calls was recorded as sent. Something "
            "between target-pendo and Pendo (a proxy, a captive portal) may be answering in "
            "Pendo's place: check setting 'api_url'."
        )

    def bulk_delete(self, kind: str, ids: Sequence[str], *, stream: str | None = None) -> list[str]:
        """Pendo's job ids. Deletes are permanent in Pendo: any refusal is fatal, never split."""
        list_key = api.BULK_DELETE_LIST_KEYS[kind]
        jobs: list[str] = []
        for start in range(0, len(ids), api.BULK_DELETE_MAX):
            if start and self.sends and self.transport.wait(api.BULK_DELETE_INTERVAL):
                raise StopRequested("the run was asked to stop during deletes")
            body = json.dumps({list_key: list(ids[start : start + api.BULK_DELETE_MAX])}).encode()
            response = self.request(
                "POST", api.BULK_DELETE_PATH.format(kind=kind), API_SETTING, body, stream=stream
            )
            try:
                jobs.append(str(response.json().get("id", "")))
            except (ValueError, AttributeError):
                jobs.append("")
        return jobs

    def check_track_secret(self) -> None:
        """Check the Track secret without sending an event: `{}` is none, so Pendo answers 400
        when the key is not refused, 401/403 when it is [I: that answer is undocumented]."""
        self.request("POST", api.TRACK_PATH, TRACK_SETTING, b"{}", refusals_ok=True)

    def verify_integration_key(self) -> bool:
        """`GET /api/v1/token/verify`: True when the key may write."""
        response = self.request("GET", api.VERIFY_PATH, API_SETTING)
        try:
            data = response.json()
        except ValueError:
            return False
        return isinstance(data, dict) and bool(data.get("writeAccess"))
