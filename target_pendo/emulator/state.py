"""What the emulated Pendo holds, and the rules it applies to writes (per ../shared/pendo-api.md).

Kept apart from HTTP so tests can seed and read it directly when the emulator runs in-process,
and the server can expose the same operations over its `/_emulator/*` control routes.
"""

from __future__ import annotations

import copy
import datetime
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class TrackInvalid(Exception):
    """A Track body Pendo answers 400 to; the message is the plain-text reason."""


class MetadataInvalid(Exception):
    """A metadata batch Pendo rejects whole; the message names the first bad item."""


KINDS = ("visitor", "account", "parentAccount")
GROUPS = ("agent", "custom")
ID_KEYS = {"visitor": "visitorId", "account": "accountId", "parentAccount": "accountId"}
FIELD_TYPES = ("string", "boolean", "integer", "float", "time", "list", "")
MAX_TEXT = 1500
MAX_BULK_DELETE = 500


def value_fits(field_type: str, value: Any) -> bool:
    """Whether Pendo stores `value` in a field of `field_type` (null clears any field)."""
    if value is None or field_type == "":
        return True
    if field_type == "string":
        return isinstance(value, str) and len(value) < MAX_TEXT
    if field_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if field_type == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if field_type == "boolean":
        return isinstance(value, bool)
    if field_type == "time":
        if isinstance(value, int) and not isinstance(value, bool):
            return value >= 0
        if isinstance(value, str):
            try:
                datetime.datetime.fromisoformat(value)
            except ValueError:
                return False
            return True
        return False
    if field_type == "list":
        return isinstance(value, list)
    return False


def infer_type(value: Any) -> str:
    """The type Pendo gives an agent field created by writing `value` to it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    return "string"


@dataclass
class MetadataRule:
    """Server-side refusal the target cannot see: a batch holding one of `values` in `field`
    of `kind` is rejected whole with `reason` (tests: values "uncoercible by Pendo")."""

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
class PendoState:
    """All data and counters, guarded by one lock (the server is threaded)."""

    track_secrets: set[str] = field(default_factory=set)
    integration_keys: dict[str, bool] = field(default_factory=dict)  # key -> write access
    events: list[dict[str, Any]] = field(default_factory=list)
    track_rules: list[TrackRule] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    # kind -> id -> group -> field -> value
    objects: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(
        default_factory=lambda: {k: {} for k in KINDS}
    )
    # kind -> group -> field -> {"type": ..., "displayName": ..., ...}
    field_schema: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(
        default_factory=lambda: {k: {g: {} for g in GROUPS} for k in KINDS}
    )
    metadata_rules: list[MetadataRule] = field(default_factory=list)
    # kind -> ids removed by bulk delete (Pendo marks them Do Not Process at once)
    deleted: dict[str, list[str]] = field(default_factory=lambda: {"visitor": [], "account": []})
    # every accepted metadata write: {"kind", "group", "ids"}, for tests counting what was sent
    metadata_writes: list[dict[str, Any]] = field(default_factory=list)
    delete_jobs: int = 0
    lock: threading.Lock = field(default_factory=threading.RLock, repr=False)

    # --- keys ----------------------------------------------------------------------------
    def track_key_ok(self, key: str | None) -> bool:
        return key is not None and key in self.track_secrets

    def api_key_access(self, key: str | None) -> bool | None:
        """None: unknown key; else whether it may write."""
        if key is None:
            return None
        return self.integration_keys.get(key)

    # --- counters ------------------------------------------------------------------------
    def count(self, route: str) -> None:
        with self.lock:
            self.requests[route] += 1

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.requests)

    # --- Track ---------------------------------------------------------------------------
    def add_track_rule(self, field_name: str, values: list[Any], reason: str) -> None:
        with self.lock:
            self.track_rules.append(TrackRule(field_name, frozenset(values), reason))

    def accept_track(self, body: Any) -> None:
        """Validate like Pendo (400 reasons are plain text) and store the event."""
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
        context = body.get("context", {})
        if context is not None and not isinstance(context, dict):
            raise TrackInvalid("'context' must be an object")
        with self.lock:
            for rule in self.track_rules:
                if _is_one_of(body.get(rule.field), rule.values):
                    raise TrackInvalid(rule.reason)
            stored = dict(body)
            stored["_received_at"] = int(time.time() * 1000)
            self.events.append(stored)

    def events_snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.events]

    # --- objects and fields --------------------------------------------------------------
    def seed_fields(self, kind: str, group: str, fields: dict[str, str]) -> None:
        """Create fields (name -> type); keys are stored lowercase, as Pendo does."""
        self._check_kind_group(kind, group)
        with self.lock:
            for name, field_type in fields.items():
                if field_type not in FIELD_TYPES:
                    raise ValueError(f"field type must be one of {FIELD_TYPES}, got {field_type!r}")
                self.field_schema[kind][group][name.lower()] = {
                    "type": field_type,
                    "displayName": name,
                    "isHidden": False,
                    "isDeleted": False,
                }

    def seed_objects(self, kind: str, ids: list[str]) -> None:
        self._check_kind_group(kind, "agent")
        with self.lock:
            for object_id in ids:
                self.objects[kind].setdefault(str(object_id), {g: {} for g in GROUPS})

    def add_metadata_rule(self, kind: str, field_name: str, values: list[Any], reason: str) -> None:
        with self.lock:
            self.metadata_rules.append(MetadataRule(kind, field_name.lower(), values, reason))

    def schema_for(self, kind: str) -> dict[str, Any]:
        self._check_kind_group(kind, "agent")
        with self.lock:
            return copy.deepcopy(self.field_schema[kind])

    def get_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects[kind].get(object_id)
            return copy.deepcopy(found) if found is not None else None

    def objects_snapshot(self, kind: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.objects[kind])

    @staticmethod
    def _check_kind_group(kind: str, group: str) -> None:
        if kind not in KINDS or group not in GROUPS:
            raise ValueError(f"unknown kind/group {kind}/{group}")

    def apply_metadata(
        self, kind: str, group: str, items: Any, create: bool = False
    ) -> dict[str, Any]:
        """Validate the whole batch first (any bad item: 400, nothing written), then write."""
        self._check_kind_group(kind, group)
        id_key = ID_KEYS[kind]
        if not isinstance(items, list):
            raise MetadataInvalid("body must be a JSON array of items")
        with self.lock:
            fields = self.field_schema[kind][group]
            for n, item in enumerate(items):
                if not isinstance(item, dict):
                    raise MetadataInvalid(f"item {n}: not an object")
                object_id = item.get(id_key)
                if not isinstance(object_id, str) or not object_id:
                    raise MetadataInvalid(f"item {n}: missing '{id_key}'")
                values = item.get("values")
                if not isinstance(values, dict):
                    raise MetadataInvalid(f"item {n} ({object_id}): 'values' must be an object")
                for name, value in values.items():
                    spec = fields.get(name.lower())
                    if spec is not None and not value_fits(spec["type"], value):
                        raise MetadataInvalid(
                            f"item {n} ({object_id}): value {value!r} does not fit field "
                            f"'{name.lower()}' of type {spec['type']}"
                        )
                    for rule in self.metadata_rules:
                        if (
                            rule.kind == kind
                            and rule.field == name.lower()
                            and value in rule.values
                        ):
                            raise MetadataInvalid(f"item {n} ({object_id}): {rule.reason}")
            updated, missing, errors = 0, [], []
            for item in items:
                object_id = item[id_key]
                record = self.objects[kind].get(object_id)
                if record is None and not create:
                    missing.append(object_id)
                    continue
                unknown = [
                    name
                    for name in item["values"]
                    if name.lower() not in fields and group == "custom"
                ]
                if unknown:
                    errors.append(
                        {"id": object_id, "error": f"unknown custom field '{unknown[0].lower()}'"}
                    )
                    continue
                if record is None:
                    record = self.objects[kind][object_id] = {g: {} for g in GROUPS}
                for name, value in item["values"].items():
                    key = name.lower()
                    if key not in fields:  # an agent field is created by writing it
                        fields[key] = {
                            "type": infer_type(value),
                            "displayName": name,
                            "isHidden": False,
                            "isDeleted": False,
                        }
                    record[group][key] = value
                updated += 1
            self.metadata_writes.append(
                {"kind": kind, "group": group, "ids": [item[id_key] for item in items]}
            )
            response: dict[str, Any] = {
                "total": len(items),
                "updated": updated,
                "failed": len(items) - updated,
                "missing": missing,
                "kind": kind,
            }
            if errors:
                response["errors"] = errors
            return response

    def deleted_ids(self, kind: str) -> list[str]:
        with self.lock:
            return list(self.deleted.get(kind, []))

    def bulk_delete(self, kind: str, body: Any) -> str:
        """`POST /api/v1/bulkdelete/{kind}`: at most 500 ids; returns the job id."""
        list_key = "visitors" if kind == "visitor" else "accounts"
        ids = body.get(list_key) if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise MetadataInvalid(f'body must be {{"{list_key}": [ids]}}')
        if len(ids) > MAX_BULK_DELETE:
            raise MetadataInvalid(f"at most {MAX_BULK_DELETE} ids per bulk delete")
        with self.lock:
            for object_id in ids:
                self.objects[kind].pop(object_id, None)
                self.deleted[kind].append(object_id)
            self.delete_jobs += 1
            return f"job-{self.delete_jobs}"

    def reset(self) -> None:
        with self.lock:
            for ids in self.deleted.values():
                ids.clear()
            self.metadata_writes.clear()
            self.events.clear()
            self.track_rules.clear()
            self.requests.clear()
            self.metadata_rules.clear()
            for kind in KINDS:
                self.objects[kind].clear()
                for group in GROUPS:
                    self.field_schema[kind][group].clear()
