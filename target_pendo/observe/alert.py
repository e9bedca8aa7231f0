"""`alert_webhook_url`: one Slack-format message (`{"text": ...}`) when a run failed, was stopped,
or rejected more than `max_rejected_fraction` of a stream's rows (docs/operating.md#alerting).

It never holds a key (the text is redacted) or row data (reasons as `report.alert_reason`
patterns, errors with quoted values masked). The webhook URL is a secret too (Slack's token is
its path): failures name only its scheme and host. Sent once, waited for at most
ALERT_TIMEOUT_SECONDS: a receiver down costs a warning, never the run's outcome or exit code.
"""

from __future__ import annotations

import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import requests

from target_pendo.network import Network, is_tls_failure
from target_pendo.observe.redact import url_secrets
from target_pendo.observe.report import alert_reason, mask_quoted_values
from target_pendo.observe.report_document import ReportDocument, read_report
from target_pendo.run.outcomes import RunStatus

ALERT_TIMEOUT_SECONDS = 5.0
MAX_REASONS = 3
MAX_STREAMS = 10
MAX_ERROR_CHARS = 300

log = logging.getLogger("target_pendo.observe.alert")


def webhook_secrets(url: str) -> list[str]:
    """The parts of a webhook URL to redact (its path is Slack's and Teams' token)."""
    parts = urllib.parse.urlsplit(url)
    found = [url, urllib.parse.urlunsplit((*parts[:3], "", "")), *url_secrets(url)]
    if len(parts.path) > 1:
        found.append(parts.path)
        found += [segment for segment in parts.path.split("/") if len(segment) >= 8]
    return found


def trigger(status: str, over_rejected: list[str]) -> str | None:
    if status in (RunStatus.FAILED, RunStatus.STOPPED):
        return status
    return "rejected" if over_rejected else None


def build_message(
    report: ReportDocument | Mapping[str, Any],
    *,
    why: str,
    over_rejected: list[str],
    max_rejected_fraction: float,
    report_path: str,
    error: BaseException | None,
    redact: Callable[[str], str],
    unsent_rows: int = 0,
    host: str | None = None,
) -> dict[str, str]:
    """The alert: Slack's `{"text": ...}` in a few lines of Slack markdown."""
    report = read_report(report) or ReportDocument()
    host = host or socket.gethostname()
    run_id = report.run_id or "?"
    if why == "failed":
        headline = "failed"
    elif why == "stopped":
        headline = f"was stopped by {report.signal or 'a signal'}"
    else:
        headline = (
            f"rejected more rows than max_rejected_fraction={max_rejected_fraction:g} in "
            f"{', '.join(over_rejected)}; every other row was delivered"
        )
    lines = [f"*target-pendo* run `{run_id}` on {host} {headline}"]
    if why == "failed":
        if report.error:
            message = mask_quoted_values(" ".join(report.error.split()))
        elif error is not None:
            message = f"unexpected {type(error).__name__}; see the run's log"
        else:
            message = "see the run's log"
        lines.append(f"Error: {message[:MAX_ERROR_CHARS]}")
    unsent = max(unsent_rows, report.unsent_rows)
    if why == "stopped" or unsent:
        lines.append(
            f"{unsent} row(s) read were not settled and stay unsent; the next run sends them"
        )
    streams = report.streams
    for name, c in list(streams.items())[:MAX_STREAMS]:
        extra = "".join(f", {part}" for part in c.extra_counts())
        lines.append(
            f"• {name} ({c.sync}): received {c.received}, sent {c.sent}, rejected {c.rejected}"
            f"{extra}"
        )
    if len(streams) > MAX_STREAMS:
        lines.append(f"• … and {len(streams) - MAX_STREAMS} more stream(s)")
    reasons = [
        (r.count, stream, alert_reason(r.pattern, r.field))
        for stream, rs in report.reject_reasons.items()
        for r in rs
    ]
    if reasons:
        reasons.sort(key=lambda r: -r[0])
        lines.append("Most frequent reject reasons:")
        lines += [f"• {s}: {text} ({n} row(s))" for n, s, text in reasons[:MAX_REASONS]]
    lines.append(f"Report: {report_path} on {host} (`target-pendo report {run_id}`)")
    return {"text": redact("\n".join(lines))}


def send(
    url: str,
    payload: dict[str, str],
    timeout: float | None = None,
    *,
    network: Network | None = None,
) -> bool:
    """POST the alert once through the run's `network` (proxies, CAs); True when answered 2xx
    within `timeout`. Never raises: a failure is a warning naming the webhook's host."""
    timeout = ALERT_TIMEOUT_SECONDS if timeout is None else timeout
    network = network or Network()
    parts = urllib.parse.urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname or '?'}"  # never the path: Slack's token
    outcome: dict[str, Any] = {}

    def post() -> None:
        try:
            with network.session() as session:
                response = session.post(
                    url,
                    json=payload,
                    timeout=(timeout, timeout),
                    allow_redirects=False,
                    proxies=network.proxies(url),
                )
            outcome["status"] = response.status_code
        except requests.ReadTimeout:
            outcome["timed_out"] = True  # the same as the join below giving up first
        except requests.RequestException as exc:
            # its own text would show the URL's path; these name the host alone
            refusal = network.proxy_refusal(url, exc)
            if is_tls_failure(exc):
                outcome["error"] = network.tls_failure(url, exc)
            elif refusal is not None:
                outcome["error"] = refusal[0]
            else:
                outcome["error"] = type(exc).__name__
        except Exception as exc:  # never the run's problem
            outcome["error"] = f"unexpected {type(exc).__name__}"

    thread = threading.Thread(target=post, name="alert", daemon=True)
    thread.start()
    thread.join(timeout)
    status = outcome.get("status", 0)
    if thread.is_alive() or outcome.get("timed_out"):
        problem = (
            f"got no answer within {timeout:g} s; not waiting for it. The run's outcome is "
            "unchanged."
        )
    elif "error" in outcome:
        problem = (
            f"was not delivered: {outcome['error']}. The run's outcome is unchanged; check the "
            "URL and that this machine may reach it."
        )
    elif not 200 <= status < 300:
        problem = (
            f"was answered HTTP {status}, not 2xx: check that the webhook still exists. The "
            "run's outcome is unchanged."
        )
    else:
        log.info("Alert sent to %s.", where)
        return True
    log.warning("The alert to %s (setting 'alert_webhook_url') %s", where, problem)
    return False
