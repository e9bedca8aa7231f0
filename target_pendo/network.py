"""How this process reaches hosts outside: proxies and trusted CAs, as the environment says,
read once per run (`Network.from_environment`), the way a company configures every tool:

- proxies: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` (either case; `user:password@` for Basic
  auth) and `NO_PROXY`, as requests reads them. An https URL goes through an http proxy as a
  CONNECT tunnel: the proxy sees the host name, never the request, its key header or its body;
- trust: the system's certificate store (`truststore`: where a company installs its CA),
  certifi's bundle, and the file `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE` names, all at once.

`.netrc` credentials are never attached to a call (requests' `trust_env` is off): a Pendo call
carries its own key header and nothing else. A plain-http URL carrying a key never goes through
a proxy, which would read the key. Proxy credentials are secrets like the keys.

TLS and proxy failures are described here: the fix is in this environment, not in the target's
settings, so the message names the variable.
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
        for name, url in proxy_urls:
            _check_proxy_url(name, url)
        network = cls(ca_bundle, ca_variable, proxy_urls)
        _ = network.ssl_context  # a bundle that is not PEM fails now, naming its variable
        return network

    # --- proxies --------------------------------------------------------------------------------
    def proxies(self, url: str) -> dict[str, str]:
        """requests' `proxies` for a call to `url`: {} when none applies or NO_PROXY says so."""
        return get_environ_proxies(url)

    def proxy(self, url: str) -> str | None:
        """The proxy a call to `url` goes through, if any (with its credentials), with the
        scheme requests assumes when the variable has none."""
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

    # --- trust ----------------------------------------------------------------------------------
    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """Made once (loading the bundles costs milliseconds) and shared by every session of the
        run: an SSLContext is safe to use from several threads."""
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
        """What verifies a certificate, for messages."""
        extra = f", {self.ca_variable}={self.ca_bundle}" if self.ca_variable else ""
        return f"the system's certificate store, certifi's bundle{extra}"

    def adapter(self, **kwargs: Any) -> HTTPAdapter:
        """An HTTPAdapter verifying with this network's trust (`kwargs` go to HTTPAdapter)."""
        return TrustingAdapter(self.ssl_context, **kwargs)

    def session(self, adapter: BaseAdapter | None = None) -> requests.Session:
        """A session carrying its calls through `adapter` (by default one with this trust), with
        no `.netrc`; the caller passes `proxies()` per call."""
        session = requests.Session()
        session.trust_env = False  # no .netrc; proxies and CAs come from this object instead
        adapter = adapter or self.adapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    # --- what went wrong ------------------------------------------------------------------------
    def tls_failure(self, url: str, exc: BaseException) -> str:
        """One line for a TLS failure talking to `url`: what failed and what to set."""
        host = urllib.parse.urlsplit(url).hostname or "?"
        reason = _tls_reason(exc)
        via = self.proxy(url)
        through = f" through the proxy {shown_url(via)}" if via else ""
        return (
            f"TLS with {host}{through} failed ({reason}), which no retry mends: if a proxy or "
            f"gateway on your network re-signs https traffic, set REQUESTS_CA_BUNDLE to your "
            f"company's CA bundle (PEM); trusted now: {self.trusted()}"
        )

    def proxy_refusal(self, url: str, exc: BaseException) -> tuple[str, bool] | None:
        """For a proxy's answer to CONNECT: (one line, whether retrying may help); None when
        `exc` is not a proxy's refusal."""
        text = _tunnel_status(exc)
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


def _check_proxy_url(name: str, url: str) -> None:
    """A proxy URL requests can use, or a ConfigError naming its variable (never its value:
    it may hold a password)."""
    example = "such as http://user:password@proxy.corp:3128"
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


class TrustingAdapter(HTTPAdapter):
    """requests' HTTPAdapter verifying every https connection (direct, through a CONNECT
    tunnel, and to an https proxy) with one SSL context instead of certifi's file alone."""

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


# TLS errors of a connection that broke rather than of a peer that was refused: the peer
# closed it mid-handshake or mid-answer, or a record arrived damaged. Retried like a reset
# (possibly after the request left, so in doubt); a retry may well go through.
_TRANSIENT_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
_TRANSIENT_TLS_REASONS = ("BAD_RECORD_MAC", "DECRYPTION_FAILED")


def is_tls_failure(exc: BaseException) -> bool:
    """Whether a requests error is a TLS failure no retry mends: a certificate that does not
    verify (host name included) or a handshake the peer refused. These happen before any byte
    of the request leaves."""
    found = cause_of(exc, ssl.SSLError)
    if found is None or isinstance(found, _TRANSIENT_TLS):
        return False
    reason = str(getattr(found, "reason", "") or "")
    return not any(r in reason or r in str(found) for r in _TRANSIENT_TLS_REASONS)


def _tls_reason(exc: BaseException) -> str:
    found = cause_of(exc, ssl.SSLError)
    if isinstance(found, ssl.SSLCertVerificationError) and found.verify_message:
        return f"certificate verify failed: {found.verify_message}"
    if found is not None:
        return str(found.reason or found).lower().replace("_", " ")
    return type(exc).__name__


def _tunnel_status(exc: BaseException) -> str | None:
    """'407 Proxy Authentication Required' from urllib3's "Tunnel connection failed: ...";
    None for any other error."""
    prefix = "Tunnel connection failed: "
    for current in _chain(exc):
        if isinstance(current, OSError) and str(current).startswith(prefix):
            return str(current)[len(prefix) :].strip()
    return None


def cause_of(exc: BaseException, kind: type[E]) -> E | None:
    """The first `kind` in an exception's chain: its args, urllib3's reasons, causes and
    contexts (requests wraps urllib3's errors, which wrap the socket's or ssl's)."""
    return next((c for c in _chain(exc) if isinstance(c, kind)), None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it holds, each once."""
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
