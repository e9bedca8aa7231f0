"""network.py: proxies and trust from the environment, and the one line for each failure."""

from __future__ import annotations

import pytest
import requests
import trustme

from pendo_emulator import DEMO_INTEGRATION_KEY, Emulator
from target_pendo.errors import ConfigError
from target_pendo.network import Network, is_tls_failure

from ..netenv import NETWORK_VARIABLES

API = "https://app.pendo.io"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in NETWORK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_https_proxy_applies_to_pendo_unless_no_proxy_names_it(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://u:pw@proxy.corp:3128")
    network = Network.from_environment()
    assert network.proxy(API) == "http://u:pw@proxy.corp:3128"
    assert network.proxy("http://127.0.0.1:8765") is None  # HTTPS_PROXY is for https only
    monkeypatch.setenv("NO_PROXY", "localhost,.pendo.io")
    assert network.proxy(API) is None
    assert network.proxy("https://hooks.slack.com/services/x") == "http://u:pw@proxy.corp:3128"


def test_all_proxy_and_lower_case_variables_count(monkeypatch):
    monkeypatch.setenv("all_proxy", "http://proxy.corp:8080")
    assert Network.from_environment().proxy(API) == "http://proxy.corp:8080"


def test_proxy_credentials_are_secrets_with_or_without_a_scheme(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://etl:p%40ss-w0rd@proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "etl2:second-pw@proxy.corp:3128")
    secrets = Network.from_environment().secrets()
    assert "p%40ss-w0rd" in secrets
    assert "p@ss-w0rd" in secrets
    assert "second-pw" in secrets


def test_a_socks_proxy_is_refused_naming_its_variable(monkeypatch):
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy.corp:1080")
    with pytest.raises(ConfigError, match=r"ALL_PROXY is a socks5:// proxy"):
        Network.from_environment()


def test_a_ca_bundle_that_is_missing_or_not_pem_names_its_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match=r"CURL_CA_BUNDLE=.*nope\.pem names no file"):
        Network.from_environment()
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(junk))  # first of the two wins
    with pytest.raises(ConfigError, match=r"REQUESTS_CA_BUNDLE=.*could not be read as PEM"):
        Network.from_environment()


def test_a_plain_http_url_through_a_proxy_is_refused(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:3128")
    network = Network.from_environment()
    with pytest.raises(ConfigError, match=r"setting 'api_url' is a plain-http URL"):
        network.refuse_clear_text("http://pendo-gateway.corp/", "api_url")
    network.refuse_clear_text(API, "api_url")  # https: a CONNECT tunnel
    monkeypatch.setenv("NO_PROXY", "pendo-gateway.corp")
    network.refuse_clear_text("http://pendo-gateway.corp/", "api_url")


def test_the_ca_variable_is_trusted_beside_the_system_store(monkeypatch, tmp_path):
    """A certificate from the company's CA verifies once the variable names it, and the
    failure before that is told apart as TLS, with the reason."""
    with Emulator(tls_names=()) as emulator:
        url = f"{emulator.url}/api/v1/token/verify"
        headers = {"x-pendo-integration-key": DEMO_INTEGRATION_KEY}
        session = Network.from_environment().session()
        with session, pytest.raises(requests.RequestException) as caught:
            session.get(url, headers=headers, timeout=5)
        assert is_tls_failure(caught.value)
        line = Network().tls_failure(url, caught.value)
        assert "TLS with 127.0.0.1 failed (certificate verify failed:" in line
        assert "REQUESTS_CA_BUNDLE" in line
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.write_ca(str(tmp_path / "ca.pem")))
        network = Network.from_environment()
        with network.session() as session:
            assert session.get(url, headers=headers, timeout=5).status_code == 200
        assert "REQUESTS_CA_BUNDLE=" in network.trusted()


def test_another_ca_does_not_verify(monkeypatch, tmp_path):
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    session = Network.from_environment().session()
    with Emulator(tls_names=()) as emulator, session, pytest.raises(requests.exceptions.SSLError):
        session.get(f"{emulator.url}/api/v1/token/verify", timeout=5)


def test_a_proxys_refusal_is_told_by_status():
    network = Network()
    url = API + "/api/v1/token/verify"

    def failure(text: str) -> Exception:
        return requests.exceptions.ProxyError(OSError(f"Tunnel connection failed: {text}"))

    text, retry = network.proxy_refusal(url, failure("407 Proxy Authentication Required"))
    assert "refused its credentials (HTTP 407)" in text
    assert not retry
    text, retry = network.proxy_refusal(url, failure("403 Access violation"))
    assert "refused to open a tunnel to app.pendo.io" in text
    assert not retry
    assert network.proxy_refusal(url, failure("502 Bad Gateway"))[1] is True
    assert network.proxy_refusal(url, failure("429 Too Many Requests"))[1] is True
    assert network.proxy_refusal(url, requests.ConnectionError("reset")) is None


@pytest.mark.parametrize(
    "value",
    ["http://etl:p#ss/w0rd@proxy.corp:3128", "http://:3128", "http://etl:pw@[::1"],
)
def test_a_proxy_url_requests_cannot_use_is_refused_without_echoing_it(monkeypatch, value):
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(ConfigError, match=r"HTTPS_PROXY is not a proxy URL") as caught:
        Network.from_environment()
    assert "etl" not in str(caught.value)


def test_a_proxy_without_a_scheme_is_shown_without_its_password(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "etl:S3cret-pw@proxy.corp:3128")
    network = Network.from_environment()
    assert network.proxy("http://pendo-gateway.corp/") == "http://etl:S3cret-pw@proxy.corp:3128"
    with pytest.raises(ConfigError) as caught:
        network.refuse_clear_text("http://pendo-gateway.corp/", "api_url")
    assert "S3cret-pw" not in str(caught.value)
    assert "http://proxy.corp:3128" in str(caught.value)


def test_a_tls_connection_that_breaks_is_retried_not_refused():
    """A peer that closes mid-handshake or sends a damaged record: transient, unlike a
    certificate that does not verify."""
    import ssl

    eof = requests.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    assert not is_tls_failure(eof)
    mac = ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed")
    assert not is_tls_failure(requests.exceptions.SSLError(mac))
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert is_tls_failure(requests.exceptions.SSLError(verify))
