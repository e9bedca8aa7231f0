"""Keep secrets out of every text the target writes: logs, errors, rejects, call logs.

Header values are never logged at all; this is the second line of defence for texts that come
back from Pendo or from exceptions and might echo a key.
"""

from __future__ import annotations

from collections.abc import Iterable

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
