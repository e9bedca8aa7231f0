"""PendoClient: Pendo's operations, each returning a typed answer; the only code that knows
Pendo's hosts, key headers and what its status codes mean.

- hosts: Track events go to the Track host (`track_url`, by region `https://data.pendo.io`),
  everything else to the API host (`api_url`, by region `https://app.pendo.io`);
- answers: a Track call is accepted or rejected (`CallResult`); a metadata write is Pendo's
  answer, refused, or too big (``answers.py``); fatal answers raise typed errors naming the
  setting to check, never its value, each a `CallEnded` whose `in_doubt` says whether an
  attempt may have reached Pendo;
- how a request travels (sessions, pacing, retries, the call log, the dry run's recording) is
  the transport's (``transport.py``); which calls run side by side is the sinks' (they own the
  outcomes: ``sinks/track_calls.py``, ``sinks/objects.py``).
"""

from __future__ import annotations

import contextlib
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
from target_pendo.pendo.answers import CallOutcome, CallResult, MetadataAnswer, Refused, TooBig
from target_pendo.pendo.api import (
    BULK_DELETE_INTERVAL,
    BULK_DELETE_LIST_KEYS,
    BULK_DELETE_MAX,
    BULK_DELETE_PATH,
    CREATE_FIELDS_PATH,
    KEY_HEADER,
    METADATA_PATH,
    SCHEMA_PATH,
    TRACK_PATH,
    VERIFY_PATH,
)
from target_pendo.pendo.attempts import CallObserver
from target_pendo.pendo.calllog import CallLog
from target_pendo.pendo.inflight import DEFAULT_CEILING, InFlightStats
from target_pendo.pendo.ratelimit import PacerStats
from target_pendo.pendo.transport import (
    READ_METHODS,
    AdapterFactory,
    CallStats,
    Reply,
    Request,
    TooBigSignal,
    Transport,
    ending,
)
from target_pendo.redact import Redactor, shown_url

TRACK_SETTING = "track_event_secret"
API_SETTING = "integration_key"
PARENT_ACCOUNT_KIND = "parentAccount"
UNVERIFIED_PARENT_ROUTES = (
    "Pendo's parentAccount API routes are not publicly documented and could not be verified; "
    "your subscription may not offer them"
)

# Answers that refuse only what was sent (one event, one metadata batch), not the run.
_ROW_REJECT_STATUSES = frozenset({400, 413, 422})
# A 200 metadata answer that is not Pendo's JSON is asked again this often, then the run stops.
UNCONFIRMED_TRIES = 3
RECORDED_KEY = "(none: recorded by the dry run)"

log = logging.getLogger("target_pendo.client")


class PendoClient:
    """Shared by all sinks of one run; safe to call from several threads."""

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
        """`adapter` makes what carries each thread's requests (requests' HTTPAdapter unless
        given); `sends=False` says it records writes instead of sending them (the dry run): a
        write then needs no key, and waits that only spare Pendo (between bulk deletes) are
        skipped. `network` is how calls leave the machine (proxies, trust; ``network.py``): a
        plain-http host reached through a proxy is refused here, since the key would travel
        in clear. How many calls run at once is the caller's (``workers.py``)."""
        self.api_url = api_url.rstrip("/")
        self.track_url = (track_url or api_url).rstrip("/")
        self._keys = {TRACK_SETTING: track_event_secret, API_SETTING: integration_key}
        self.redact = redact or Redactor(self._keys.values())
        self.sends = sends
        network = network or Network()
        network.refuse_clear_text(self.api_url, "api_url")
        network.refuse_clear_text(self.track_url, "track_url" if track_url else "api_url")
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

    # --- the transport's counters and controls, for the run -------------------------------------
    @property
    def stats(self) -> CallStats:
        return self.transport.stats

    def in_flight(self) -> dict[str, InFlightStats]:
        """Per endpoint: calls allowed on the wire now, the most at once, the round trip."""
        return self.transport.in_flight()

    def pacing(self) -> dict[str, PacerStats]:
        """Per endpoint: the rate reached and the 429s drawn (none when pacing is off)."""
        return self.transport.pacing()

    def observe(self, observer: CallObserver) -> None:
        """Tell `observer` of every attempt from now on (add observers before sending)."""
        self.transport.observe(observer)

    def stop(self) -> None:
        """Send nothing more (see `Transport.stop`); safe from a signal handler."""
        self.transport.stop()

    def close(self) -> None:
        self.transport.close()

    # --- one call -----------------------------------------------------------------------------
    def _key(self, setting: str, method: str) -> str:
        key = self._keys.get(setting)
        if key:
            return key
        if not self.sends and method not in READ_METHODS:
            return RECORDED_KEY  # a dry run's write never leaves: previewing needs no key
        raise PendoAuthError(f"setting '{setting}' is empty; set it to sync this stream")

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
        """One logical call with retries; raises typed errors for fatal answers.

        With `refusals_ok`, a 400/413/422 is returned to the caller: it refuses only what was
        sent (an event, a metadata batch) and the caller rejects or splits. Every error raised
        is a CallEnded carrying `in_doubt`: whether an attempt may have reached Pendo.
        """
        request = self._request(method, path, setting, body, stream, size_sensitive)
        return self._answer(self.transport.send(request), path, setting, refusals_ok)

    def _request(
        self,
        method: str,
        path: str,
        setting: str,
        body: bytes | None,
        stream: str | None,
        size_sensitive: bool = False,
    ) -> Request:
        """The call as the transport takes it; raises PendoAuthError when its key is empty."""
        track = path == TRACK_PATH
        return Request(
            method,
            self.track_url if track else self.api_url,
            path,
            {KEY_HEADER: self._key(setting, method)},
            body,
            stream=stream,
            endpoint="track" if track else "api",
            size_sensitive=size_sensitive,
        )

    def _answer(
        self, reply: Reply, path: str, setting: str, refusals_ok: bool
    ) -> requests.Response:
        """The response that ended a call, or the typed error its status means, carrying
        `in_doubt` (an earlier attempt went out unanswered)."""
        response = reply.response
        if not (refusals_ok and response.status_code in _ROW_REJECT_STATUSES):
            try:
                self._raise_for_fatal(response, path, setting)
            except PendoError as exc:
                raise ending(exc, reply.maybe_delivered) from None
        return response

    def _raise_for_fatal(self, response: requests.Response, path: str, setting: str) -> None:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("Location") or "(no Location header)"
            raise PendoRedirectError(
                f"{shown_url(response.url or path)} answered HTTP {status}, a redirect to "
                f"{shown_url(location)}; target-pendo never follows a redirect with a key "
                "attached, and the call's rows were not sent. Point setting 'api_url' / "
                "'track_url' (or 'region') at the host that answers."
            )
        if status < 400:
            return
        if status in (401, 403):
            raise PendoAuthError(
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
        if status == 404:
            if PARENT_ACCOUNT_KIND in path:
                raise PendoNotFoundError(
                    f"Pendo answered 404 on {path}: {UNVERIFIED_PARENT_ROUTES}. Sync parent "
                    "accounts' fields another way, or ask Pendo support whether the route exists."
                )
            raise PendoNotFoundError(
                f"{shown_url(response.url or self.api_url + path)} answered 404: check setting "
                "'region' (or 'api_url' / 'track_url') points at your Pendo subscription's host"
            )
        raise PendoRequestError(
            f"Pendo answered HTTP {status} on {path}: {self.redact(response.text[:300])!r}"
        )

    # --- Track --------------------------------------------------------------------------------
    def track(self, body: bytes, *, stream: str | None = None) -> CallResult:
        """One event to the Track host: ACCEPTED, or REJECTED with Pendo's reason (a refusal
        of this event only). Fatal answers raise a CallEnded carrying `in_doubt`."""
        with self.track_call(body, stream=stream) as send:
            return send()

    @contextlib.contextmanager
    def track_call(
        self, body: bytes, *, stream: str | None = None
    ) -> Iterator[Callable[[], CallResult]]:
        """`track` in two steps, for a caller that records the call before Pendo can see it
        (``sinks/track_calls.py`` marks it in flight in the ledger)::

            with client.track_call(body) as send:  # waits: room on the wire, then pacing
                ...  # record: nothing has left yet, and no wait is left
                result = send()  # on the wire at once; retried as `track` retries

        Entering raises PendoAuthError (no key) or StopRequested (the run stops during the
        waits), neither in doubt: the call never left. Leaving without `send()` gives its
        turn back."""
        request = self._request("POST", TRACK_PATH, TRACK_SETTING, body, stream)
        with self.transport.outgoing(request) as outgoing:
            yield lambda: self._track_result(
                self._answer(outgoing.send(), TRACK_PATH, TRACK_SETTING, refusals_ok=True)
            )

    def _track_result(self, response: requests.Response) -> CallResult:
        if response.status_code in _ROW_REJECT_STATUSES:
            reason = self.redact(response.text.strip()[:500]) or "no reason given"
            return CallResult(CallOutcome.REJECTED, response.status_code, reason)
        return CallResult(CallOutcome.ACCEPTED, response.status_code)

    # --- metadata -----------------------------------------------------------------------------
    def get_field_schema(self, kind: str) -> dict[str, Any]:
        """`GET /api/v1/metadata/schema/{kind}`: group -> field -> attributes."""
        response = self.request("GET", SCHEMA_PATH.format(kind=kind), API_SETTING)
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
        """`POST /api/v1/metadata/schema/{kind}/{group}`: create (or undelete) fields, each
        `{"name", "displayname", "type"}`. False when the route is not there (404/405), so a
        caller can fall back; a refusal raises PendoFieldCreateError with Pendo's reason."""
        path = CREATE_FIELDS_PATH.format(kind=kind, group=group)
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
                f"{response.status_code}: {self.redact(response.text.strip()[:300]) or 'no reason'}"
                "); create them in Pendo under Settings > Data Mappings"
            )
        return True

    def update_metadata(
        self, kind: str, group: str, body: bytes, rows: int, *, stream: str | None = None
    ) -> MetadataAnswer | Refused | TooBig:
        """One bulk metadata write of `rows` rows.

        Refused when Pendo rejects the call whole (400/422); TooBig when a call of several
        rows took too long (408, 413, no answer in time); else Pendo's answer. A 200 whose
        body is not Pendo's JSON confirms nothing: asked again, then PendoUnconfirmedError.
        """
        path = METADATA_PATH.format(kind=kind, group=group)
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
                reason = self.redact(response.text.strip()[:500]) or "no reason given"
                if kind == PARENT_ACCOUNT_KIND:
                    reason += f" ({UNVERIFIED_PARENT_ROUTES})"
                return Refused(f"HTTP {response.status_code}: {reason}", response.status_code)
            answer = MetadataAnswer.parse(response.content, self.redact)
            if answer is not None:
                return answer
            preview = self.redact(response.text.strip()[:120]) or "an empty body"
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
        """Delete visitors or accounts (permanent in Pendo), 500 ids a call, one call a second.

        Returns Pendo's job ids. Any refusal is fatal here: deletes are never split or guessed.
        """
        list_key = BULK_DELETE_LIST_KEYS[kind]
        jobs: list[str] = []
        for start in range(0, len(ids), BULK_DELETE_MAX):
            if start and self.sends and self.transport.wait(BULK_DELETE_INTERVAL):
                raise StopRequested("the run was asked to stop during deletes")
            chunk = list(ids[start : start + BULK_DELETE_MAX])
            body = json.dumps({list_key: chunk}).encode()
            response = self.request(
                "POST", BULK_DELETE_PATH.format(kind=kind), API_SETTING, body, stream=stream
            )
            try:
                jobs.append(str(response.json().get("id", "")))
            except (ValueError, AttributeError):
                jobs.append("")
        return jobs

    # --- checks -------------------------------------------------------------------------------
    def check_track_secret(self) -> None:
        """Check the Track secret without sending an event: an empty object is not an event,
        so Pendo answers 400 when the key is not refused, 401/403 when it is [I: the contract
        says a wrong Track secret's answer is undocumented]. Raises PendoAuthError if refused."""
        self.request("POST", TRACK_PATH, TRACK_SETTING, b"{}", refusals_ok=True)

    def verify_integration_key(self) -> bool:
        """`GET /api/v1/token/verify`: True when the key may write."""
        response = self.request("GET", VERIFY_PATH, API_SETTING)
        try:
            data = response.json()
        except ValueError:
            return False
        return isinstance(data, dict) and bool(data.get("writeAccess"))
