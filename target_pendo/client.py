"""PendoClient: the only code that knows Pendo's URLs, headers and status codes.

- keep-alive: one `requests.Session` per worker thread (Session is not documented as
  thread-safe), each holding its connection open between calls;
- concurrency: a fixed pool of `max_concurrency` workers shared by every sink;
- pacing: one RateLimiter shared by every worker, taken before each attempt (retries too);
- retries (`backoff`): 429 honours `Retry-After` (seconds or HTTP date), else exponential
  back-off with full jitter; 408, 409, 5xx, timeouts and resets likewise, for at most
  `max_retry_seconds`; then PendoUnavailableError;
- fatal answers raise typed errors naming the setting to check, never its value.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import backoff
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from target_pendo.calllog import CallLog
from target_pendo.errors import (
    PendoAuthError,
    PendoError,
    PendoNotFoundError,
    PendoRequestError,
    PendoUnavailableError,
)
from target_pendo.ratelimit import RateLimiter
from target_pendo.redact import Redactor
from target_pendo.split import Refused

KEY_HEADER = "x-pendo-integration-key"
TRACK_PATH = "/data/track"
VERIFY_PATH = "/api/v1/token/verify"
SCHEMA_PATH = "/api/v1/metadata/schema/{kind}"
METADATA_PATH = "/api/v1/metadata/{kind}/{group}/value"
BULK_DELETE_PATH = "/api/v1/bulkdelete/{kind}"
BULK_DELETE_MAX = 500  # ids per call, per Pendo
BULK_DELETE_INTERVAL = 1.0  # seconds between calls: Pendo allows about one a second
TRACK_SETTING = "track_event_secret"
API_SETTING = "integration_key"

# Answers that refuse only what was sent (one event, one metadata batch), not the run.
_ROW_REJECT_STATUSES = frozenset({400, 413, 422})
_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_RETRY_BASE_SECONDS = 0.5
_RETRY_CAP_SECONDS = 30.0
_LOG_BODY_CHARS = 2000

http_log = logging.getLogger("target_pendo.http")


class _Retryable(Exception):
    def __init__(self, what: str, retry_after: float | None = None, in_doubt: bool = False) -> None:
        super().__init__(what)
        self.retry_after = retry_after
        self.in_doubt = in_doubt


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached Pendo (refused, DNS): not "in doubt"."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _retryable_error(exc: requests.RequestException, url: str, timeout: float) -> Exception:
    """The retry signal for a transport failure, or the error itself when retrying is futile."""
    if isinstance(exc, requests.ConnectTimeout):
        return _Retryable(f"connect timeout to {url}")
    if isinstance(exc, requests.Timeout):
        return _Retryable(f"no answer from {url} within {timeout}s", in_doubt=True)
    if isinstance(exc, requests.ConnectionError):
        return _Retryable(
            f"connection to {url} failed: {type(exc).__name__}",
            in_doubt=not _never_connected(exc),
        )
    return exc


def _wait_gen() -> Generator[float, Any, None]:
    """`backoff` wait generator: Pendo's `Retry-After` when given, else full-jitter expo."""
    exc = yield 0.0
    attempt = 0
    while True:
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            delay = exc.retry_after
        else:
            delay = random.uniform(0, min(_RETRY_CAP_SECONDS, _RETRY_BASE_SECONDS * 2**attempt))
        attempt += 1
        exc = yield delay


ResultCallback = Callable[[int, "CallResult"], None]
SendCallback = Callable[[int], None]


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NOT_SENT = "not_sent"  # another call failed fatally first; the row stays unsent


@dataclass(frozen=True)
class CallResult:
    outcome: Outcome
    status: int = 0
    reason: str = ""


@dataclass(frozen=True)
class MetadataAnswer:
    """Pendo's 200 answer to a bulk metadata write, read tolerantly (fields are [T]/[I])."""

    updated: int
    missing: frozenset[str]
    errors: dict[str, str]  # object id -> reason, for items Pendo failed
    unattributed_errors: tuple[str, ...]  # errors naming no id we can match

    @classmethod
    def parse(cls, response: requests.Response, redact: Redactor) -> MetadataAnswer:
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        raw_missing = data.get("missing") or []
        if isinstance(raw_missing, str | int):
            raw_missing = [raw_missing]
        missing = (
            frozenset(str(i) for i in raw_missing)
            if isinstance(raw_missing, list)
            else (frozenset())
        )
        errors: dict[str, str] = {}
        loose: list[str] = []
        raw_errors = data.get("errors") or []
        for entry in raw_errors if isinstance(raw_errors, list) else [raw_errors]:
            if isinstance(entry, dict):
                object_id = entry.get("id") or entry.get("visitorId") or entry.get("accountId")
                text = entry.get("error") or entry.get("message") or json.dumps(entry)
                if object_id is not None:
                    errors[str(object_id)] = redact(str(text))
                    continue
                loose.append(redact(str(text)))
            else:
                loose.append(redact(str(entry)))
        try:
            updated = int(data.get("updated") or 0)
        except (TypeError, ValueError):
            updated = 0
        return cls(updated, missing, errors, tuple(loose))


class ClientStats:
    """Thread-safe counters for the run report, overall and per stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # per route
        self.stream_calls: Counter[str] = Counter()
        self.stream_retries: Counter[str] = Counter()
        self.retries = 0
        self.in_doubt = 0  # retried after the request may have reached Pendo

    def call(self, route: str, stream: str | None) -> None:
        with self._lock:
            self.calls[route] += 1
            if stream is not None:
                self.stream_calls[stream] += 1

    def retry(self, in_doubt: bool, stream: str | None) -> None:
        with self._lock:
            self.retries += 1
            self.in_doubt += int(in_doubt)
            if stream is not None:
                self.stream_retries[stream] += 1


@dataclass
class _Call:
    """One logical call across its attempts."""

    stream: str | None = None
    before_send: Callable[[], None] | None = None  # runs once, before the first attempt
    attempts: int = 0


class PendoClient:
    """Shared by all sinks of one run; safe to call from several threads."""

    def __init__(
        self,
        api_url: str,
        *,
        track_event_secret: str | None,
        integration_key: str | None,
        max_concurrency: int = 8,
        max_requests_per_second: float | None = 50,
        request_timeout: float = 30,
        max_retry_seconds: float = 300,
        redact: Redactor | None = None,
        call_log: CallLog | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._keys = {TRACK_SETTING: track_event_secret, API_SETTING: integration_key}
        self.redact = redact or Redactor(self._keys.values())
        self.max_concurrency = max_concurrency
        self._limiter = RateLimiter(max_requests_per_second)
        self._timeout = request_timeout
        self._max_retry_seconds = max_retry_seconds
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="pendo")
        self.stats = ClientStats()
        self._call_log = call_log
        self._retrying = backoff.on_exception(
            _wait_gen,
            _Retryable,
            max_time=self._max_retry_seconds,
            jitter=None,
            on_backoff=self._on_backoff,
            logger=None,
        )(self._attempt)

    # --- sessions -----------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
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
        self._pool.shutdown(wait=True, cancel_futures=True)
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
        self, method: str, path: str, setting: str, body: bytes | None, call: _Call
    ) -> requests.Response:
        """One HTTP attempt; raises _Retryable for answers worth another try."""
        url = self.api_url + path
        headers = {KEY_HEADER: self._key(setting)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self._limiter.acquire()
        call.attempts += 1
        if call.attempts == 1 and call.before_send is not None:
            call.before_send()  # after pacing, right before the bytes leave
        self.stats.call(f"{method} {path}", call.stream)
        started = time.perf_counter()
        try:
            response = self._session().request(
                method, url, data=body, headers=headers, timeout=self._timeout
            )
        except requests.RequestException as exc:
            failure = _retryable_error(exc, url, self._timeout)
            if self._call_log is not None:
                self._call_log.write(
                    method,
                    url,
                    None,
                    time.perf_counter() - started,
                    call.attempts,
                    call.stream,
                    body,
                    None,
                    str(failure),
                )
            raise failure from exc
        if self._call_log is not None:
            self._call_log.write(
                method,
                url,
                response.status_code,
                time.perf_counter() - started,
                call.attempts,
                call.stream,
                body,
                response.text,
                None,
            )
        if http_log.isEnabledFor(logging.DEBUG):
            http_log.debug(
                "%s %s -> %s in %.1f ms; request %s; response %s",
                method,
                url,
                response.status_code,
                (time.perf_counter() - started) * 1000,
                self.redact((body or b"").decode("utf-8", "replace")[:_LOG_BODY_CHARS]),
                self.redact(response.text[:_LOG_BODY_CHARS]),
            )
        if response.status_code in _RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {response.status_code} from {url}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _on_backoff(self, details: Any) -> None:
        exc = details.get("exception")
        call = details["args"][-1] if details.get("args") else None
        stream = call.stream if isinstance(call, _Call) else None
        self.stats.retry(bool(getattr(exc, "in_doubt", False)), stream)
        logging.getLogger("target_pendo.client").info(
            "Retrying in %.1fs (attempt %d): %s",
            details["wait"],
            details["tries"],
            self.redact(str(exc)),
        )

    def request(
        self,
        method: str,
        path: str,
        setting: str,
        body: bytes | None = None,
        *,
        stream: str | None = None,
        refusals_ok: bool = False,
        before_send: Callable[[], None] | None = None,
    ) -> requests.Response:
        """One logical call with retries; raises typed errors for fatal answers.

        With `refusals_ok`, a 400/413/422 is returned to the caller: it refuses only what was
        sent (an event, a metadata batch) and the caller rejects or splits. `before_send` runs
        before each attempt goes on the wire (after pacing).
        """
        try:
            response = self._retrying(method, path, setting, body, _Call(stream, before_send))
        except _Retryable as exc:
            raise PendoUnavailableError(
                f"Pendo kept failing for {self._max_retry_seconds:g}s "
                f"(setting 'max_retry_seconds'); last error: {self.redact(str(exc))}. "
                "Rows not accepted were not marked done; rerun the sync later."
            ) from None
        if not (refusals_ok and response.status_code in _ROW_REJECT_STATUSES):
            self._raise_for_fatal(response, path, setting)
        return response

    def _raise_for_fatal(self, response: requests.Response, path: str, setting: str) -> None:
        status = response.status_code
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
            raise PendoNotFoundError(
                f"{self.api_url}{path} answered 404: check setting 'region' (or 'api_url') "
                "points at your Pendo subscription's host"
            )
        raise PendoRequestError(
            f"Pendo answered HTTP {status} on {path}: {self.redact(response.text[:300])!r}"
        )

    def parallel(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """Run `fn` on each item on the worker pool (at most `max_concurrency` at once);
        results in order; the first error is raised after every call has ended."""
        futures = [self._pool.submit(fn, item) for item in items]
        results: list[Any] = []
        first_error: BaseException | None = None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:
                first_error = first_error or exc
                results.append(None)
        if first_error is not None:
            raise first_error
        return results

    # --- Track --------------------------------------------------------------------------------
    def _track_one(
        self,
        index: int,
        body: bytes,
        abort: threading.Event,
        on_send: SendCallback | None,
        on_result: ResultCallback | None,
        stream: str | None,
    ) -> CallResult:
        if abort.is_set():
            return CallResult(Outcome.NOT_SENT)
        try:
            response = self.request(
                "POST",
                TRACK_PATH,
                TRACK_SETTING,
                body,
                stream=stream,
                refusals_ok=True,
                before_send=None if on_send is None else lambda: on_send(index),
            )
        except PendoError:
            abort.set()
            raise
        if response.status_code in _ROW_REJECT_STATUSES:
            reason = self.redact(response.text.strip()[:500]) or "no reason given"
            result = CallResult(Outcome.REJECTED, response.status_code, reason)
        else:
            result = CallResult(Outcome.ACCEPTED, response.status_code)
        if on_result is not None:
            on_result(index, result)
        return result

    def send_tracks(
        self,
        bodies: Sequence[bytes],
        on_result: ResultCallback | None = None,
        on_send: SendCallback | None = None,
        *,
        stream: str | None = None,
    ) -> list[CallResult]:
        """POST each body to /data/track (one event per request), `max_concurrency` at a time.

        Returns one result per body, in order. `on_result(index, result)` runs in the worker
        thread as soon as Pendo answered, so a caller can record an accepted call at once;
        `on_send(index)` runs once, just before the first attempt goes on the wire (after
        pacing), so a caller can mark the call as in flight (both must be thread-safe).
        A fatal error (bad key, Pendo down past the retry budget) stops the remaining sends
        and is raised after the in-flight ones end.
        """
        abort = threading.Event()
        return self.parallel(
            lambda item: self._track_one(item[0], item[1], abort, on_send, on_result, stream),
            list(enumerate(bodies)),
        )

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

    def update_metadata(
        self, kind: str, group: str, body: bytes, *, stream: str | None = None
    ) -> MetadataAnswer | Refused:
        """One bulk metadata write; Refused when Pendo rejects the batch whole."""
        response = self.request(
            "POST",
            METADATA_PATH.format(kind=kind, group=group),
            API_SETTING,
            body,
            stream=stream,
            refusals_ok=True,
        )
        if response.status_code in _ROW_REJECT_STATUSES:
            reason = self.redact(response.text.strip()[:500]) or "no reason given"
            return Refused(f"HTTP {response.status_code}: {reason}")
        return MetadataAnswer.parse(response, self.redact)

    def bulk_delete(self, kind: str, ids: Sequence[str], *, stream: str | None = None) -> list[str]:
        """Delete visitors or accounts (permanent in Pendo), 500 ids a call, one call a second.

        Returns Pendo's job ids. Any refusal is fatal here: deletes are never split or guessed.
        """
        list_key = "visitors" if kind == "visitor" else "accounts"
        jobs: list[str] = []
        for start in range(0, len(ids), BULK_DELETE_MAX):
            if start:
                time.sleep(BULK_DELETE_INTERVAL)
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
        """Validate the Track secret without sending an event: an empty object is not an event,
        so Pendo answers 400 when the key is right and 403 when it is not [I: per the
        contract, a missing `event`/`visitorId` is a 400]. Raises PendoAuthError if wrong."""
        self.request("POST", TRACK_PATH, TRACK_SETTING, b"{}", refusals_ok=True)

    def verify_integration_key(self) -> bool:
        """`GET /api/v1/token/verify`: True when the key may write."""
        response = self.request("GET", VERIFY_PATH, API_SETTING)
        return bool(response.json().get("writeAccess"))
