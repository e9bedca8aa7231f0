"""Keep secrets out of every text the target writes: logs, errors, rejects, call logs, reports.
Header values are never logged; this is the second line of defence for texts that might echo a
key. URLs are shown without credentials and query, since a proxy URL may carry a password.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"


class Redactor:
    """Replaces each known secret value (at least 4 characters long) with `***`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def value(self, value: object) -> object:
        """A copy of a JSON-like value, every secret masked in keys and strings at any depth."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def url_secrets(url: str | None) -> list[str]:
    """The credentials a URL carries (user, password, query values), to redact."""
    if not url:
        return []
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return []
    found = [p for p in (parts.username, parts.password) if p]
    found += [urllib.parse.unquote(p) for p in found]
    return found + [value for _, value in urllib.parse.parse_qsl(parts.query)]


def shown_url(url: str) -> str:
    """`url` without user, password, query or fragment (no scheme, as in proxy variables: http)."""
    if "://" not in url:
        url = f"http://{url}"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(unreadable URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_plain_factory = logging.getLogRecordFactory()


class RedactingRecordFactory:
    """The record factory that redacts: logging's own configuration is the one process-wide
    place for a run's redactor, since every thread and library logs through it."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = _plain_factory(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # a malformed call: let logging report it as it would
            return record
        # the call's own template and arguments stay readable for filters (logs.py)
        record.template, record.template_args = record.msg, record.args
        record.msg, record.args = self.redact(text), None
        return record


def redact_text(text: str) -> str:
    """`text` through logging's redactor, if any: for the CLI's last line, printed not logged."""
    factory = logging.getLogRecordFactory()
    return factory.redact(text) if isinstance(factory, RedactingRecordFactory) else text


def install_log_redaction(redact: Callable[[str], str]) -> None:
    """Redact every log record of the process when it is made: the formatted, redacted text
    becomes its `msg`, so no handler or formatter can print a key, not even one that reads
    `msg` without its arguments (the SDK's structured formatter does). Records are only made
    for enabled levels. Once per run, with every secret of its config; the latest run's wins."""
    logging.setLogRecordFactory(RedactingRecordFactory(redact))
