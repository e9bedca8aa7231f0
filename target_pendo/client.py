"""PendoClient: the only code that knows Pendo's URLs, headers and status codes.

- hosts: Track events go to the Track host (`track_url`, by region `https://data.pendo.io`),
  everything else to the API host (`api_url`, by region `https://app.pendo.io`);
- keep-alive: one `requests.Session` per worker thread (Session is not documented as
  thread-safe), each holding its connection open between calls;
- concurrency: a fixed pool of `max_concurrency` workers shared by every sink;
- pacing: one AdaptivePacer per endpoint (Track, the /api/v1 routes) shared by every worker,
  taken before each attempt (retries too), learning Pendo's limit from its 429s
  (``ratelimit.py``); `max_requests_per_second` is its ceiling, 0 turns pacing off;
- retries (``retry.RetryPolicy``): 429 honours `Retry-After` within a sane range, else
  exponential back-off with full jitter; 408, 409, 5xx, timeouts and resets likewise, for at
  most `max_retry_seconds`; a wait longer than what is left fails at once; a host that does
  not resolve fails after two tries; a stop request (SIGTERM) ends every wait at once;
- redirects are never followed: the key header must not travel to another host;
- fatal answers raise typed errors naming the setting to check, never its value.
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from target_pendo.answers import MetadataAnswer
from target_pendo.attempts import Attempt, CallObserver
from target_pendo.calllog import CallLog
from target_pendo.errors import (
    PendoAuthError,
    PendoError,
    PendoFieldCreateError,
    PendoNotFoundError,
    PendoRedirectError,
    PendoRequestError,
    PendoUnavailableError,
    PendoUnconfirmedError,
    StopRequested,
)
from target_pendo.pendo_api import (
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
from target_pendo.ratelimit import AdaptivePacer, PacerStats
from target_pendo.redact import Redactor, shown_url
from target_pendo.retry import DNS_FAILURE_TRIES, RetryPolicy, parse_retry_after
from target_pendo.split import Refused, TooBig
from target_pendo.workers import Checkpoint, Workers

TRACK_SETTING = "track_event_secret"
API_SETTING = "integration_key"
PARENT_ACCOUNT_KIND = "parentAccount"
UNVERIFIED_PARENT_ROUTES = (
    "Pendo's parentAccount API routes are not publicly documented and could not be verified; "
    "your subscription may not offer them"
)

# Answers that refuse only what was sent (one event, one metadata batch), not the run.
_ROW_REJECT_STATUSES = frozenset({400, 413, 422})
_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# Answers to a call of several metadata rows that mean "send fewer rows a call".
_TOO_BIG_STATUSES = frozenset({408, 413})
# A 200 metadata answer that is not Pendo's JSON is asked again this often, then the run stops.
UNCONFIRMED_TRIES = 3
_LOG_BODY_CHARS = 2000

http_log = logging.getLogger("target_pendo.http")
log = logging.getLogger("target_pendo.client")


class _Retryable(Exception):
    """An attempt worth repeating. `cause` groups retries for the summary."""

    def __init__(
        self,
        what: str,
        cause: str,
        *,
        retry_after: float | None = None,
        in_doubt: bool = False,
        dns: bool = False,
    ) -> None:
        super().__init__(what)
        self.cause = cause
        self.retry_after = retry_after
        self.in_doubt = in_doubt
        self.dns = dns


class _TooBigSignal(Exception):
    """A call of several metadata rows took too long (408, 413 or no answer in time)."""


def _transport_failure(exc: requests.RequestException, url: str, timeout: float) -> Exception:
    """The retry signal for a transport failure, or the error itself when retrying is futile."""
    shown = shown_url(url)
    if isinstance(exc, requests.ConnectTimeout):
        return _Retryable(f"connect timeout to {shown}", "connect timeout")
    if isinstance(exc, requests.Timeout):
        return _Retryable(f"no answer from {shown} within {timeout:g}s", "timeout", in_doubt=True)
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, NameResolutionError):
            return _Retryable(f"cannot resolve the host of {shown}", "dns", dns=True)
        never_connected = isinstance(reason, NewConnectionError)
        return _Retryable(
            f"connection to {shown} failed: {type(exc).__name__}",
            "connection refused" if never_connected else "connection reset",
            in_doubt=not never_connected,
        )
    return exc


class CallOutcome(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NOT_SENT = "not_sent"  # Pendo does not have it: never on the wire, or answered a failure
    UNANSWERED = "unanswered"  # an attempt got no answer, then the call ended: in doubt


@dataclass(frozen=True)
class CallResult:
    outcome: CallOutcome
    status: int = 0
    reason: str = ""


ResultCallback = Callable[[int, CallResult], None]
SendCallback = Callable[[int], None]
TrackNote = Callable[[Sequence[tuple[int, CallResult]], int | None], None]
ENDPOINTS = ("track", "api")  # Pendo limits each endpoint on its own


def _note_with(on_result: ResultCallback | None, on_send: SendCallback | None) -> TrackNote:
    def note(answered: Sequence[tuple[int, CallResult]], sending: int | None) -> None:
        for index, result in answered:
            if on_result is not None:
                on_result(index, result)
        if sending is not None and on_send is not None:
            on_send(sending)

    return note


class ClientStats:
    """Thread-safe counters for the run report, overall and per stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # per route
        self.stream_calls: Counter[str] = Counter()
        self.stream_retries: Counter[str] = Counter()
        self.retry_causes: Counter[tuple[str, str]] = Counter()  # (stream, cause)
        self.retries = 0
        self.in_doubt = 0  # attempts that got no answer although they may have reached Pendo

    def call(self, route: str, stream: str | None) -> None:
        with self._lock:
            self.calls[route] += 1
            if stream is not None:
                self.stream_calls[stream] += 1

    def retry(self, in_doubt: bool, stream: str | None, cause: str) -> int:
        """Count one retry; returns how many retries this stream had for this cause."""
        with self._lock:
            self.retries += 1
            self.in_doubt += int(in_doubt)
            if stream is not None:
                self.stream_retries[stream] += 1
            key = (stream or "-", cause)
            self.retry_causes[key] += 1
            return self.retry_causes[key]

    def snapshot(self) -> StatsSnapshot:
        """A consistent copy of the counters the progress lines show."""
        with self._lock:
            return StatsSnapshot(
                calls=sum(self.calls.values()),
                stream_calls=dict(self.stream_calls),
                retries=self.retries,
                stream_retries=dict(self.stream_retries),
                retry_causes=dict(self.retry_causes),
            )


@dataclass(frozen=True)
class StatsSnapshot:
    calls: int
    stream_calls: dict[str, int]
    retries: int
    stream_retries: dict[str, int]
    retry_causes: dict[tuple[str, str], int]


@dataclass
class _Call:
    """One logical call across its attempts."""

    stream: str | None = None
    before_send: Callable[[], None] | None = None  # runs once, before the first attempt
    size_sensitive: bool = False  # several metadata rows: 408/timeout mean "send fewer"
    endpoint: str = "api"  # which pacer: "track" or "api"
    attempts: int = 0
    maybe_delivered: bool = False  # an attempt went out and got no answer
    started: float = field(default_factory=time.monotonic)


def mark_in_doubt(exc: BaseException, in_doubt: bool) -> BaseException:
    """Tag an error ending a call with whether an attempt of it may have reached Pendo."""
    exc.in_doubt = in_doubt  # type: ignore[attr-defined]
    return exc


class PendoClient:
    """Shared by all sinks of one run; safe to call from several threads."""

    def __init__(
        self,
        api_url: str,
        *,
        track_url: str | None = None,
        track_event_secret: str | None,
        integration_key: str | None,
        max_concurrency: int = 8,
        max_requests_per_second: float | None = None,
        request_timeout: float = 30,
        max_retry_seconds: float = 300,
        redact: Redactor | None = None,
        call_log: CallLog | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.track_url = (track_url or api_url).rstrip("/")
        self._keys = {TRACK_SETTING: track_event_secret, API_SETTING: integration_key}
        self.redact = redact or Redactor(self._keys.values())
        self.max_concurrency = max_concurrency
        paced = max_requests_per_second != 0
        self._pacers: dict[str, AdaptivePacer | None] = {
            endpoint: AdaptivePacer(max_requests_per_second) if paced else None
            for endpoint in ENDPOINTS
        }
        self._timeout = request_timeout
        self._policy = RetryPolicy(max_seconds=max_retry_seconds)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self.workers = Workers(max_concurrency)  # every sink's calls share these threads
        self._stop = threading.Event()
        self.stats = ClientStats()
        self._call_log = call_log
        self._observers: tuple[CallObserver, ...] = ()

    def observe(self, observer: CallObserver) -> None:
        """Tell `observer` of every attempt from now on (add observers before sending)."""
        self._observers = (*self._observers, observer)

    # --- stopping -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Send nothing more: waits end now, calls not yet on the wire are not sent. Calls on
        the wire finish (bounded by `request_timeout`). Safe from a signal handler: it only
        sets an event."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _checkpoint(self, call: _Call) -> None:
        if self._stop.is_set():
            raise mark_in_doubt(
                StopRequested("the run was asked to stop before this call ended"),
                call.maybe_delivered,
            )

    # --- sessions -----------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no .netrc credentials or proxy settings picked up
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        if self._call_log is not None:
            self._call_log.close()
        self.workers.close()
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    # --- one call -----------------------------------------------------------------------------
    def _key(self, setting: str) -> str:
        key = self._keys.get(setting)
        if not key:
            raise PendoAuthError(f"setting '{setting}' is empty; set it to sync this stream")
        return key

    def _attempt(
        self, method: str, url: str, setting: str, body: bytes | None, call: _Call
    ) -> requests.Response:
        """One HTTP attempt; raises _Retryable for answers worth another try."""
        headers = {KEY_HEADER: self._key(setting)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        pacer = self._pacers[call.endpoint]
        sent_at = pacer.acquire(self._stop) if pacer is not None else 0.0
        self._checkpoint(call)
        call.attempts += 1
        if call.attempts == 1 and call.before_send is not None:
            call.before_send()  # after pacing, right before the bytes leave
        route = f"{method} {url.removeprefix(self.api_url).removeprefix(self.track_url)}"
        self.stats.call(route, call.stream)
        for observer in self._observers:
            observer.attempt_started(call.stream)
        started = time.perf_counter()
        try:
            response = self._session().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            failure = _transport_failure(exc, url, self._timeout)
            self._log_call(method, url, None, started, call, body, None, str(failure))
            if isinstance(failure, _Retryable):
                if failure.in_doubt:
                    call.maybe_delivered = True
                if call.size_sensitive and failure.cause == "timeout":
                    raise _TooBigSignal(str(failure)) from None
            raise failure from exc
        self._log_call(method, url, response.status_code, started, call, body, response, None)
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if pacer is not None:
            if status == 429:
                pacer.on_throttled(sent_at, retry_after)
            elif status < 500:
                pacer.on_success()
        if call.size_sensitive and status in _TOO_BIG_STATUSES:
            raise _TooBigSignal(f"HTTP {status} from {shown_url(url)}")
        if status in _RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {status} from {shown_url(url)}",
                f"HTTP {status}",
                retry_after=retry_after,
            )
        return response

    def _log_call(
        self,
        method: str,
        url: str,
        status: int | None,
        started: float,
        call: _Call,
        body: bytes | None,
        response: requests.Response | None,
        error: str | None,
    ) -> None:
        seconds = time.perf_counter() - started
        if self._call_log is not None or self._observers:
            attempt = Attempt(
                method, shown_url(url), status, seconds, call.attempts, call.stream, body,
                response, error,
            )  # fmt: skip
            for observer in self._observers:  # first: a failing call-log write hides nothing
                observer.attempt_ended(attempt)
            if self._call_log is not None:
                self._call_log.write(attempt)
        if http_log.isEnabledFor(logging.DEBUG):
            http_log.debug(
                "%s %s -> %s in %.1f ms; request %s; response %s",
                method,
                shown_url(url),
                status if status is not None else error,
                seconds * 1000,
                self.redact((body or b"").decode("utf-8", "replace")[:_LOG_BODY_CHARS]),
                self.redact("" if response is None else response.text[:_LOG_BODY_CHARS]),
            )

    def _send(
        self, method: str, url: str, setting: str, body: bytes | None, call: _Call
    ) -> requests.Response:
        """One logical call: attempts until an answer that is not worth retrying."""
        retry = 0
        while True:
            self._checkpoint(call)
            try:
                return self._attempt(method, url, setting, body, call)
            except _Retryable as exc:
                retry += 1
                if exc.dns and retry >= DNS_FAILURE_TRIES:
                    raise mark_in_doubt(
                        PendoUnavailableError(
                            f"{exc}: check setting 'api_url' / 'track_url' / 'region' and the "
                            "network's DNS; nothing more was sent"
                        ),
                        call.maybe_delivered,
                    ) from None
                wait = self._policy.wait(retry, exc.retry_after)
                left = self._policy.max_seconds - (time.monotonic() - call.started)
                if left <= 0 or (exc.retry_after is not None and wait > left):
                    # Pendo's own Retry-After past the budget: failing now beats sleeping
                    # through the budget only to fail then
                    raise mark_in_doubt(
                        self._unavailable(exc, wait, left), call.maybe_delivered
                    ) from None
                wait = min(wait, left)  # a last attempt when the budget ends
                self._note_retry(exc, call, wait)
                self._stop.wait(wait)  # a stop request ends the wait; the loop's top raises

    def _unavailable(self, exc: _Retryable, wait: float, left: float) -> PendoUnavailableError:
        budget = self._policy.max_seconds
        if exc.retry_after is not None:
            why = (
                f"Pendo asked to wait {wait:g}s (Retry-After) but only {max(left, 0):.0f}s of "
                f"the {budget:g}s retry budget (setting 'max_retry_seconds') were left"
            )
        else:
            why = f"Pendo kept failing for {budget:g}s (setting 'max_retry_seconds')"
        return PendoUnavailableError(
            f"{why}; last error: {self.redact(str(exc))}. Rows not accepted were not marked "
            "done; rerun the sync later."
        )

    def _note_retry(self, exc: _Retryable, call: _Call, wait: float) -> None:
        """Count the retry; log the first of each cause per stream, the rest at DEBUG (the run
        report sums them up), so an outage is a few lines, not one per attempt."""
        times = self.stats.retry(exc.in_doubt, call.stream, exc.cause)
        for observer in self._observers:
            observer.retrying(call.stream, exc.cause)
        level = logging.INFO if times == 1 else logging.DEBUG
        where = f"stream '{call.stream}'" if call.stream else "Pendo"
        log.log(
            level,
            "Retrying %s in %.1fs (attempt %d): %s%s",
            where,
            wait,
            call.attempts,
            self.redact(str(exc)),
            "; further retries for this cause are counted in the run report" if times == 1 else "",
        )

    def request(
        self,
        method: str,
        path: str,
        setting: str,
        body: bytes | None = None,
        *,
        base: str | None = None,
        stream: str | None = None,
        refusals_ok: bool = False,
        before_send: Callable[[], None] | None = None,
        size_sensitive: bool = False,
    ) -> requests.Response:
        """One logical call with retries; raises typed errors for fatal answers.

        With `refusals_ok`, a 400/413/422 is returned to the caller: it refuses only what was
        sent (an event, a metadata batch) and the caller rejects or splits. `before_send` runs
        once, before the first attempt goes on the wire (after pacing). Every error raised
        carries `in_doubt`: whether an attempt may have reached Pendo.
        """
        call = _Call(stream, before_send, size_sensitive, "track" if path == TRACK_PATH else "api")
        response = self._send(method, (base or self.api_url) + path, setting, body, call)
        if not (refusals_ok and response.status_code in _ROW_REJECT_STATUSES):
            try:
                self._raise_for_fatal(response, path, setting)
            except PendoError as exc:
                raise mark_in_doubt(exc, call.maybe_delivered) from None
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

    def parallel(self, fn: Callable[[Any, Checkpoint], Any], items: Sequence[Any]) -> list[Any]:
        """`fn(item, checkpoint)` on each item on the run's workers (`Workers.each`)."""
        return self.workers.each(fn, items)

    # --- Track --------------------------------------------------------------------------------
    def pacing(self) -> dict[str, PacerStats]:
        """Per endpoint: the rate reached and the 429s drawn (none when pacing is off)."""
        return {name: p.stats for name, p in self._pacers.items() if p is not None}

    def _track_one(
        self,
        index: int,
        body: bytes,
        answered: list[tuple[int, CallResult]],
        note: TrackNote,
        stream: str | None,
    ) -> CallResult:
        """One Track call. `note(answered, index)` runs right before it goes on the wire: the
        worker's previous answers and this call's in-flight mark in one go (one ledger
        transaction instead of two per call)."""
        sent = False

        def before_send() -> None:
            nonlocal sent
            note(answered, index)
            answered.clear()
            sent = True

        try:
            response = self.request(
                "POST",
                TRACK_PATH,
                TRACK_SETTING,
                body,
                base=self.track_url,
                stream=stream,
                refusals_ok=True,
                before_send=before_send,
            )
        except (PendoError, StopRequested) as exc:
            if sent:
                doubt = bool(getattr(exc, "in_doubt", False))
                outcome = CallOutcome.UNANSWERED if doubt else CallOutcome.NOT_SENT
                note([(index, CallResult(outcome, 0, self.redact(str(exc))[:300]))], None)
            raise
        if response.status_code in _ROW_REJECT_STATUSES:
            reason = self.redact(response.text.strip()[:500]) or "no reason given"
            return CallResult(CallOutcome.REJECTED, response.status_code, reason)
        return CallResult(CallOutcome.ACCEPTED, response.status_code)

    def send_tracks(
        self,
        bodies: Sequence[bytes],
        on_result: ResultCallback | None = None,
        on_send: SendCallback | None = None,
        *,
        stream: str | None = None,
        note: TrackNote | None = None,
    ) -> list[CallResult]:
        """POST each body to the Track host (one event per request), `max_concurrency` at a time.

        Returns one result per body, in order. Each worker tells the caller about its calls
        through `note(answered, sending)`: the answers it got since it last reported, and the
        call it is about to put on the wire (None at the end), so a caller can record each
        answer and mark the next call in flight in one step, before the bytes leave. Without
        `note`, `on_result(index, result)` and `on_send(index)` are called instead. All must be
        thread-safe. A fatal error (bad key, Pendo down past the retry budget, a stop request)
        stops the remaining sends and is raised after the running ones end; the answers got
        until then are still noted.
        """
        if note is None:
            note = _note_with(on_result, on_send)
        results: list[CallResult | None] = [None] * len(bodies)
        counter = itertools.count()

        def loop(failed: threading.Event) -> None:
            answered: list[tuple[int, CallResult]] = []
            try:
                while not failed.is_set():
                    index = next(counter)  # atomic: count() is C code under the GIL
                    if index >= len(bodies):
                        break
                    result = self._track_one(index, bodies[index], answered, note, stream)
                    results[index] = result
                    answered.append((index, result))
            finally:
                if answered:
                    note(answered, None)

        self.workers.spread(len(bodies), loop)
        return [r if r is not None else CallResult(CallOutcome.NOT_SENT) for r in results]

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
            except _TooBigSignal as exc:
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
            if attempt < UNCONFIRMED_TRIES and self._stop.wait(attempt):
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
            if start and self._stop.wait(BULK_DELETE_INTERVAL):
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
        self.request(
            "POST", TRACK_PATH, TRACK_SETTING, b"{}", base=self.track_url, refusals_ok=True
        )

    def verify_integration_key(self) -> bool:
        """`GET /api/v1/token/verify`: True when the key may write."""
        response = self.request("GET", VERIFY_PATH, API_SETTING)
        try:
            data = response.json()
        except ValueError:
            return False
        return isinstance(data, dict) and bool(data.get("writeAccess"))
