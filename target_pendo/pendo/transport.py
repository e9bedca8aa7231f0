"""How a request reaches Pendo: a keep-alive `requests.Session` per thread (not documented as
thread-safe), its adapter requests' or the dry run's; before every attempt, room on the wire
(``inflight.py``) then the pacer's go (``ratelimit.py``); waits a stop request ends at once;
redirects never followed (the key must not reach another host). `outgoing` serves a caller that
marks a call in flight in the ledger: the mark must come after the turn, or a call that never
left would count "in doubt" after a crash.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import TypeVar

import requests
from requests.adapters import BaseAdapter
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from urllib3.exceptions import NameResolutionError, NewConnectionError

from target_pendo.errors import CallEnded, PendoNetworkError, PendoUnavailableError, StopRequested
from target_pendo.network import Network, cause_of, is_tls_failure
from target_pendo.observe.redact import Redactor, shown_url
from target_pendo.pendo.attempts import Attempt, CallObserver
from target_pendo.pendo.calllog import CallLog
from target_pendo.pendo.inflight import DEFAULT_CEILING, InFlightLimit, InFlightStats
from target_pendo.pendo.ratelimit import AdaptivePacer, PacerStats
from target_pendo.pendo.retry import DNS_FAILURE_TRIES, parse_retry_after, retry_wait

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
TOO_BIG_STATUSES = frozenset({408, 413})  # to a call of several metadata rows: "send fewer"
ENDPOINTS = ("track", "api")  # Pendo limits each endpoint on its own
READ_METHODS = frozenset({"GET", "HEAD"})  # calls that change nothing at Pendo
_LOG_BODY_CHARS = 2000

http_log = logging.getLogger("target_pendo.http")
log = logging.getLogger("target_pendo.client")

AdapterFactory = Callable[[], BaseAdapter]
T = TypeVar("T")


@dataclass(eq=False)
class _Retryable(Exception):
    """An attempt worth repeating; `cause` groups retries, `dns_fix` says what to check."""

    what: str
    cause: str
    _: KW_ONLY
    retry_after: float | None = None
    in_doubt: bool = False
    dns_fix: str | None = None

    def __str__(self) -> str:
        return self.what


class TooBigSignal(Exception):
    """A call of several metadata rows took too long (408, 413 or no answer in time)."""


def _transport_failure(
    exc: requests.RequestException, url: str, timeout: float, network: Network
) -> Exception:
    """The retry signal for a transport failure, or the error itself when retrying is futile."""
    shown = shown_url(url)
    if is_tls_failure(exc):  # before ConnectionError, of which requests' SSLError is one
        return PendoNetworkError(f"{network.tls_failure(url, exc)}; nothing more was sent")
    refusal = network.proxy_refusal(url, exc)
    if refusal is not None:
        text, worth_retrying = refusal
        if not worth_retrying:
            return PendoNetworkError(f"{text}; nothing more was sent")
        return _Retryable(text, "proxy")
    if isinstance(exc, requests.ConnectTimeout):
        return _Retryable(f"connect timeout to {shown}", "connect timeout")
    if isinstance(exc, requests.Timeout):
        return _Retryable(f"no answer from {shown} within {timeout:g}s", "timeout", in_doubt=True)
    if isinstance(exc, ChunkedEncodingError | ContentDecodingError):
        # the answer began, then broke off (a proxy or load balancer dropped it): the request
        # reached Pendo's front end, so the call is in doubt
        return _Retryable(
            f"the answer from {shown} broke off ({type(exc).__name__})",
            "connection reset",
            in_doubt=True,
        )
    if not isinstance(exc, requests.ConnectionError):
        # a request requests would not build, most likely a key with a line break in it (its
        # text would quote the header): one line that names no value, not an OSError's
        return PendoNetworkError(
            f"cannot call {shown}: requests would not build the request ({type(exc).__name__}); "
            "check 'track_event_secret' and 'integration_key' for a line break or other "
            "control character"
        )
    proxy = network.proxy(url)
    if cause_of(exc, NameResolutionError) is not None:
        what, check = (
            (f"the proxy {shown_url(proxy)}", "HTTPS_PROXY / HTTP_PROXY / ALL_PROXY")
            if proxy is not None
            else (f"the host of {shown}", "setting 'api_url' / 'track_url' / 'region'")
        )
        return _Retryable(
            f"cannot resolve {what}", "dns", dns_fix=f"check {check} and the network's DNS"
        )
    never_connected = cause_of(exc, NewConnectionError) is not None
    if isinstance(exc, requests.exceptions.ProxyError) and proxy is not None:
        # the tunnel was not open yet: nothing of the call reached Pendo
        refused = " (refused)" if never_connected else ""
        return _Retryable(f"connection to the proxy {shown_url(proxy)} failed{refused}", "proxy")
    return _Retryable(
        f"connection to {shown} failed: {type(exc).__name__}",
        "connection refused" if never_connected else "connection reset",
        in_doubt=not never_connected,
    )


@dataclass(eq=False)
class CallStats:
    """Thread-safe counters for the run report, overall and per stream."""

    calls: Counter[str] = field(default_factory=Counter)  # per route
    stream_calls: Counter[str] = field(default_factory=Counter)
    stream_retries: Counter[str] = field(default_factory=Counter)
    retry_causes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (stream, cause)
    retries: int = 0
    in_doubt: int = 0  # attempts that got no answer although they may have reached Pendo
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

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

    def snapshot(self) -> CallStats:
        """A consistent copy of the counters, for the progress lines."""
        with self._lock:
            return CallStats(
                **{f.name: copy.copy(getattr(self, f.name)) for f in fields(self) if f.init}
            )


@dataclass(frozen=True)
class Request:
    method: str
    base: str  # the host's URL: the Track host or the API host
    path: str
    headers: dict[str, str]
    body: bytes | None = None
    stream: str | None = None
    endpoint: str = "api"  # which pacer: "track" or "api"
    size_sensitive: bool = False  # several metadata rows: 408/timeout mean "send fewer"

    @property
    def url(self) -> str:
        return self.base + self.path


class PreparedCall(requests.PreparedRequest):
    """An attempt's wire request carrying the client's call (route, stream), for the dry run."""

    def __init__(self, call: Request, prepared: requests.PreparedRequest) -> None:
        super().__init__()
        vars(self).update(vars(prepared))  # the prepared request as it is, field for field
        self.call = call


@dataclass
class _Call:
    request: Request
    attempts: int = 0
    maybe_delivered: bool = False  # an attempt went out and got no answer
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Turn:
    """An attempt's room on the wire and the pacer's go (`sent_at`), given back exactly once."""

    wire: InFlightLimit
    pacer: AdaptivePacer | None
    held: bool
    sent_at: float = 0.0

    def give_back(self, round_trip: float | None) -> None:
        """`round_trip` None: no answer, or the attempt never went out."""
        if self.held:
            self.held = False
            self.wire.release(round_trip, self.pacer.stats.rate if self.pacer else None)


class Transport:
    """Shared by all sinks of one run; safe to call from several threads."""

    def __init__(
        self,
        *,
        max_requests_per_second: float | None = None,
        max_concurrency: int = DEFAULT_CEILING,
        request_timeout: float = 30,
        max_retry_seconds: float = 300,
        redact: Redactor,
        call_log: CallLog | None = None,
        adapter: AdapterFactory | None = None,
        network: Network | None = None,
    ) -> None:
        paced = max_requests_per_second != 0
        self._pacers = {
            e: AdaptivePacer(max_requests_per_second) if paced else None for e in ENDPOINTS
        }
        self._in_flight = {
            e: InFlightLimit(max_concurrency, rate=p.stats.rate if p else None, paced=paced)
            for e, p in self._pacers.items()
        }
        self.redact = redact
        self.timeout = request_timeout
        self.max_retry_seconds = max_retry_seconds  # one call's budget, its waits included
        self.network = network or Network()
        self._adapter = adapter or self.network.adapter
        self._proxies_for = functools.cache(self.network.proxies)  # per base URL, looked up once
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._stop = threading.Event()
        self.stats = CallStats()
        self._call_log = call_log
        self._observers: tuple[CallObserver, ...] = ()

    def observe(self, observer: CallObserver) -> None:
        """Tell `observer` of every attempt from now on (add observers before sending)."""
        self._observers = (*self._observers, observer)

    def pacing(self) -> dict[str, PacerStats]:
        """Per endpoint: the rate reached and the 429s drawn (none when pacing is off)."""
        return {name: p.stats for name, p in self._pacers.items() if p is not None}

    def in_flight(self) -> dict[str, InFlightStats]:
        """Per endpoint: calls allowed on the wire now, the most at once, the round trip."""
        return {name: limit.stats for name, limit in self._in_flight.items()}

    def stop(self) -> None:
        """Send nothing more (calls on the wire finish). Only sets an event: signal-handler safe."""
        self._stop.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True (at once) when the run is asked to stop."""
        return self._stop.wait(seconds)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self.network.session(self._adapter())
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        if self._call_log is not None:
            self._call_log.close()
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    @contextlib.contextmanager
    def outgoing(
        self, request: Request, answer: Callable[[requests.Response], T]
    ) -> Iterator[Callable[[], T]]:
        """Entering waits for the first attempt's turn (a stop raises StopRequested, not in doubt);
        the callable sends at once, retries, and returns `answer(response)`, raising TooBigSignal
        or a CallEnded (`answer`'s too) with `in_doubt` set. Leaving unsent gives the turn back."""
        call = _Call(request)  # the retry budget counts from here, the waits included
        turns = [self._take_turn(call)]
        first = turns[0]

        def send() -> T:
            if not turns:
                raise RuntimeError("an outgoing call is sent once")
            return self._send(call, turns.pop(), answer)

        try:
            yield send
        finally:
            first.give_back(None)  # nothing when the call was sent: its attempt gave it back

    def _send(self, call: _Call, turn: _Turn, answer: Callable[[requests.Response], T]) -> T:
        try:
            while True:
                try:
                    return answer(self._attempt(call, turn))
                except _Retryable as exc:
                    self._before_retry(exc, call)
                turn = self._take_turn(call)  # raises when the run is asked to stop
        except CallEnded as exc:  # in doubt when an attempt went out and got no answer
            exc.in_doubt = call.maybe_delivered
            raise

    def _take_turn(self, call: _Call) -> _Turn:
        """Room on the wire, then the pacer's go; StopRequested on a stop (room given back)."""
        endpoint = call.request.endpoint
        turn = _Turn(self._in_flight[endpoint], self._pacers[endpoint], held=False)
        try:
            turn.held = turn.wire.acquire(self._stop)  # False: a stop request ended the wait
            if turn.held and turn.pacer is not None:
                turn.sent_at = turn.pacer.acquire(self._stop)
            if self._stop.is_set():
                raise StopRequested("the run was asked to stop before this call ended")
        except BaseException:
            turn.give_back(None)
            raise
        return turn

    def _before_retry(self, exc: _Retryable, call: _Call) -> None:
        if exc.dns_fix and call.attempts >= DNS_FAILURE_TRIES:
            raise PendoUnavailableError(f"{exc}: {exc.dns_fix}; nothing more was sent") from None
        wait = retry_wait(call.attempts, exc.retry_after)
        left = self.max_retry_seconds - (time.monotonic() - call.started)
        if left <= 0 or (exc.retry_after is not None and wait > left):
            # a Retry-After past the budget: failing now beats sleeping only to fail then
            budget = self.max_retry_seconds
            why = (
                f"Pendo asked to wait {wait:g}s (Retry-After) but only {max(left, 0):.0f}s of "
                f"the {budget:g}s retry budget (setting 'max_retry_seconds') were left"
                if exc.retry_after is not None
                else f"Pendo kept failing for {budget:g}s (setting 'max_retry_seconds')"
            )
            raise PendoUnavailableError(
                f"{why}; last error: {self.redact(str(exc))}. Rows not accepted were not marked "
                "done; rerun the sync later."
            ) from None
        wait = min(wait, left)  # a last attempt when the budget ends
        # the first retry per stream and cause at INFO, the rest at DEBUG: an outage is a few lines
        stream = call.request.stream
        times = self.stats.retry(exc.in_doubt, stream, exc.cause)
        for observer in self._observers:
            observer.retrying(stream, exc.cause)
        log.log(
            logging.INFO if times == 1 else logging.DEBUG,
            "Retrying %s in %.1fs (attempt %d): %s%s",
            f"stream '{stream}'" if stream else "Pendo",
            wait,
            call.attempts,
            self.redact(str(exc)),
            "; further retries for this cause are counted in the run report" if times == 1 else "",
        )
        self._stop.wait(wait)  # a stop request ends the wait; the next turn then raises

    def _attempt(self, call: _Call, turn: _Turn) -> requests.Response:
        """One HTTP attempt in its turn (given back when it ends); _Retryable if worth another."""
        request = call.request
        url = request.url
        round_trip: float | None = None  # None: the call got no answer
        try:
            call.attempts += 1
            self.stats.call(f"{request.method} {request.path}", request.stream)
            for observer in self._observers:
                observer.attempt_started(request.stream)
            started = time.perf_counter()
            try:
                response = self._put_on_wire(request)
            except requests.RequestException as exc:
                failure = _transport_failure(exc, url, self.timeout, self.network)
                self._log_call(call, started, None, str(failure))
                if isinstance(failure, _Retryable):
                    call.maybe_delivered |= failure.in_doubt
                    if request.size_sensitive and failure.cause == "timeout":
                        raise TooBigSignal(str(failure)) from None
                raise failure from (None if isinstance(failure, PendoNetworkError) else exc)
            round_trip = time.perf_counter() - started
        finally:
            turn.give_back(round_trip)
        status = response.status_code
        self._log_call(call, started, response, None)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if turn.pacer is not None:
            if status == 429:
                turn.pacer.on_throttled(turn.sent_at, retry_after)
            elif status < 500:
                turn.pacer.on_success()
        if request.size_sensitive and status in TOO_BIG_STATUSES:
            raise TooBigSignal(f"HTTP {status} from {shown_url(url)}")
        if status in RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {status} from {shown_url(url)}", f"HTTP {status}", retry_after=retry_after
            )
        return response

    def _put_on_wire(self, request: Request) -> requests.Response:
        """`request` sent as `Session.request` would, its wire request a `PreparedCall`."""
        session = self._session()
        headers = dict(request.headers)
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        wire = requests.Request(request.method, request.url, headers, data=request.body)
        prepared = PreparedCall(request, session.prepare_request(wire))
        # as Session.request merges: the base URL's proxies, the session's verify (no environment)
        settings = session.merge_environment_settings(
            prepared.url, self._proxies_for(request.base), None, None, None
        )
        return session.send(prepared, timeout=self.timeout, allow_redirects=False, **settings)

    def _log_call(
        self, call: _Call, started: float, response: requests.Response | None, error: str | None
    ) -> None:
        request = call.request
        status = None if response is None else response.status_code
        seconds = time.perf_counter() - started
        attempt = Attempt(
            request.method, shown_url(request.url), status, seconds, call.attempts,
            request.stream, request.body, response, error,
        )  # fmt: skip
        for observer in self._observers:  # first: a failing call-log write hides nothing
            observer.attempt_ended(attempt)
        if self._call_log is not None:
            self._call_log.write(attempt)
        if http_log.isEnabledFor(logging.DEBUG):
            http_log.debug(
                "%s %s -> %s in %.1f ms; request %s; response %s",
                request.method,
                shown_url(request.url),
                status if status is not None else error,
                seconds * 1000,
                self.redact((request.body or b"").decode("utf-8", "replace")[:_LOG_BODY_CHARS]),
                self.redact("" if response is None else response.text[:_LOG_BODY_CHARS]),
            )
