"""Proxies and trusted CAs as the environment sets them, read once per run (docs/pendo-api.md).
`.netrc` is never used (a Pendo call carries its key header and nothing else), a plain-http URL
carrying a key never goes through a proxy, and proxy credentials are secrets like the keys. TLS
and proxy failures are described here: their fix is in the environment, so messages name it.
"""

from __future__ import annotations

import functools
import os
import ssl
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import certifi
import requests
import truststore
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.utils import get_environ_proxies, select_proxy
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from target_pendo.errors import ConfigError
from target_pendo.observe.redact import shown_url, url_secrets

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")  # requests' order: first wins
_SUPPORTED_PROXY_SCHEMES = ("http", "https")
E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True)
class Network:
    """The proxies and trust of one run, for Pendo's hosts and the alert webhook alike."""

    ca_bundle: str | None = None  # the extra CA file or folder, from `ca_variable`
    ca_variable: str | None = None
    proxy_urls: tuple[tuple[str, str], ...] = ()  # (variable, URL) as set

    @classmethod
    def from_environment(cls) -> Network:
        """Read the variables; raises ConfigError naming a variable that cannot work."""
        ca_variable = next((v for v in CA_BUNDLE_VARIABLES if os.environ.get(v)), None)
        ca_bundle = os.environ[ca_variable] if ca_variable else None
        if ca_bundle is not None and not os.path.exists(ca_bundle):
            raise ConfigError(
                f"{ca_variable}={ca_bundle} names no file: point it at your company's CA "
                "bundle (PEM), or unset it"
            )
        proxy_urls = tuple(
            (f"{scheme.upper()}_PROXY", _with_scheme(url))
            for scheme, url in urllib.request.getproxies_environment().items()
            if scheme != "no" and url
        )
        example = "such as http://user:password@proxy.corp:3128"
        for name, url in proxy_urls:  # the error names the variable, never its password
            try:
                parsed = parse_url(url)
            except LocationParseError:
                parsed = None
            if parsed is None or not parsed.host:
                raise ConfigError(
                    f"{name} is not a proxy URL {example}: percent-encode any of : / ? # @ in the "
                    "user or password"
                )
            if (parsed.scheme or "http").lower() not in _SUPPORTED_PROXY_SCHEMES:
                raise ConfigError(
                    f"{name} is a {parsed.scheme}:// proxy; target-pendo speaks to http:// and "
                    f"https:// proxies (CONNECT) only: set a proxy URL {example}"
                )
        network = cls(ca_bundle, ca_variable, proxy_urls)
        _ = network.ssl_context  # a bundle that is not PEM fails now, naming its variable
        return network

    # requests' `proxies` for a call to a URL: {} when none applies or NO_PROXY says so
    proxies = staticmethod(get_environ_proxies)

    def proxy(self, url: str) -> str | None:
        """The proxy a call to `url` goes through (with its credentials and scheme), if any."""
        proxy = select_proxy(url, self.proxies(url))
        return _with_scheme(proxy) if proxy else None

    def refuse_clear_text(self, url: str, setting: str) -> None:
        """Raise when a call to `url`, which carries a key, would reach a proxy unencrypted."""
        proxy = self.proxy(url)
        parts = urllib.parse.urlsplit(url)
        if proxy is not None and parts.scheme.lower() == "http":
            raise ConfigError(
                f"setting '{setting}' is a plain-http URL ({shown_url(url)}) and would go "
                f"through the proxy {shown_url(proxy)} with its key in clear text: use an "
                f"https URL, or add {parts.hostname} to NO_PROXY"
            )

    def secrets(self) -> list[str]:
        """The proxies' credentials, to redact wherever they could be echoed."""
        return [s for _, url in self.proxy_urls for s in url_secrets(url)]

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """Made once (loading costs milliseconds), shared by every session: it is thread-safe."""
        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=certifi.where())
        if self.ca_bundle is not None:
            where = "capath" if os.path.isdir(self.ca_bundle) else "cafile"
            try:
                context.load_verify_locations(**{where: self.ca_bundle})
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(
                    f"{self.ca_variable}={self.ca_bundle} could not be read as PEM "
                    f"certificates ({exc}): point it at your company's CA bundle"
                ) from None
        return context

    def trusted(self) -> str:
        extra = f", {self.ca_variable}={self.ca_bundle}" if self.ca_variable else ""
        return f"the system's certificate store, certifi's bundle{extra}"

    def adapter(self) -> HTTPAdapter:
        """One connection (a session serves one thread), this trust, no urllib3 retries."""
        return TrustingAdapter(self.ssl_context, pool_connections=1, pool_maxsize=1, max_retries=0)

    def session(self, adapter: BaseAdapter | None = None) -> requests.Session:
        """A session through `adapter` (by default this trust's); the caller passes `proxies()`."""
        session = requests.Session()
        session.trust_env = False  # no .netrc; proxies and CAs come from this object instead
        adapter = adapter or self.adapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def tls_failure(self, url: str, exc: BaseException) -> str:
        """One line for a TLS failure: what failed and what to set."""
        host = urllib.parse.urlsplit(url).hostname or "?"
        found = cause_of(exc, ssl.SSLError) or exc
        if isinstance(found, ssl.SSLCertVerificationError) and found.verify_message:
            reason = f"certificate verify failed: {found.verify_message}"
        elif isinstance(found, ssl.SSLError):
            reason = str(found.reason or found).lower().replace("_", " ")
        else:
            reason = type(exc).__name__
        via = self.proxy(url)
        through = f" through the proxy {shown_url(via)}" if via else ""
        return (
            f"TLS with {host}{through} failed ({reason}), which no retry mends: if a proxy or "
            f"gateway on your network re-signs https traffic, set REQUESTS_CA_BUNDLE to your "
            f"company's CA bundle (PEM); trusted now: {self.trusted()}"
        )

    def proxy_refusal(self, url: str, exc: BaseException) -> tuple[str, bool] | None:
        """(one line, whether retrying may help) for a proxy's refusal of CONNECT, else None."""
        prefix = "Tunnel connection failed: "  # urllib3's, then "407 Proxy Authentication ..."
        tunnel = (str(c) for c in _chain(exc) if isinstance(c, OSError))
        text = next((t[len(prefix) :].strip() for t in tunnel if t.startswith(prefix)), None)
        if text is None:
            return None
        proxy = self.proxy(url) or "?"
        host = urllib.parse.urlsplit(url).hostname or "?"
        status = text.split()[0] if text.split() else ""
        where = f"the proxy {shown_url(proxy)}"
        if status in ("408", "429") or status.startswith("5"):
            return f"{where} could not open a tunnel to {host} now ({text})", True
        if status in ("401", "407"):  # 407 is the standard; tinyproxy answers 401
            return (
                f"{where} refused its credentials (HTTP {status}) for {host}: check the user "
                "and password in HTTPS_PROXY (percent-encode special characters)",
                False,
            )
        return (
            f"{where} refused to open a tunnel to {host} ({text}): ask for {host}:443 to "
            "be allowed, or add it to NO_PROXY if it is reached directly",
            False,
        )


def _with_scheme(url: str) -> str:
    """A proxy URL as requests reads it: http:// when it names no scheme."""
    return url if "://" in url else f"http://{url}"


class TrustingAdapter(HTTPAdapter):
    """Verifies every https connection (direct, tunnelled, to an https proxy) with one context."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if host.get("scheme") == "https" and verify is not False:
            pool["ssl_context"] = self._context
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if verify is not False:  # every trusted CA is in the context already
            conn.ca_certs = None
            conn.ca_cert_dir = None

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs.setdefault("proxy_ssl_context", self._context)
        return super().proxy_manager_for(proxy, **proxy_kwargs)


# TLS errors of a broken connection (closed mid-way, a damaged record), not of a refusing peer:
# retried like a reset, in doubt.
_TRANSIENT_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
_TRANSIENT_TLS_REASONS = ("BAD_RECORD_MAC", "DECRYPTION_FAILED")


def is_tls_failure(exc: BaseException) -> bool:
    """A TLS failure no retry mends (a certificate that does not verify, a handshake refused),
    which happens before any byte of the request leaves."""
    found = cause_of(exc, ssl.SSLError)
    if found is None or isinstance(found, _TRANSIENT_TLS):
        return False
    reason = str(getattr(found, "reason", "") or "")
    return not any(r in reason or r in str(found) for r in _TRANSIENT_TLS_REASONS)


def cause_of(exc: BaseException, kind: type[E]) -> E | None:
    """The first `kind` in `exc`'s chain (requests wraps urllib3's errors, which wrap ssl's)."""
    return next((c for c in _chain(exc) if isinstance(c, kind)), None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) not in seen:
            seen.add(id(current))
            yield current
            held = ("reason", "original_error", "__cause__", "__context__")
            children = (*current.args, *(getattr(current, name, None) for name in held))
            stack += [c for c in children if isinstance(c, BaseException)]
