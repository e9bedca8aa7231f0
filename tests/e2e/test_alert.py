"""`alert_webhook_url`: one Slack-format JSON message for a run that failed, was stopped, or
rejected too much; never a key or a row value in it; never in the way of the run, whether the
receiver answers, is down, or is slow. The receiver is a tiny http.server in the test."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET
from target_pendo.config import parse_settings
from target_pendo.errors import ConfigError, PendoAuthError, RejectedRowsAlert
from target_pendo.observe import alert

from ..singer import record, run_target, schema, state
from .test_progress import FeedingCLI

STREAM = "events"
TOKEN = "T0ALERTS/B0ALERTS/xoxSecretWebhookToken42"
WRONG_KEY = "wrong-track-secret-777"
ROW_VALUE = "private-value-31/02/2026"


class Receiver:
    """Collects POSTed JSON bodies; answers `status` after `delay` seconds."""

    def __init__(self, delay: float = 0.0, status: int = 200) -> None:
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(body))
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"

    def texts(self) -> list[str]:
        return [b["text"] for b in self.bodies]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def config(base: dict, webhook: str, **extra: Any) -> dict:
    spec = {"event_name": "Alert Test", "visitor_id_column": "user_id"}
    return {**base, "streams": {STREAM: spec}, "alert_webhook_url": webhook, **extra}


def rows(n: int, missing: set[int] = frozenset(), start: int = 0) -> list[str]:
    lines = [schema(STREAM)]
    for i in range(start, start + n):
        user = None if i in missing else f"u-{i}"
        lines.append(record(STREAM, {"id": i, "user_id": user, "plan": ROW_VALUE}))
    return [*lines, state({"n": n})]


def assert_nothing_secret(text: str) -> None:
    for secret in (DEMO_TRACK_SECRET, DEMO_INTEGRATION_KEY, WRONG_KEY, TOKEN, ROW_VALUE, "u-1"):
        assert secret not in text


def test_a_failed_run_alerts_once(emulator, base_config, receiver):
    cfg = config(base_config, receiver.url, track_event_secret=WRONG_KEY)
    with pytest.raises(PendoAuthError):
        run_target(cfg, rows(3))
    assert len(receiver.bodies) == 1
    (body,) = receiver.bodies
    assert list(body) == ["text"]  # Slack's incoming-webhook format, nothing else
    text = body["text"]
    first, *rest = text.splitlines()
    assert first.startswith("*target-pendo* run `")
    assert first.endswith(" failed")
    assert "Error: Pendo refused the key in setting 'track_event_secret'" in text
    assert f"• {STREAM} (events): received 3, sent 0, rejected 0" in text
    assert "3 row(s) read were not settled and stay unsent; the next run sends them" in text
    (report_line,) = [x for x in rest if x.startswith("Report: ")]
    assert "/reports/run-" in report_line
    assert receiver.paths == [f"/services/{TOKEN}"]
    assert_nothing_secret(text)


def test_rejects_over_the_fraction_alert_with_reasons_but_no_values(
    emulator, base_config, receiver
):
    cfg = config(base_config, receiver.url, max_rejected_fraction=0.05)
    cfg["streams"][STREAM]["timestamp_column"] = "plan"  # every value of 'plan' is unusable
    with pytest.raises(RejectedRowsAlert):
        run_target(cfg, rows(10, missing={1, 2}))
    (text,) = receiver.texts()
    assert "rejected more rows than max_rejected_fraction=0.05 in 'events' (10 of 10)" in text
    assert "Most frequent reject reasons:" in text
    assert f"• {STREAM}: timestamp column 'plan': '…' is not an ISO 8601 date-time" in text
    assert "(8 row(s))" in text
    assert f"• {STREAM}: 'user_id' is missing or null (2 row(s))" in text
    assert_nothing_secret(text)


def test_a_good_run_and_a_dry_run_send_nothing(emulator, base_config, receiver, caplog):
    caplog.set_level(logging.INFO)
    run_target(config(base_config, receiver.url), rows(5))
    cfg = config(base_config, receiver.url, max_rejected_fraction=0.05, dry_run=True)
    with pytest.raises(RejectedRowsAlert):
        run_target(cfg, rows(5, missing={100, 101}, start=100))
    assert receiver.bodies == []
    assert "Dry run: no alert sent to the webhook (it sends nothing)." in caplog.messages


def test_a_stop_on_sigterm_alerts(emulator, base_config, receiver, tmp_path):
    cli = FeedingCLI(config(base_config, receiver.url), tmp_path)
    try:
        cli.send(rows(4)[:-1])  # no STATE: the rows stay held in the batch
        cli.wait_for("held for the next batch")
        cli.proc.send_signal(signal.SIGTERM)
        assert cli.wait(30) == 143
    finally:
        if cli.proc.poll() is None:
            cli.proc.kill()
    (text,) = receiver.texts()
    assert text.splitlines()[0].endswith("was stopped by SIGTERM")
    assert "4 row(s) read were not settled and stay unsent; the next run sends them" in text
    assert "Alert sent to http://127.0.0.1." in cli.stderr
    assert_nothing_secret(text + cli.stderr)


def test_a_receiver_that_is_down_costs_a_warning_only(emulator, base_config, caplog):
    down = Receiver()
    url = down.url
    down.stop()  # nothing listens there any more
    cfg = config(base_config, url, track_event_secret=WRONG_KEY)
    started = time.monotonic()
    with pytest.raises(PendoAuthError):  # the run's own outcome, unchanged
        run_target(cfg, rows(3))
    assert time.monotonic() - started < alert.ALERT_TIMEOUT_SECONDS
    (warning,) = [r for r in caplog.records if r.name == "target_pendo.observe.alert"]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().startswith(
        "The alert to http://127.0.0.1 (setting 'alert_webhook_url') was not delivered: "
        "ConnectionError."
    )
    assert TOKEN not in caplog.text


def test_a_slow_receiver_is_not_waited_for(emulator, base_config, caplog, monkeypatch):
    monkeypatch.setattr(alert, "ALERT_TIMEOUT_SECONDS", 0.5)
    slow = Receiver(delay=10)
    try:
        cfg = config(base_config, slow.url, track_event_secret=WRONG_KEY)
        started = time.monotonic()
        with pytest.raises(PendoAuthError):
            run_target(cfg, rows(3))
        took = time.monotonic() - started
    finally:
        slow.stop()
    assert took < 6, took  # waited for, it would have taken 10 s more
    assert len(slow.bodies) == 1  # it was sent, once
    assert any("got no answer within 0.5 s" in m for m in caplog.messages)


def test_a_receiver_answering_an_error_is_a_warning(emulator, base_config, caplog):
    gone = Receiver(status=404)
    try:
        with pytest.raises(PendoAuthError):
            run_target(config(base_config, gone.url, track_event_secret=WRONG_KEY), rows(2))
    finally:
        gone.stop()
    assert any("was answered HTTP 404, not 2xx" in m for m in caplog.messages)


def test_the_webhook_url_never_reaches_the_logs(emulator, base_config, receiver, tmp_path):
    """At DEBUG urllib3 logs the path it posts to: Slack's token is in that path."""
    cfg = config(base_config, receiver.url, track_event_secret=WRONG_KEY)
    cli = FeedingCLI(cfg, tmp_path, env={"TARGET_PENDO_LOGLEVEL": "DEBUG"})
    cli.send(rows(2))
    cli.close_stdin()
    assert cli.wait() == 1
    assert len(receiver.bodies) == 1
    assert TOKEN not in cli.stderr
    assert "xoxSecretWebhookToken42" not in cli.stderr
    assert '"POST *** HTTP/1.1" 200' in cli.stderr  # urllib3's line, path redacted


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/services/" + TOKEN, "plain http is allowed only to a loopback"),
        ("ftp://hooks.example.com/" + TOKEN, "must be an https:// URL with a host"),
        ("https://hooks.example.com:99999/" + TOKEN, "bad host or port"),
    ],
)
def test_a_bad_webhook_url_is_refused_without_showing_it(url, why):
    with pytest.raises(ConfigError) as caught:
        parse_settings({"alert_webhook_url": url})
    assert why in str(caught.value)
    assert TOKEN not in str(caught.value)
