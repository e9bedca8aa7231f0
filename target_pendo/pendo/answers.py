"""The client's typed answers, and what Pendo's 200 to a bulk metadata write proves, row by row.
The contract is sure of `total`, `updated`, `failed` and `missing` [T]; `errors` exists [T], but
its entries' shape and whether `failed = len(missing) + len(errors)` are unknown [I]. So failures
no entry ties to an id are *untied*, and the rows they may belong to *unresolved*: never
recorded as sent, found by bisecting the call (``sinks/split.py``).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Keys under which an `errors` entry may carry the object id, most specific first.
_ID_KEYS = ("visitorId", "accountId", "parentAccountId", "id")
_TEXT_KEYS = ("error", "message", "reason", "detail")
MAX_REASON = 500


@dataclass(frozen=True)
class MetadataAnswer:
    """A 200 answer carrying `updated` or `failed`; None for a count it lacks."""

    total: int | None
    updated: int | None
    failed: int | None
    missing: frozenset[str]
    errors: tuple[tuple[str | None, str], ...]  # (id named by the entry or None, text)

    @classmethod
    def parse(cls, body: bytes | str, redact: Callable[[str], str]) -> MetadataAnswer | None:
        """Pendo's answer, or None when the body is not the JSON object Pendo sends."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        total, updated, failed = (_count(data.get(key)) for key in ("total", "updated", "failed"))
        if updated is None and failed is None:
            return None  # `{}` or a look-alike: nothing says how many rows were updated
        missing = frozenset(str(i) for i in _as_list(data.get("missing")) if _is_id(i))
        errors = tuple(_error_entry(e, redact) for e in _as_list(data.get("errors")))
        return cls(total, updated, failed, missing, errors)


@dataclass(frozen=True)
class Verdict:
    """The fate of each id of one call, as far as Pendo's answer proves it."""

    confirmed: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    failed: dict[str, str] = field(default_factory=dict)  # id -> Pendo's reason
    unresolved: tuple[str, ...] = ()  # ids among which `untied` rows failed
    untied: int = 0
    untied_reason: str = ""


def reconcile(answer: MetadataAnswer, ids: Sequence[str]) -> Verdict:
    """Sort the ids of one call by what `answer` proves; failures beyond what `missing` and the
    id-bearing `errors` explain leave the other rows unresolved (or failed, if they cover all)."""
    in_call = set(ids)
    missing = frozenset(answer.missing & in_call)
    failed: dict[str, str] = {}
    loose: list[str] = []
    for named, text in answer.errors:
        object_id = named if named in in_call else _id_in_text(text, in_call)
        if object_id is not None and object_id not in missing:
            failed[object_id] = text
        else:
            loose.append(text)
    rest = [i for i in ids if i not in missing and i not in failed]
    estimates = [0]
    if answer.failed is not None:
        estimates.append(answer.failed - len(missing) - len(failed))
    if answer.updated is not None:
        estimates.append(len(rest) - answer.updated)
    untied = min(max(estimates), len(rest))
    texts = list(dict.fromkeys(loose))
    counts = ", ".join(
        f"{name} {value}"
        for name, value in (("total", answer.total), ("updated", answer.updated))
        if value is not None
    )
    said = f": {'; '.join(texts)[:MAX_REASON]}" if texts else " and gave no reason"
    reason = f"Pendo counted this row as failed ({counts}, failed {answer.failed}){said}"
    if untied == 0:
        return Verdict(frozenset(rest), missing, failed)
    if untied == len(rest):
        failed.update(dict.fromkeys(rest, reason))
        return Verdict(frozenset(), missing, failed)
    return Verdict(frozenset(), missing, failed, tuple(rest), untied, reason)


def _count(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, str | int | dict) else []


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _error_entry(entry: Any, redact: Callable[[str], str]) -> tuple[str | None, str]:
    if isinstance(entry, dict):
        named = next((entry[k] for k in _ID_KEYS if _is_id(entry.get(k))), None)
        text = next((entry[k] for k in _TEXT_KEYS if isinstance(entry.get(k), str)), None)
        if text is None:
            text = json.dumps(entry, ensure_ascii=False, default=str)
        return (None if named is None else str(named)), redact(text)[:MAX_REASON]
    return None, redact(str(entry))[:MAX_REASON]


def _id_in_text(text: str, ids: set[str]) -> str | None:
    """The one id of the call that an error text names (`"u-44: ..."`), matched as a whole token
    (`u-4` is not in `u-44`); None unless exactly one is named."""
    head = text.split(":", 1)[0].strip().strip("'\"")
    if head in ids:
        return head
    found = [
        i for i in ids if i and i in text and re.search(rf"(?<![\w-]){re.escape(i)}(?![\w-])", text)
    ]
    return found[0] if len(found) == 1 else None


class CallOutcome(enum.Enum):
    """What one Track call came to."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NOT_SENT = "not_sent"  # Pendo does not have it: never on the wire, or answered a failure
    UNANSWERED = "unanswered"  # an attempt got no answer, then the call ended: in doubt


@dataclass(frozen=True)
class CallResult:
    outcome: CallOutcome
    status: int = 0
    reason: str = ""


@dataclass(frozen=True)
class Refused:
    """Pendo refused the whole call; `reason` is its answer."""

    reason: str
    status: int = 400


@dataclass(frozen=True)
class TooBig:
    """Pendo could not finish the call in time (408 or no answer): send fewer rows a call."""

    reason: str
