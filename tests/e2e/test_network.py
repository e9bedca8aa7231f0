"""The target as a company runs it: the default config (no `api_url`: Pendo's real host names
over https) on a worker that reaches the internet only through a CONNECT proxy with Basic auth,
or directly with NO_PROXY, trusting a CA it is told of. Pendo's names resolve to the TLS
emulator (tests/netenv.py); the target is the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator

from ..netenv import (
    PROXY_PASSWORD,
    TinyProxy,
    free_loopback,
    hosts_file,
    network_env,
    require_namespaces,
    with_hosts,
)
from ..singer import TARGET_CMD, lines_to_text, record, schema, state

US_HOSTS = ("app.pendo.io", "data.pendo.io")
EU_HOSTS = ("app.eu.pendo.io", "data.eu.pendo.io")
EVENTS = "product_events"
USERS = "crm_users"
WEBHOOK_PATH = "/services/T0NET/B0NET/xoxNetworkWebhookToken9"


class Site:
    """A TLS emulator at Pendo's names, on a loopback address of its own, port 443."""

    def __init__(self, folder: Path, names: tuple[str, ...], cert_names: tuple[str, ...]):
        require_namespaces()
        self.address = free_loopback()
        self.emulator = Emulator(host=self.address, port=443, tls_names=cert_names).start()
        self.emulator.seed("visitor", group="custom", fields={"plan": "string"})
        self.ca = self.emulator.write_ca(str(folder / "emulator-ca.pem"))
        self.hosts = hosts_file(folder, self.address, names)

    def stop(self) -> None:
        self.emulator.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    names = (*US_HOSTS, *EU_HOSTS, "hooks.example.test")
    s = Site(tmp_path, names, names)
    yield s
    s.stop()


@pytest.fixture
def proxy(site: Site) -> Iterator[TinyProxy]:
    with TinyProxy(site.hosts) as p:
        yield p


def config(tmp_path: Path, **extra: object) -> dict:
    """The default config a user writes: keys, streams, no api_url."""
    return {
        "track_event_secret": DEMO_TRACK_SECRET,
        "integration_key": DEMO_INTEGRATION_KEY,
        "state_dir": str(tmp_path / "state"),
        "max_rejected_fraction": 1,
        "streams": {
            EVENTS: {
                "event_name_column": "event",
                "visitor_id_column": "user_id",
                "timestamp_column": "occurred_at",
            },
            USERS: {"sync": "visitor", "id_column": "id", "custom_fields": {"plan": "plan"}},
        },
        **extra,
    }


def sync_input(events: int = 5) -> list[str]:
    lines = [schema(EVENTS)]
    lines += [
        record(
            EVENTS,
            {"id": i, "user_id": f"u-{i}", "event": "Exported", "occurred_at": _recent()},
        )
        for i in range(events)
    ]
    users_schema = {"id": {"type": "string"}, "plan": {"type": ["string", "null"]}}
    lines += [schema(USERS, users_schema), record(USERS, {"id": "v-1", "plan": "pro"})]
    lines.append(state({"bookmarks": {EVENTS: {"id": events}}}))
    return lines


def _recent() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))


def run(
    tmp_path: Path,
    cfg: dict,
    env: dict[str, str],
    *,
    hosts: Path | None = None,
    lines: list[str] | None = None,
    args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    command = [*TARGET_CMD, "--config", str(path), *args]
    if hosts is not None:  # the target resolves Pendo's names itself (no proxy)
        command = with_hosts(hosts, command)
    return subprocess.run(
        command,
        input=lines_to_text(sync_input() if lines is None else lines),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def written_states(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def files_text(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def assert_no_secret(result: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    for secret in (PROXY_PASSWORD, DEMO_TRACK_SECRET, DEMO_INTEGRATION_KEY):
        assert secret not in result.stdout
        assert secret not in result.stderr
        assert secret not in files_text(tmp_path / "state")


def test_default_hosts_through_a_connect_proxy_with_basic_auth(site, proxy, tmp_path):
    """The worker cannot resolve Pendo's names itself; only the proxy can. Every call goes
    through a CONNECT tunnel, verified with the CA from REQUESTS_CA_BUNDLE."""
    site.emulator.seed("visitor", ["v-1"])
    env = network_env(HTTPS_PROXY=proxy.url(), REQUESTS_CA_BUNDLE=site.ca)
    result = run(tmp_path, {**config(tmp_path), "call_log": True}, env)
    assert result.returncode == 0, result.stderr
    assert len(site.emulator.events()) == 5
    assert site.emulator.objects("visitor")["v-1"]["custom"]["plan"] == "pro"
    assert written_states(result)[-1] == {"bookmarks": {EVENTS: {"id": 5}}}
    connects = set(proxy.connects())
    assert {"data.pendo.io:443", "app.pendo.io:443"} <= connects, proxy.log_text()
    received = site.emulator.received()
    assert received
    assert all("Authorization" not in r["headers"] for r in received)
    assert_no_secret(result, tmp_path)


def test_answers_broken_off_behind_the_proxy_are_sent_again_in_doubt(site, proxy, tmp_path):
    """Over https through the proxy, with a round trip of 150 ms, Pendo handles a Track call
    and a metadata call but their answers break off mid-body: both are retried as in doubt
    (not taken for a TLS failure), the run ends well, at most one event twice."""
    site.emulator.seed("visitor", ["v-1"])
    site.emulator.latency = 0.15
    site.emulator.inject(route="track", cut=True, times=1, after=1)
    site.emulator.inject(route="metadata", cut=True, times=1)
    env = network_env(HTTPS_PROXY=proxy.url(), REQUESTS_CA_BUNDLE=site.ca)
    result = run(tmp_path, config(tmp_path), env)
    assert result.returncode == 0, result.stderr
    events = [e["visitorId"] for e in site.emulator.events()]
    assert set(events) == {f"u-{i}" for i in range(5)}
    assert len(events) <= 6
    assert site.emulator.objects("visitor")["v-1"]["custom"]["plan"] == "pro"
    assert written_states(result)[-1] == {"bookmarks": {EVENTS: {"id": 5}}}
    assert_no_secret(result, tmp_path)


def test_no_proxy_sends_pendo_calls_directly(site, tmp_path):
    """NO_PROXY names Pendo: the calls go straight to it, though HTTPS_PROXY names a proxy
    that does not exist."""
    env = network_env(
        HTTPS_PROXY="http://nobody:pw@127.0.0.1:9", NO_PROXY=".pendo.io", CURL_CA_BUNDLE=site.ca
    )
    result = run(tmp_path, config(tmp_path), env, hosts=site.hosts)
    assert result.returncode == 0, result.stderr
    assert len(site.emulator.events()) == 5


def test_region_eu_reaches_the_eu_hosts(site, proxy, tmp_path):
    env = network_env(HTTPS_PROXY=proxy.url(), REQUESTS_CA_BUNDLE=site.ca)
    result = run(tmp_path, config(tmp_path, region="eu"), env)
    assert result.returncode == 0, result.stderr
    assert len(site.emulator.events()) == 5
    assert {"data.eu.pendo.io:443", "app.eu.pendo.io:443"} <= set(proxy.connects())
    assert not {"data.pendo.io:443", "app.pendo.io:443"} & set(proxy.connects())


def test_a_certificate_that_does_not_verify_stops_at_once_then_a_rerun_delivers_once(
    site, proxy, tmp_path
):
    """A CA the certificate is not from (the company's bundle not set): one line naming the
    host and REQUESTS_CA_BUNDLE within seconds, not 300 s of retries; nothing marked sent, no
    STATE. With the CA set, the rerun delivers every row once."""
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    env = network_env(HTTPS_PROXY=proxy.url(), REQUESTS_CA_BUNDLE=str(other_ca))
    started = time.monotonic()
    result = run(tmp_path, config(tmp_path), env)
    assert time.monotonic() - started < 30  # max_retry_seconds is 300 by default
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "target-pendo: error:" in line]
    assert len(errors) == 1, result.stderr
    assert "TLS with data.pendo.io" in errors[0] or "TLS with app.pendo.io" in errors[0]
    assert "certificate verify failed" in errors[0]
    assert "REQUESTS_CA_BUNDLE" in errors[0]
    assert "Traceback" not in result.stderr
    assert "Retrying" not in result.stderr
    assert written_states(result) == []
    assert site.emulator.events() == []
    assert_no_secret(result, tmp_path)

    env["REQUESTS_CA_BUNDLE"] = site.ca
    again = run(tmp_path, config(tmp_path), env)
    assert again.returncode == 0, again.stderr
    names = sorted(e["visitorId"] for e in site.emulator.events())
    assert names == [f"u-{i}" for i in range(5)]


def test_a_host_name_the_certificate_does_not_name_stops_at_once(tmp_path):
    """The certificate names app.pendo.io but not data.pendo.io (a gateway's certificate for
    the wrong host): one line saying so."""
    s = Site(tmp_path, US_HOSTS, ("app.pendo.io",))
    try:
        with TinyProxy(s.hosts) as p:
            env = network_env(HTTPS_PROXY=p.url(), REQUESTS_CA_BUNDLE=s.ca)
            result = run(tmp_path, config(tmp_path), env)
    finally:
        s.stop()
    assert result.returncode == 1
    assert "TLS with data.pendo.io" in result.stderr
    assert "Hostname mismatch" in result.stderr
    assert written_states(result) == []


def test_a_proxy_refusing_the_password_is_one_line_without_it(site, proxy, tmp_path):
    env = network_env(HTTPS_PROXY=proxy.url(password="wr0ng-pr0xy-pw"), REQUESTS_CA_BUNDLE=site.ca)
    result = run(tmp_path, config(tmp_path), env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "target-pendo: error:" in line]
    assert len(errors) == 1, result.stderr
    assert "refused its credentials" in errors[0]
    assert "HTTPS_PROXY" in errors[0]
    assert "wr0ng-pr0xy-pw" not in result.stderr + files_text(tmp_path / "state")
    assert site.emulator.events() == []


def test_a_plain_http_url_is_not_sent_through_a_proxy_with_its_key(tmp_path, emulator):
    """The key would travel to the proxy in clear text: refused before any call, unless
    NO_PROXY names the host."""
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    cfg = {**config(tmp_path), "api_url": emulator.url}
    env = network_env(HTTP_PROXY="http://u:pw@127.0.0.1:9")
    result = run(tmp_path, cfg, env)
    assert result.returncode == 1
    assert "plain-http" in result.stderr
    assert "NO_PROXY" in result.stderr
    assert emulator.events() == []
    env["NO_PROXY"] = "127.0.0.1"
    assert run(tmp_path, cfg, env).returncode == 0
    assert len(emulator.events()) == 5


def test_check_goes_through_the_proxy_and_names_a_tls_failure(site, proxy, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(tmp_path)))
    command = [*TARGET_CMD, "--config", str(path), "check"]
    env = network_env(HTTPS_PROXY=proxy.url(), REQUESTS_CA_BUNDLE=site.ca)
    ok = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "integration_key: ok" in ok.stdout
    assert "track_event_secret: ok" in ok.stdout
    env.pop("REQUESTS_CA_BUNDLE")
    started = time.monotonic()
    bad = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert time.monotonic() - started < 20
    assert bad.returncode == 1
    assert "certificate verify failed" in bad.stdout
    assert PROXY_PASSWORD not in bad.stdout + bad.stderr


def test_the_alert_webhook_goes_through_the_proxy(site, proxy, tmp_path):
    """The webhook is reached the way Pendo is: through the proxy, trusting the same CA."""
    webhook = f"https://hooks.example.test{WEBHOOK_PATH}"
    env = network_env(HTTPS_PROXY=proxy.url(), REQUESTS_CA_BUNDLE=site.ca)
    cfg = config(tmp_path, alert_webhook_url=webhook, track_event_secret="wrong-secret-1234")
    result = run(tmp_path, cfg, env)
    assert result.returncode == 1  # the Track secret is refused: the run fails and alerts
    assert "Alert sent" in result.stderr or "answered HTTP 404" in result.stderr, result.stderr
    assert "hooks.example.test:443" in proxy.connects()
    posted = [r for r in site.emulator.received() if r["path"] == WEBHOOK_PATH]
    assert len(posted) == 1
    assert "xoxNetworkWebhookToken9" not in result.stderr
