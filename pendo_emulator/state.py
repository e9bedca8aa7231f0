"""What the emulated Pendo holds, and the rules it applies to writes (per ../shared/pendo-api.md).

Kept apart from HTTP so tests can seed and read it directly when the emulator runs in-process,
and the server can expose the same operations over its `/_emulator/*` control routes. Where
the contract leaves a behaviour open, `self.switches` (see switches.py) picks the reading.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pendo_emulator.contract import (
    BULK_DELETE_LIST_KEYS,
    BULK_DELETE_MAX,
    ID_KEYS,
    KEY_HEADER,
    MAX_EVENT_AGE_MS,
    MAX_PROPERTIES_BYTES,
    WRITABLE_GROUPS,
)
from pendo_emulator.schema import (
    AGENT_ONLY_TYPES,
    FIELD_TYPES,
    SCHEMA_GROUPS,
    builtin_fields,
    field_from_spec,
    infer_type,
    new_field,
    render,
    value_fits,
    value_problem,
)
from pendo_emulator.switches import Switches

__all__ = [
    "FIELD_TYPES",
    "ApiError",
    "CallTooLong",
    "MetadataInvalid",
    "MissingFieldMapping",
    "NotFound",
    "PendoState",
    "TrackInvalid",
    "infer_type",
    "value_fits",
]


class ApiError(Exception):
    """An answer other than 200 the emulated Pendo gives; the message is the plain-text reason."""

    status = 400

    def __init__(self, text: str, status: int | None = None) -> None:
        super().__init__(text)
        if status is not None:
            self.status = status


class TrackInvalid(ApiError):
    """A Track body Pendo answers 400 to."""


class MetadataInvalid(ApiError):
    """A metadata (or field, or bulk delete) call Pendo rejects whole with 400."""


class MissingFieldMapping(MetadataInvalid):
    """A 400 whose cause is a field Pendo does not have (the config, not the rows)."""


class CallTooLong(ApiError):
    """408: the call ran past Pendo's 5-minute budget (here: past `item_budget` items)."""

    status = 408


class NotFound(ApiError):
    """404 on a Pendo route (an unknown field to delete, a switched-off route)."""

    status = 404


KINDS = ("visitor", "account", "parentAccount")
# `POST /api/v1/metadata/schema/{kind}/{group}` type names in Pendo's Postman example [C].
CREATE_ROUTE_TYPES = ("string", "number", "time", "boolean")
PARENT_SEPARATOR = "::"  # `ParentAccountID::childAccountID` [C]

# Track processing rules [C]: Pendo answers 200 yet does not process such events.
MAX_EVENT_NAMES = 5000
MAX_PROPERTY_KEYS = 10000
# An event is "before its name was defined" when its timestamp is this much older than the
# first receipt of that name [I]: without a margin even the first live event of a new name
# (stamped a few ms before it arrived) would count. One hour: Pendo's hourly processing run.
DEFINITION_GRACE_MS = 3600 * 1000
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
REQUEST_LOG_SIZE = 10000  # received requests kept with their headers (older ones dropped)


def property_name_problem(name: str) -> str | None:
    """Why Pendo would not accept a Track property name [C], or None."""
    if not _PROPERTY_NAME.fullmatch(name):
        return (
            f"property name {name!r} must be letters, digits and '_', at most 32 characters, "
            "not starting with a digit"
        )
    if len(name) >= 2 and name.startswith("__") and name.endswith("__"):
        return f"property name {name!r} must not both start and end with '__'"
    return None


@dataclass
class MetadataRule:
    """Server-side refusal the target cannot see: an item holding one of `values` in `field`
    of `kind` is a bad value with `reason` (tests: values "uncoercible by Pendo"). It fails
    its item or the whole batch, as switch `bad_value` says."""

    kind: str
    field: str
    values: list[Any]
    reason: str


def _is_one_of(value: Any, values: frozenset[Any]) -> bool:
    """Membership that tolerates unhashable values (a list or object in a Track body)."""
    try:
        return value in values
    except TypeError:
        return False


@dataclass
class TrackRule:
    """Server-side validation the target cannot see: Pendo refuses events whose `field`
    (a top-level Track body key) has one of `values`. Tests use it for "invalid for Pendo"."""

    field: str
    values: frozenset[Any]
    reason: str


@dataclass
class FieldDeletion:
    """A field to mark deleted once `at_call` metadata calls have been accepted: the case of
    someone deleting a Data Mapping while a run goes (rev. 3 item 2)."""

    kind: str
    group: str
    field: str
    at_call: int
    done: bool = False


def _empty_schema() -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    schema: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for kind in KINDS:
        builtin = builtin_fields(kind)
        schema[kind] = {g: builtin.get(g, {}) for g in SCHEMA_GROUPS}
    return schema


@dataclass
class PendoState:
    """All data and counters, guarded by one lock (the server is threaded)."""

    track_secrets: set[str] = field(default_factory=set)
    integration_keys: dict[str, bool] = field(default_factory=dict)  # key -> write access
    switches: Switches = field(default_factory=Switches)
    # what reset() restores: the switches the emulator was started with
    base_switches: Switches = field(default_factory=Switches)
    events: list[dict[str, Any]] = field(default_factory=list)
    track_rules: list[TrackRule] = field(default_factory=list)
    # event name -> epoch ms Pendo first defined it (first receipt, or `define_event`)
    event_definitions: dict[str, int] = field(default_factory=dict)
    property_keys: set[str] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)
    # the last REQUEST_LOG_SIZE requests with their headers, and key-header presence per route
    received: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=REQUEST_LOG_SIZE)
    )
    key_headers: dict[str, Counter[str]] = field(default_factory=dict)
    rate_limited: Counter[str] = field(default_factory=Counter)  # route -> 429s from the limiter
    # kind -> id -> group -> field -> value
    objects: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )
    # kind -> group -> field -> attributes (canonical capitalised spelling, see schema.py)
    field_schema: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(
        default_factory=_empty_schema
    )
    metadata_rules: list[MetadataRule] = field(default_factory=list)
    field_deletions: list[FieldDeletion] = field(default_factory=list)
    # kind -> ids removed by bulk delete (Pendo marks them Do Not Process at once)
    deleted: dict[str, list[str]] = field(default_factory=lambda: {"visitor": [], "account": []})
    # every accepted metadata write: {"kind", "group", "ids", "updated"}, for tests counting
    # what was sent ("ids": every item of the call; "updated": the ids actually written)
    metadata_writes: list[dict[str, Any]] = field(default_factory=list)
    accepted_metadata_calls: int = 0
    delete_jobs: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # --- keys and switches -------------------------------------------------------------------
    def track_key_ok(self, key: str | None) -> bool:
        return key is not None and key in self.track_secrets

    def api_key_access(self, key: str | None) -> bool | None:
        """None: unknown key; else whether it may write."""
        if key is None:
            return None
        return self.integration_keys.get(key)

    def set_switches(self, changes: dict[str, Any]) -> Switches:
        """Apply `changes` at once (validated first; nothing changes on a bad value)."""
        with self.lock:
            self.switches = self.switches.updated(changes)
            return self.switches

    # --- counters and request log ------------------------------------------------------------
    def count(self, route: str) -> None:
        with self.lock:
            self.requests[route] += 1

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.requests)

    def record_request(
        self, method: str, path: str, query: str, route: str | None, headers: dict[str, str]
    ) -> None:
        """Keep a request's headers (bounded) and count key-header presence per route, so a
        test can prove no key went to, say, a redirect target."""
        family = route or "unknown"
        present = any(name.lower() == KEY_HEADER for name in headers)
        with self.lock:
            self.received.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "route": family,
                    "key_present": present,
                    "headers": dict(headers),
                }
            )
            counts = self.key_headers.setdefault(family, Counter())
            counts["with_key" if present else "without_key"] += 1

    def received_snapshot(self, route: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(r) for r in self.received if route is None or r["route"] == route]

    def key_header_counts(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {
                route: {"with_key": c["with_key"], "without_key": c["without_key"]}
                for route, c in self.key_headers.items()
            }

    def count_rate_limited(self, route: str) -> None:
        with self.lock:
            self.rate_limited[route] += 1

    def rate_limited_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.rate_limited)

    # --- Track ---------------------------------------------------------------------------
    def add_track_rule(self, field_name: str, values: list[Any], reason: str) -> None:
        with self.lock:
            self.track_rules.append(TrackRule(field_name, frozenset(values), reason))

    def define_event(self, name: str, at_ms: int) -> None:
        """Record that Pendo first saw event `name` at `at_ms` (an app that has long used it),
        so backfilled events after that time count as processed."""
        with self.lock:
            self.event_definitions[name] = int(at_ms)

    def accept_track(self, body: Any) -> None:
        """Validate like Pendo (400 reasons are plain text) and store the event, noting whether
        Pendo would process it (`_processed`, `_unprocessed_reasons`): Pendo answers 200 to
        events it then ignores [C], so only the stored event can tell a test."""
        if not isinstance(body, dict):
            raise TrackInvalid("body must be a JSON object")
        if body.get("type") != "track":
            raise TrackInvalid("type must be 'track'")
        for key in ("event", "visitorId"):
            value = body.get(key)
            if not isinstance(value, str) or not value:
                raise TrackInvalid(f"missing or empty '{key}'")
        timestamp = body.get("timestamp")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise TrackInvalid("'timestamp' must be an integer (epoch milliseconds)")
        props = body.get("properties", {})
        if props is not None and not isinstance(props, dict):
            raise TrackInvalid("'properties' must be an object")
        if "context" not in body:
            raise TrackInvalid("missing 'context' (required; may be {})")
        if not isinstance(body["context"], dict):
            raise TrackInvalid("'context' must be an object")
        now = int(time.time() * 1000)
        with self.lock:
            for rule in self.track_rules:
                if _is_one_of(body.get(rule.field), rule.values):
                    raise TrackInvalid(rule.reason)
            reasons = self._unprocessed_reasons(body["event"], timestamp, props or {}, now)
            stored = dict(body)
            stored["_received_at"] = now
            stored["_processed"] = not reasons
            if reasons:  # interned: a million old events must not hold a million copies
                stored["_unprocessed_reasons"] = [sys.intern(r) for r in reasons]
            self.events.append(stored)

    def _unprocessed_reasons(
        self, name: str, timestamp: int, props: dict[str, Any], now: int
    ) -> list[str]:
        """The contract's processing rules and limits [C] that make Pendo ignore an event."""
        reasons: list[str] = []
        if timestamp < now - MAX_EVENT_AGE_MS:
            reasons.append("timestamp is more than 7 days old")
        defined = self.event_definitions.get(name)
        if defined is None:
            if len(self.event_definitions) >= MAX_EVENT_NAMES:
                reasons.append(f"the app already has {MAX_EVENT_NAMES:,} event names")
            else:
                defined = self.event_definitions[name] = now
        if defined is not None and timestamp < defined - DEFINITION_GRACE_MS:
            reasons.append(f"timestamp is before event {name!r} was first defined")
        for key in props:
            problem = property_name_problem(key)
            if problem:
                reasons.append(problem)
            elif key not in self.property_keys:
                if len(self.property_keys) >= MAX_PROPERTY_KEYS:
                    reasons.append(
                        f"the subscription already has {MAX_PROPERTY_KEYS:,} property keys"
                    )
                else:
                    self.property_keys.add(key)
        size = len(json.dumps(props, separators=(",", ":")).encode())
        if size > MAX_PROPERTIES_BYTES:
            reasons.append(
                f"properties are {size} bytes of JSON, over {MAX_PROPERTIES_BYTES} "
                "(shown as too large)"
            )
        return reasons

    def events_snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.events]

    # --- fields ----------------------------------------------------------------------------
    @staticmethod
    def _check_kind_group(kind: str, group: str, groups: tuple[str, ...] = WRITABLE_GROUPS) -> None:
        if kind not in KINDS or group not in groups:
            raise ValueError(f"unknown kind/group {kind}/{group}")

    def seed_fields(self, kind: str, group: str, fields: dict[str, str | dict[str, Any]]) -> None:
        """Create fields: name -> type, or name -> attributes (`{"type": "string",
        "isDeleted": true}` makes a deleted field). Keys are stored lowercase, as Pendo does."""
        self._check_kind_group(kind, group, SCHEMA_GROUPS)
        entries = {name.lower(): field_from_spec(name, spec) for name, spec in fields.items()}
        for key, entry in entries.items():
            if entry["Type"] in AGENT_ONLY_TYPES and group != "agent":
                raise ValueError(f"field {key!r}: type {entry['Type']!r} is for agent fields only")
        with self.lock:
            self.field_schema[kind][group].update(entries)

    def schema_for(self, kind: str) -> dict[str, Any]:
        """The field schema as `GET /api/v1/metadata/schema/{kind}` answers it (switches)."""
        self._check_kind_group(kind, "agent")
        with self.lock:
            return render(self.field_schema[kind], self.switches.schema_case)

    def create_fields(self, kind: str, group: str, body: Any) -> list[str]:
        """`POST /api/v1/metadata/schema/{kind}/{group}`: "Create or Undelete an Agent or
        Custom Field" [C]. All items are checked before any is applied (400 otherwise).

        An existing field keeps its type and display name, and a deleted one comes back with
        its old type [I]: so a client must re-read the schema rather than trust its request.
        Returns the lowercase keys created or undeleted.
        """
        self._check_kind_group(kind, group)
        switches = self.switches
        allowed: tuple[str, ...] = CREATE_ROUTE_TYPES
        if switches.field_create_types == "schema":
            allowed = CREATE_ROUTE_TYPES + tuple(t for t in FIELD_TYPES if t not in allowed)
        if not isinstance(body, list) or not body:
            raise MetadataInvalid(
                'body must be a non-empty JSON array of {"name", "displayname", "type"}'
            )
        wanted: dict[str, dict[str, Any]] = {}
        for n, item in enumerate(body):
            if not isinstance(item, dict):
                raise MetadataInvalid(f"item {n}: not an object")
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                raise MetadataInvalid(f"item {n}: missing 'name'")
            display = item.get("displayname", name)
            if not isinstance(display, str):
                raise MetadataInvalid(f"item {n} ({name}): 'displayname' must be a string")
            field_type = item.get("type")
            if field_type not in allowed:
                raise MetadataInvalid(
                    f"item {n} ({name}): type must be one of {list(allowed)}, got {field_type!r}"
                )
            if field_type in AGENT_ONLY_TYPES and group != "agent":
                raise MetadataInvalid(f"item {n} ({name}): type {field_type!r} is agent-only")
            if field_type == "number":
                field_type = switches.number_field_type
            wanted[name.lower()] = new_field(display or name, field_type)
        with self.lock:
            fields = self.field_schema[kind][group]
            for key, entry in wanted.items():
                existing = fields.get(key)
                if existing is None:
                    fields[key] = entry
                else:
                    existing["isDeleted"] = False
            return list(wanted)

    def delete_field(self, kind: str, group: str, name: str) -> None:
        """`DELETE /api/v1/metadata/schema/{kind}/{group}/{field}`: the entry stays, marked
        `isDeleted: true` (a 404 when there is no such field [I])."""
        self._check_kind_group(kind, group)
        with self.lock:
            entry = self.field_schema[kind][group].get(name.lower())
            if entry is None:
                raise NotFound(f"no {group} field {name.lower()!r} for {kind}")
            entry["isDeleted"] = True

    def schedule_field_deletion(self, kind: str, group: str, name: str, after: int) -> None:
        """Mark `group`.`name` of `kind` deleted once `after` more metadata calls have been
        accepted (0: now). A field absent by then is left absent."""
        self._check_kind_group(kind, group)
        if not isinstance(after, int) or after < 0:
            raise ValueError("after must be a non-negative integer")
        with self.lock:
            deletion = FieldDeletion(
                kind, group, name.lower(), self.accepted_metadata_calls + after
            )
            self.field_deletions.append(deletion)
            self._run_field_deletions()

    def _run_field_deletions(self) -> None:
        for deletion in self.field_deletions:
            if not deletion.done and self.accepted_metadata_calls >= deletion.at_call:
                deletion.done = True
                with contextlib.suppress(NotFound):
                    self.delete_field(deletion.kind, deletion.group, deletion.field)

    # --- objects -----------------------------------------------------------------------------
    def seed_objects(self, kind: str, ids: list[str]) -> None:
        """Create visitors/accounts. An account id `parent::child` also creates the parent
        account `parent`, as a subscription with parent accounts on has both [C]."""
        self._check_kind_group(kind, "agent")
        with self.lock:
            for object_id in ids:
                self.objects[kind].setdefault(str(object_id), {g: {} for g in WRITABLE_GROUPS})
                if kind == "account" and PARENT_SEPARATOR in str(object_id):
                    parent = str(object_id).split(PARENT_SEPARATOR, 1)[0]
                    self.objects["parentAccount"].setdefault(
                        parent, {g: {} for g in WRITABLE_GROUPS}
                    )

    def add_metadata_rule(self, kind: str, field_name: str, values: list[Any], reason: str) -> None:
        with self.lock:
            self.metadata_rules.append(MetadataRule(kind, field_name.lower(), values, reason))

    def get_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects[kind].get(object_id)
            return copy.deepcopy(found) if found is not None else None

    def objects_snapshot(self, kind: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.objects[kind])

    def metadata_writes_snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.metadata_writes)

    def apply_metadata(
        self, kind: str, group: str, items: Any, create: bool = False
    ) -> dict[str, Any]:
        """`POST /api/v1/metadata/{kind}/{group}/value`: check, then write; the 200 answer.

        Order: the body's shape (400), the item budget (408), field mappings (400 or per
        item, switch `missing_field`), values (per item or 400, switch `bad_value`), then the
        write, where unknown ids are `missing`. A 400 or 408 writes nothing (unless
        `budget_partial_write`)."""
        self._check_kind_group(kind, group)
        self._check_items(kind, items)
        switches = self.switches
        budget = switches.item_budget
        if budget is not None and len(items) > budget:
            if switches.budget_partial_write:
                with contextlib.suppress(ApiError):
                    self._apply_items(kind, group, items[:budget], create, switches)
            raise CallTooLong(
                f"request timed out: {len(items)} items did not finish within the 5-minute "
                "budget; send fewer items per call"
            )
        return self._apply_items(kind, group, items, create, switches)

    @staticmethod
    def _check_items(kind: str, items: Any) -> None:
        id_key = ID_KEYS[kind]
        if not isinstance(items, list):
            raise MetadataInvalid("malformed JSON: body must be a JSON array of items")
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise MetadataInvalid(f"malformed JSON: item {n} is not an object")
            object_id = item.get(id_key)
            if not isinstance(object_id, str) or not object_id:
                raise MetadataInvalid(f"malformed JSON: item {n} has no '{id_key}'")
            if not isinstance(item.get("values"), dict):
                raise MetadataInvalid(
                    f"malformed JSON: item {n} ({object_id}): 'values' must be an object"
                )

    def _mapping_problem(self, kind: str, group: str, key: str, switches: Switches) -> str | None:
        """Why `key` is not a field a value can be written to, or None."""
        spec = self.field_schema[kind][group].get(key)
        if spec is None:
            return f"custom field '{key}' does not exist" if group == "custom" else None
        if spec["isDeleted"] and (group == "custom" or switches.deleted_agent_field == "refuse"):
            return f"{group} field '{key}' is deleted"
        return None

    def _value_problem(
        self, kind: str, group: str, key: str, value: Any, switches: Switches
    ) -> str | None:
        """Why Pendo would refuse `value` for `key` (its type, or a metadata rule), or None."""
        if value is None:
            return f"value for {key} is null" if switches.null_value == "invalid" else None
        spec = self.field_schema[kind][group].get(key)
        if spec is not None:
            problem = value_problem(spec["Type"], value)
            if problem:
                return f"value for {key} {problem}"
        for rule in self.metadata_rules:
            if rule.kind == kind and rule.field == key and value in rule.values:
                return rule.reason
        return None

    def _apply_items(
        self, kind: str, group: str, items: list[dict[str, Any]], create: bool, switches: Switches
    ) -> dict[str, Any]:
        id_key = ID_KEYS[kind]
        with self.lock:
            failures: dict[int, str] = {}  # item index -> why it fails alone
            for n, item in enumerate(items):
                for name in item["values"]:
                    problem = self._mapping_problem(kind, group, name.lower(), switches)
                    if problem is None:
                        continue
                    if switches.missing_field == "batch":
                        raise MissingFieldMapping(
                            f"missing field mappings: {kind} {problem} (item {n}, "
                            f"{item[id_key]}); nothing was written"
                        )
                    failures.setdefault(n, f"missing field mapping: {problem}")
            for n, item in enumerate(items):
                if n in failures:
                    continue
                for name, value in item["values"].items():
                    problem = self._value_problem(kind, group, name.lower(), value, switches)
                    if problem is None:
                        continue
                    if switches.bad_value == "batch":
                        raise MetadataInvalid(
                            f"item {n} ({item[id_key]}): {problem}; nothing was written"
                        )
                    failures[n] = problem
                    break
            fields = self.field_schema[kind][group]
            creating = create or switches.unknown_ids == "create"
            updated: list[str] = []
            missing: list[str] = []
            errors: list[tuple[str, str]] = []
            for n, item in enumerate(items):
                object_id = item[id_key]
                record = self.objects[kind].get(object_id)
                if record is None and not creating:
                    missing.append(object_id)
                    continue
                if n in failures:
                    errors.append((object_id, failures[n]))
                    continue
                if record is None:
                    record = self.objects[kind][object_id] = {g: {} for g in WRITABLE_GROUPS}
                for name, value in item["values"].items():
                    key = name.lower()
                    spec = fields.get(key)
                    if spec is None:  # an unknown agent field: created by writing it, or not
                        if switches.block_undefined_agent_fields:
                            continue
                        fields[key] = new_field(name, infer_type(value), sample=value)
                    elif spec["isDeleted"]:  # only reached for agent + "recreate"
                        spec["isDeleted"] = False
                    if value is None and switches.null_value == "ignore":
                        continue
                    record[group][key] = copy.deepcopy(value)
                updated.append(object_id)
            self.metadata_writes.append(
                {
                    "kind": kind,
                    "group": group,
                    "ids": [item[id_key] for item in items],
                    "updated": updated,
                }
            )
            self.accepted_metadata_calls += 1
            self._run_field_deletions()
        answer: dict[str, Any] = {
            "total": len(items),
            "updated": len(updated),
            "failed": len(missing) + len(errors),
            "missing": missing,
        }
        shape = switches.error_shape
        if shape == "object":
            answer["errors"] = [{id_key: i, "error": text} for i, text in errors]
        elif shape == "string":
            answer["errors"] = [f"{i}: {text}" for i, text in errors]
        elif shape == "string_no_id":
            answer["errors"] = [text for _, text in errors]
        return answer

    # --- bulk delete ---------------------------------------------------------------------------
    def deleted_ids(self, kind: str) -> list[str]:
        with self.lock:
            return list(self.deleted.get(kind, []))

    def bulk_delete(self, kind: str, body: Any) -> str:
        """`POST /api/v1/bulkdelete/{kind}`: at most 500 ids; returns the job id."""
        list_key = BULK_DELETE_LIST_KEYS[kind]
        ids = body.get(list_key) if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise MetadataInvalid(f'body must be {{"{list_key}": [ids]}}')
        if len(ids) > BULK_DELETE_MAX:
            raise MetadataInvalid(f"at most {BULK_DELETE_MAX} ids per bulk delete")
        with self.lock:
            for object_id in ids:
                self.objects[kind].pop(object_id, None)
                self.deleted[kind].append(object_id)
            self.delete_jobs += 1
            return f"job-{self.delete_jobs}"

    def reset(self) -> None:
        """Back to a fresh subscription: no data, no rules, built-in fields only, and the
        switches the emulator was started with."""
        with self.lock:
            for ids in self.deleted.values():
                ids.clear()
            self.metadata_writes.clear()
            self.accepted_metadata_calls = 0
            self.field_deletions.clear()
            self.events.clear()
            self.event_definitions.clear()
            self.property_keys.clear()
            self.track_rules.clear()
            self.requests.clear()
            self.received.clear()
            self.key_headers.clear()
            self.rate_limited.clear()
            self.metadata_rules.clear()
            self.delete_jobs = 0
            self.switches = self.base_switches
            for kind in KINDS:
                self.objects[kind].clear()
            self.field_schema.update(_empty_schema())
