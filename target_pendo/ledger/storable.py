"""Text the ledger's database can store: what a sink must reject before a row reaches the
ledger, and text for people (a reason, a stream name) escaped so that it cannot crash a commit."""

from __future__ import annotations

import re

MAX_KEY_CHARS = 2048  # row_state.row_key VARCHAR(2048): PostgreSQL enforces it

_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable_reason(text: str, *, max_chars: int | None = None) -> str | None:
    """Why `text` (a row key, stream name or reason) cannot be stored in the ledger, or None.
    PostgreSQL text cannot hold NUL, and no driver can encode a lone surrogate: rejected on both
    backends alike, so that a ledger moved from SQLite to PostgreSQL keeps working."""
    if "\x00" in text:
        return "it contains a NUL character (\\x00), which the ledger's database cannot store"
    if not text.isascii() and (match := _SURROGATE.search(text)):
        return (
            f"it contains a lone surrogate (U+{ord(match.group()):04X}), which is not "
            "valid Unicode text and cannot be stored"
        )
    if max_chars is not None and len(text) > max_chars:
        return f"it is {len(text)} characters long, more than the {max_chars} the ledger stores"
    return None


def escaped(text: str) -> str:
    """`text` with NUL and lone surrogates written as escapes (`\\x00`, `\\ud800`)."""
    text = text.replace("\x00", "\\x00")
    if not text.isascii() and _SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
