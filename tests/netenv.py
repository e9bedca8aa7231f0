"""A company's network for the tests: a real CONNECT proxy with Basic auth (tinyproxy, from the
machine's package), and Pendo's production host names resolving to the TLS emulator.

Host names: as root, `unshare -m` gives one process a private mount table in which a hosts
file of the test's is bind-mounted over /etc/hosts; only that process (the proxy, or the
target when it reaches Pendo directly) sees `app.pendo.io` at the emulator. Each test binds
its emulator to its own loopback address (127.0.0.0/8 is all loopback) on port 443, the
port an https URL without one means, so tests running side by side never meet.

Without tinyproxy, unshare or root these tests are skipped locally, but fail under CI
(CI=true), where .ci/run installs tinyproxy.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

PROXY_USER = "etl-worker"
PROXY_PASSWORD = "pr0xy-S3cret-pw"
# Every variable that decides proxies and trust, removed before a test sets its own.
NETWORK_VARIABLES = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (.ci/run installs it)")
    pytest.skip(what)


def require_namespaces() -> None:
    """Skip (fail under CI) where a process cannot get hosts of its own."""
    if os.geteuid() != 0:
        _missing("mapping Pendo's host names needs root (unshare -m, port 443)")
    if shutil.which("unshare") is None:
        _missing("unshare not found (util-linux)")


def free_loopback() -> str:
    """A loopback address whose port 443 is free: one per test, so tests can run at once."""
    for _ in range(50):
        address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((address, 443))
            except OSError:
                continue
            return address
    raise RuntimeError("no free loopback address with port 443")


def network_env(**variables: str) -> dict[str, str]:
    """os.environ without any proxy or CA variable (either case), then `variables`."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in NETWORK_VARIABLES}
    env.update(variables)
    return env


def hosts_file(folder: Path, address: str, names: Iterable[str]) -> Path:
    path = folder / "hosts"
    lines = ["127.0.0.1 localhost", *(f"{address} {name}" for name in names)]
    path.write_text("\n".join(lines) + "\n")
    return path


def with_hosts(hosts: Path, command: list[str]) -> list[str]:
    """`command` in a private mount table where /etc/hosts is `hosts`."""
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(hosts), *command]


class TinyProxy:
    """tinyproxy on a free port, asking for Basic auth, resolving names through `hosts`."""

    def __init__(self, hosts: Path | None = None, *, connect_ports: Iterable[int] = ()) -> None:
        binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not os.path.exists(binary):
            _missing("tinyproxy not found (apt-get install tinyproxy)")
        self.root = Path(tempfile.mkdtemp(prefix="target-pendo-proxy-"))
        self.root.chmod(0o777)  # tinyproxy may drop to another user for its log
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = self.root / "log"
        config = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            "MaxClients 100",
            f"BasicAuth {PROXY_USER} {PROXY_PASSWORD}",
            f'LogFile "{self.log}"',
            "LogLevel Connect",
            f'PidFile "{self.root / "pid"}"',
            *(f"ConnectPort {p}" for p in connect_ports),
        ]
        (self.root / "tinyproxy.conf").write_text("\n".join(config) + "\n")
        command = [binary, "-d", "-c", str(self.root / "tinyproxy.conf")]
        if hosts is not None:
            command = with_hosts(hosts, command)
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tinyproxy did not start: {self.log_text()}")

    def url(self, user: str = PROXY_USER, password: str = PROXY_PASSWORD) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def connects(self) -> list[str]:
        """The `host:port` of each CONNECT the proxy was asked for."""
        found = []
        for line in self.log_text().splitlines():
            if "Request (file descriptor" in line and ": CONNECT " in line:
                found.append(line.split(": CONNECT ", 1)[1].split()[0])
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TinyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
