"""The transport under the client: how a request reaches Pendo, not what it means.

- keep-alive: one `requests.Session` per worker thread (Session is not documented as
  thread-safe), each holding its connection open between calls;
- calls in flight: per endpoint, as many as the pace needs at the round trip measured
  (``inflight.py``), up to `max_concurrency`; a call takes its place before pacing;
- pacing: one AdaptivePacer per endpoint (Track, the /api/v1 routes) shared by every thread,
  taken before each attempt (retries too), learning Pendo's limit from its 429s
  (``ratelimit.py``); `max_requests_per_second` is its ceiling, 0 turns pacing off;
- retries (``retry.RetryPolicy``): 429 honours `Retry-After` within a sane range, else
  exponential back-off with full jitter; 408, 409, 5xx, timeouts and resets likewise, for at
  most `max_retry_seconds`; a wait longer than what is left fails at once; a host that does
  not resolve fails after two tries; a stop request (SIGTERM) ends every wait at once;
- redirects are never followed: the key header must not travel to another host;
- the network (``network.py``): proxies and trusted CAs from the environment, no `.netrc`; a
  TLS failure or a proxy's refusal ends the call at once, since no retry will mend either;
- every attempt is counted, told to the observers and written to the call log.

What goes on the wire is the sessions' adapter: requests' HTTPAdapter for a real run, the
dry run's recording adapter (``dryrun.py``) for a dry run. Everything above the adapter is
the same code in both, so a dry run walks the path a real run takes.

A call whose caller must record something before its bytes leave (the Track workers mark the
call in flight in the ledger: ``sinks/track_calls.py``) is made in two steps, `outgoing` then
`Outgoing.send`: the first waits for the first attempt's turn (room on the wire, the pacer's
go), the second puts it on the wire at once. The caller records in between, top-down in its
own code. The mark cannot come before `outgoing`: a call still waiting for its turn has not
left, and marked in flight it would count "in doubt" after a crash (or a long pacing wait
ended by SIGKILL) although Pendo never saw it. Retries need no new mark: the call stays in
flight until it has an answer.

An error that ends a call is a `CallEnded` (``errors.py``) whose `in_doubt` says whether an
attempt of the call went out and got no answer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from target_pendo.errors import (
    CallEnded,
    PendoNetworkError,
    PendoUnavailableError,
    StopRequested,
)
from target_pendo.network import Network, cause_of, is_tls_failure
from target_pendo.pendo.attempts import Attempt, CallObserver
from target_pendo.pendo.calllog import CallLog
from target_pendo.pendo.inflight import DEFAULT_CEILING, InFlightLimit, InFlightStats
from target_pendo.pendo.ratelimit import AdaptivePacer, PacerStats
from target_pendo.pendo.retry import DNS_FAILURE_TRIES, RetryPolicy, parse_retry_after
from target_pendo.redact import Redactor, shown_url

# Answers worth another attempt of the same call.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# Answers to a call of several metadata rows that mean "send fewer rows a call".
TOO_BIG_STATUSES = frozenset({408, 413})
ENDPOINTS = ("track", "api")  # Pendo limits each endpoint on its own
READ_METHODS = frozenset({"GET", "HEAD"})  # calls that change nothing at Pendo
_LOG_BODY_CHARS = 2000

http_log = logging.getLogger("target_pendo.http")
log = logging.getLogger("target_pendo.client")

AdapterFactory = Callable[[], BaseAdapter]


def http_adapter(network: Network) -> HTTPAdapter:
    """What carries a session's requests to Pendo: one kept-alive connection (each thread
    has its own session), verified with the network's trust, and no retries of urllib3's own
    (the retry policy is ours)."""
    return network.adapter(pool_connections=1, pool_maxsize=1, max_retries=0)


class _Retryable(Exception):
    """An attempt worth repeating. `cause` groups retries for the summary."""

    def __init__(
        self,
        what: str,
        cause: str,
        *,
        retry_after: float | None = None,
        in_doubt: bool = False,
        dns_fix: str | None = None,
    ) -> None:
        super().__init__(what)
        self.cause = cause
        self.retry_after = retry_after
        self.in_doubt = in_doubt
        self.dns_fix = dns_fix  # a name that did not resolve: what to check


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
    if isinstance(exc, requests.ConnectionError):
        proxy = network.proxy(url)
        if cause_of(exc, NameResolutionError) is not None:
            if proxy is not None:
                return _Retryable(
                    f"cannot resolve the proxy {shown_url(proxy)}", "dns",
                    dns_fix="check HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and the network's DNS",
                )  # fmt: skip
            return _Retryable(
                f"cannot resolve the host of {shown}", "dns",
                dns_fix="check setting 'api_url' / 'track_url' / 'region' and the network's DNS",
            )  # fmt: skip
        never_connected = cause_of(exc, NewConnectionError) is not None
        if isinstance(exc, requests.exceptions.ProxyError) and proxy is not None:
            # the tunnel was not open yet: nothing of the call reached Pendo
            return _Retryable(
                f"connection to the proxy {shown_url(proxy)} failed"
                + (" (refused)" if never_connected else ""),
                "proxy",
            )
        return _Retryable(
            f"connection to {shown} failed: {type(exc).__name__}",
            "connection refused" if never_connected else "connection reset",
            in_doubt=not never_connected,
        )
    return exc


_Ended = TypeVar("_Ended", bound=CallEnded)


def ending(exc: _Ended, maybe_delivered: bool) -> _Ended:
    """`exc` as it ends a call: `in_doubt` when an attempt of the call may have reached Pendo
    (it went out and got no answer)."""
    exc.in_doubt = maybe_delivered
    return exc


class CallStats:
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


@dataclass(frozen=True)
class Request:
    """One logical call as the client asks for it."""

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
    """An attempt's wire request carrying the call it belongs to, as the client asked for it
    (its route and stream), for an adapter that needs more than the wire request (the dry
    run's): the sessions' adapter is handed this very object."""

    def __init__(self, call: Request, prepared: requests.PreparedRequest) -> None:
        super().__init__()
        vars(self).update(vars(prepared))  # the prepared request as it is, field for field
        self.call = call


@dataclass
class _Call:
    """One logical call across its attempts."""

    request: Request
    attempts: int = 0
    maybe_delivered: bool = False  # an attempt went out and got no answer
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Reply:
    """The answer that ended a call, and whether an earlier attempt may have reached Pendo."""

    response: requests.Response
    maybe_delivered: bool


@dataclass
class _Turn:
    """An attempt's place: room on its endpoint's wire (``inflight.py``) and the pacer's go
    (`sent_at`: when the pacer let it go). Given back once: when the attempt ends, or when
    it is never made."""

    wire: InFlightLimit
    pacer: AdaptivePacer | None
    sent_at: float = 0.0
    held: bool = True

    def give_back(self, round_trip: float | None) -> None:
        """The attempt left the wire after `round_trip` seconds (None: no answer, or it never
        went out); a second call does nothing."""
        if self.held:
            self.held = False
            rate = self.pacer.stats.rate if self.pacer is not None else None
            self.wire.release(round_trip, rate)


class Outgoing:
    """A call whose first attempt holds its turn and has not left (``Transport.outgoing``):
    no wait is left before its bytes go out, so what the caller records now is on record
    before Pendo can see the call."""

    def __init__(self, send: Callable[[_Turn], Reply], turn: _Turn) -> None:
        self._send = send
        self._turn: _Turn | None = turn

    def send(self) -> Reply:
        """Put the call on the wire now, retrying as `Transport.send` does (once only)."""
        turn, self._turn = self._turn, None
        if turn is None:
            raise RuntimeError("an outgoing call is sent once")
        return self._send(turn)


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
        """`network` is how calls leave this machine (proxies, trust): by default, no proxy
        and the default trust; a run passes the environment's (``Network.from_environment``)."""
        paced = max_requests_per_second != 0
        self._pacers: dict[str, AdaptivePacer | None] = {
            endpoint: AdaptivePacer(max_requests_per_second) if paced else None
            for endpoint in ENDPOINTS
        }
        # calls on the wire at once, per endpoint: what the pace needs (``inflight.py``)
        self._in_flight = {
            endpoint: InFlightLimit(
                max_concurrency,
                rate=pacer.stats.rate if pacer is not None else None,
                paced=pacer is not None,
            )
            for endpoint, pacer in self._pacers.items()
        }
        self.redact = redact
        self.timeout = request_timeout
        self.policy = RetryPolicy(max_seconds=max_retry_seconds)
        self.network = network or Network()
        self._adapter = adapter or (lambda: http_adapter(self.network))
        self._proxies: dict[str, dict[str, str]] = {}  # per base URL, looked up once
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

    # --- stopping -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Send nothing more: waits end now, calls not yet on the wire are not sent. Calls on
        the wire finish (bounded by `request_timeout`). Safe from a signal handler: it only
        sets an event."""
        self._stop.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True (at once) when the run is asked to stop."""
        return self._stop.wait(seconds)

    def _checkpoint(self, call: _Call) -> None:
        if self._stop.is_set():
            raise ending(
                StopRequested("the run was asked to stop before this call ended"),
                call.maybe_delivered,
            )

    # --- sessions -----------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no .netrc; proxies and trust come from the network
            adapter = self._adapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _proxies_for(self, base: str) -> dict[str, str]:
        proxies = self._proxies.get(base)
        if proxies is None:
            proxies = self._proxies[base] = self.network.proxies(base)
        return proxies

    def close(self) -> None:
        if self._call_log is not None:
            self._call_log.close()
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    # --- one call -----------------------------------------------------------------------------
    def send(self, request: Request) -> Reply:
        """One logical call: attempts until an answer that is not worth retrying. Raises
        TooBigSignal (size-sensitive calls), or a CallEnded (StopRequested,
        PendoUnavailableError, PendoNetworkError) carrying `in_doubt`."""
        return self._send(_Call(request), None)

    @contextlib.contextmanager
    def outgoing(self, request: Request) -> Iterator[Outgoing]:
        """`send` in two steps, for a caller that records something before the call can reach
        Pendo: entering waits for the first attempt's turn (room on the wire, then the pacer's
        go; a stop request raises StopRequested, not in doubt: nothing left); then
        `Outgoing.send()` puts it on the wire with no further wait. Leaving without sending
        gives the turn back."""
        call = _Call(request)  # the retry budget counts from here, the waits included
        turn = self._take_turn(call)
        try:
            yield Outgoing(lambda taken: self._send(call, taken), turn)
        finally:
            turn.give_back(None)  # nothing when the call was sent: its attempt gave it back

    def _send(self, call: _Call, turn: _Turn | None) -> Reply:
        """Attempts of `call`; the first in `turn` when the caller took it (`outgoing`)."""
        retry = 0
        while True:
            if turn is None:
                self._checkpoint(call)
                turn = self._take_turn(call)
            attempt, turn = turn, None
            try:
                return Reply(self._attempt(call, attempt), call.maybe_delivered)
            except _Retryable as exc:
                retry += 1
                self._before_retry(exc, call, retry)

    def _take_turn(self, call: _Call) -> _Turn:
        """Wait for room on the endpoint's wire, then for the pacer's go; raises StopRequested
        when the run is asked to stop meanwhile (the room given back)."""
        endpoint = call.request.endpoint
        pacer = self._pacers[endpoint]
        wire = self._in_flight[endpoint]
        if not wire.acquire(self._stop):
            self._checkpoint(call)  # the stop request ended the wait: raises
        turn = _Turn(wire, pacer)
        try:
            turn.sent_at = pacer.acquire(self._stop) if pacer is not None else 0.0
            self._checkpoint(call)
        except BaseException:
            turn.give_back(None)
            raise
        return turn

    def _before_retry(self, exc: _Retryable, call: _Call, retry: int) -> None:
        """Wait before attempt `retry + 1`, or raise when retrying is futile."""
        if exc.dns_fix and retry >= DNS_FAILURE_TRIES:
            raise ending(
                PendoUnavailableError(f"{exc}: {exc.dns_fix}; nothing more was sent"),
                call.maybe_delivered,
            ) from None
        wait = self.policy.wait(retry, exc.retry_after)
        left = self.policy.max_seconds - (time.monotonic() - call.started)
        if left <= 0 or (exc.retry_after is not None and wait > left):
            # Pendo's own Retry-After past the budget: failing now beats sleeping through the
            # budget only to fail then
            raise ending(self._unavailable(exc, wait, left), call.maybe_delivered) from None
        wait = min(wait, left)  # a last attempt when the budget ends
        self._note_retry(exc, call, wait)
        self._stop.wait(wait)  # a stop request ends the wait; the loop's top raises

    def _attempt(self, call: _Call, turn: _Turn) -> requests.Response:
        """One HTTP attempt, in its turn (given back when it ends); raises _Retryable for
        answers worth another try."""
        request = call.request
        url = request.url
        round_trip: float | None = None  # None: the call got no answer
        try:
            headers = dict(request.headers)
            if request.body is not None:
                headers["Content-Type"] = "application/json"
            call.attempts += 1
            self.stats.call(f"{request.method} {request.path}", request.stream)
            for observer in self._observers:
                observer.attempt_started(request.stream)
            started = time.perf_counter()
            try:
                response = self._put_on_wire(request, headers)
            except requests.RequestException as exc:
                failure = _transport_failure(exc, url, self.timeout, self.network)
                self._log_call(call, None, started, None, str(failure))
                if isinstance(failure, _Retryable):
                    if failure.in_doubt:
                        call.maybe_delivered = True
                    if request.size_sensitive and failure.cause == "timeout":
                        raise TooBigSignal(str(failure)) from None
                if isinstance(failure, PendoNetworkError):
                    raise ending(failure, call.maybe_delivered) from None
                raise failure from exc
            round_trip = time.perf_counter() - started
        finally:
            turn.give_back(round_trip)
        status = response.status_code
        self._log_call(call, status, started, response, None)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        pacer = turn.pacer
        if pacer is not None:
            if status == 429:
                pacer.on_throttled(turn.sent_at, retry_after)
            elif status < 500:
                pacer.on_success()
        if request.size_sensitive and status in TOO_BIG_STATUSES:
            raise TooBigSignal(f"HTTP {status} from {shown_url(url)}")
        if status in RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {status} from {shown_url(url)}", f"HTTP {status}", retry_after=retry_after
            )
        return response

    def _put_on_wire(self, request: Request, headers: dict[str, str]) -> requests.Response:
        """Send `request` through the thread's session as `Session.request` would, its wire
        request carrying the call to the adapter (`PreparedCall`)."""
        session = self._session()
        prepared = PreparedCall(
            request,
            session.prepare_request(
                requests.Request(request.method, request.url, headers, data=request.body)
            ),
        )
        # the settings Session.request merges: the base URL's proxies, and the session's
        # stream, verify and cert (trust_env is off: nothing from the environment)
        settings = session.merge_environment_settings(
            prepared.url, self._proxies_for(request.base), None, None, None
        )
        return session.send(prepared, timeout=self.timeout, allow_redirects=False, **settings)

    def _log_call(
        self,
        call: _Call,
        status: int | None,
        started: float,
        response: requests.Response | None,
        error: str | None,
    ) -> None:
        request = call.request
        seconds = time.perf_counter() - started
        if self._call_log is not None or self._observers:
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

    def _unavailable(self, exc: _Retryable, wait: float, left: float) -> PendoUnavailableError:
        budget = self.policy.max_seconds
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
        stream = call.request.stream
        times = self.stats.retry(exc.in_doubt, stream, exc.cause)
        for observer in self._observers:
            observer.retrying(stream, exc.cause)
        level = logging.INFO if times == 1 else logging.DEBUG
        where = f"stream '{stream}'" if stream else "Pendo"
        log.log(
            level,
            "Retrying %s in %.1fs (attempt %d): %s%s",
            where,
            wait,
            call.attempts,
            self.redact(str(exc)),
            "; further retries for this cause are counted in the run report" if times == 1 else "",
        )
