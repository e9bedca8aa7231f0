"""Every setting of target-pendo, declared once: type, default, choices or range, description,
secrecy. The SDK's JSON schema (so `--about`, plugin/target-pendo.yml and README's settings
table), the parser's defaults, choices and ranges, the dataclasses' defaults and which keys an
events or an objects stream takes are all derived from these declarations, and nowhere else.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from singer_sdk import typing as th

from target_pendo.pendo.inflight import DEFAULT_CEILING

REGION_HOSTS: dict[str, str] = {
    "us": "https://app.pendo.io",
    "eu": "https://app.eu.pendo.io",
    "us1": "https://us1.app.pendo.io",
    "jpn": "https://app.jpn.pendo.io",
    "au": "https://app.au.pendo.io",
}
# Recent Pendo material and most integrations post Track events to the `data.*` hosts.
REGION_TRACK_HOSTS: dict[str, str] = {
    "us": "https://data.pendo.io",
    "eu": "https://data.eu.pendo.io",
    "us1": "https://us1.data.pendo.io",
    "jpn": "https://data.jpn.pendo.io",
    "au": "https://data.au.pendo.io",
}
UnmappedStreams = Literal["fail", "skip"]  # what a stream not in 'streams' does
MIN_REQUESTS_PER_SECOND = 0.1  # below this one call takes minutes: surely a typo
MAX_CONCURRENCY = 512

CONTEXT_KEYS = ("ip", "userAgent", "url", "title")
OBJECT_SYNCS = ("visitor", "account", "parent_account")
DELETE_BEHAVIORS = ("nothing", "clear", "delete")
NULL_VALUES = ("clear", "skip")  # what a null in the warehouse does to the Pendo field
MAX_METADATA_BATCH = 10_000

Kind = type[th.JSONTypeHelper[Any]] | th.JSONTypeHelper[Any]


@dataclass(frozen=True)
class Setting:
    """One setting (or one key of a stream's spec) and every fact about it."""

    name: str
    kind: Kind  # th.StringType, th.NumberType, ... or a th.ObjectType
    description: str
    default: Any = None  # None: none (the setting is optional)
    choices: tuple[str, ...] = ()  # the only values allowed (the schema's `enum`)
    # (low, high), inclusive, enforced by the parser with a message naming the setting. Not
    # in the JSON schema: the SDK would refuse a value outside with a message of its own.
    bounds: tuple[float, float] | None = None
    secret: bool = False
    title: str | None = None
    # An SDK setting that does nothing here: why any value but its default is refused.
    inert: str | None = None
    # A stream spec key: which syncs take it ("events", "objects" or both).
    used_by: tuple[str, ...] = ("events", "objects")
    # The description ends with "(default X[, at most HIGH])." made from the declaration.
    says_default: bool = False

    def limits(self) -> tuple[float, float]:
        """`bounds`, for a setting that has them."""
        if self.bounds is None:
            raise TypeError(f"setting '{self.name}' declares no bounds")
        return self.bounds

    def text(self) -> str:
        """The description as `--about` shows it."""
        if not self.says_default:
            return self.description
        high = f", at most {self.bounds[1]}" if self.bounds else ""
        return f"{self.description} (default {self.default!r}{high})."

    def schema_property(self, *, with_default: bool = True) -> th.Property[Any]:
        return th.Property(
            self.name,
            self.kind,
            default=self.default if with_default else None,
            description=self.text(),
            secret=self.secret,
            allowed_values=list(self.choices) or None,
            title=self.title,
        )


# --- one stream's spec (the values of 'streams') ---------------------------------------------
EVENTS: tuple[str, ...] = ("events",)
OBJECTS: tuple[str, ...] = ("objects",)
_NAME_MAP = th.ObjectType(additional_properties=th.StringType)

STREAM_SPEC_KEYS: tuple[Setting, ...] = (
    Setting(
        "sync",
        th.StringType,
        default="events",
        choices=("events", *OBJECT_SYNCS),
        description=(
            "What the stream's rows become: 'events' (Track events, the default) or updates of "
            "existing 'visitor', 'account' or 'parent_account' metadata."
        ),
    ),
    Setting(
        "event_name", th.StringType, used_by=EVENTS, description="Fixed event name for every row."
    ),
    Setting(
        "event_name_column",
        th.StringType,
        used_by=EVENTS,
        description="Column holding each row's event name.",
    ),
    Setting(
        "visitor_id_column",
        th.StringType,
        used_by=EVENTS,
        description="Column with the Pendo visitor id.",
    ),
    Setting(
        "account_id_column",
        th.StringType,
        used_by=EVENTS,
        description="Column with the Pendo account id (recommended).",
    ),
    Setting(
        "timestamp_column",
        th.StringType,
        used_by=EVENTS,
        description=(
            "Column with the event time (date-time, date, epoch s/ms, ISO string); empty: the time "
            "the batch is sent."
        ),
    ),
    Setting(
        "properties",
        _NAME_MAP,
        used_by=EVENTS,
        description=(
            "Pendo property name -> column. Default: every column not used above, names made "
            "Pendo-safe."
        ),
    ),
    Setting(
        "context_columns",
        _NAME_MAP,
        used_by=EVENTS,
        description=(f"Track context field ({', '.join(CONTEXT_KEYS)}) -> column."),
    ),
    Setting(
        "primary_key_column",
        th.StringType,
        used_by=EVENTS,
        description=(
            "Events: the column unique per event, so each is sent once (default: the stream's key "
            "properties)."
        ),
    ),
    Setting(
        "delete_behavior",
        th.StringType,
        default="nothing",
        choices=DELETE_BEHAVIORS,
        used_by=OBJECTS,
        description=(
            "Objects: when a row leaves the source ('_sdc_deleted_at', or absent from a completed "
            "full-table sync): 'nothing' (default), 'clear' its fields, or 'delete' it (visitors "
            "and accounts only; permanent in Pendo)."
        ),
    ),
    Setting(
        "deleted_column",
        th.StringType,
        used_by=OBJECTS,
        description=(
            "Objects: a soft-delete column of the model (e.g. deleted_at, is_deleted): a row whose "
            "value is set (not null, not false) left the source and gets 'delete_behavior', like a "
            "row with '_sdc_deleted_at' from a log-based tap."
        ),
    ),
    Setting(
        "null_values",
        th.StringType,
        default="clear",
        choices=NULL_VALUES,
        used_by=OBJECTS,
        description=(
            "Objects: what a null does: 'clear' the Pendo field (default) or 'skip' it, leaving "
            "what Pendo holds (a gap in the warehouse does not wipe Pendo)."
        ),
    ),
    Setting(
        "id_column",
        th.StringType,
        default="id",
        used_by=OBJECTS,
        says_default=True,
        description="Objects: column with the visitor/account id",
    ),
    Setting(
        "custom_fields",
        _NAME_MAP,
        used_by=OBJECTS,
        description=(
            "Objects: Pendo custom field -> column. With neither field map, every column but the "
            "id goes to custom fields of the same name."
        ),
    ),
    Setting(
        "agent_fields",
        _NAME_MAP,
        used_by=OBJECTS,
        description="Objects: Pendo agent field -> column.",
    ),
    Setting(
        "create_missing_fields",
        th.BooleanType,
        default=False,
        used_by=OBJECTS,
        description=(
            "Objects: create the agent and custom fields Pendo lacks through its schema route, "
            "typed from the column's JSON schema. Default false: a missing field stops the run "
            "before anything is sent, naming it."
        ),
    ),
    Setting(
        "batch_size",
        th.IntegerType,
        default=500,
        bounds=(1, MAX_METADATA_BATCH),
        used_by=OBJECTS,
        says_default=True,
        description="Objects: rows per bulk metadata call",
    ),
)
SPEC_KEY: dict[str, Setting] = {s.name: s for s in STREAM_SPEC_KEYS}
SPEC_DEFAULTS: dict[str, Any] = {
    s.name: s.default for s in STREAM_SPEC_KEYS if s.default is not None
}
EVENT_KEYS = frozenset(s.name for s in STREAM_SPEC_KEYS if "events" in s.used_by)
OBJECT_KEYS = frozenset(s.name for s in STREAM_SPEC_KEYS if "objects" in s.used_by)

# Meltano and the SDK read the defaults of run-wide settings only: a spec's are in its
# descriptions, as `--about` has always shown them.
STREAM_SPEC_SCHEMA = th.ObjectType(
    *(s.schema_property(with_default=False) for s in STREAM_SPEC_KEYS), additional_properties=True
)


# --- the run-wide settings, in the order `--about` lists them --------------------------------
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "track_event_secret",
        th.StringType,
        secret=True,
        description=(
            "The app's Track Event Shared Secret (Subscription Settings > app > App Details); "
            "needed by event streams."
        ),
    ),
    Setting(
        "integration_key",
        th.StringType,
        secret=True,
        description=(
            "A Pendo Integration Key with write access (Settings > Integrations); needed by object "
            "streams and the connection check."
        ),
    ),
    Setting(
        "region",
        th.StringType,
        default="us",
        choices=tuple(sorted(REGION_HOSTS)),
        description="Pendo region of the subscription: picks the API and Track hosts.",
    ),
    Setting(
        "api_url",
        th.StringType,
        description=(
            "Base URL that overrides 'region' for every route, Track included (the bundled "
            "emulator, a proxy). https:// only, except to a loopback address."
        ),
    ),
    Setting(
        "track_url",
        th.StringType,
        description=(
            "Base URL for Track events (default: the region's data host, https://data.pendo.io in "
            "'us'; 'api_url' when that is set). https:// only, except to a loopback address."
        ),
    ),
    Setting(
        "state_dir",
        th.StringType,
        default=".target-pendo",
        description="Directory for rejects files and run reports.",
    ),
    Setting(
        "streams",
        th.ObjectType(additional_properties=STREAM_SPEC_SCHEMA),
        description=(
            "Singer stream name -> sync spec; the key '*' applies to every stream not listed."
        ),
    ),
    Setting(
        "ledger_url",
        th.StringType,
        secret=True,
        description=(
            "SQLAlchemy URL of the sync ledger (e.g. postgresql+psycopg://user@host/db). Default: "
            "SQLite at state_dir/ledger.sqlite3."
        ),
    ),
    Setting(
        "retry_pending_days",
        th.NumberType,
        default=30,
        bounds=(0.0, 3650.0),
        description=(
            "Object rows Pendo could not take yet (an id it does not have, a value it failed) wait "
            "in the ledger and are sent again by each run of their stream, with no row from the "
            "tap, for this many days; then they are dropped and counted. 0: no retries."
        ),
    ),
    Setting(
        "retention_days",
        th.NumberType,
        default=30,
        bounds=(0.0, 36_500.0),
        description=(
            "Days a run's history is kept: its sync_rows lines, report, call log, dry-run payloads "
            "and rejects and unknown-id files. Older history is pruned at the end of each "
            "successful run (a bounded amount per run) and by 'target-pendo ledger prune'; what "
            "Pendo holds and what is pending (row_state) is never pruned by age. 0: keep "
            "everything."
        ),
    ),
    # 90 s: long enough for the PostgreSQL lease of a vanished container to free itself (about
    # 50 s of TCP keepalives) and for a previous run to finish its last batch; short enough
    # that an overlapping scheduled run fails with a clear message instead of holding a worker.
    Setting(
        "ledger_wait_seconds",
        th.NumberType,
        default=90,
        bounds=(0.0, 86_400.0),
        description=(
            "How long a run waits for another run that is syncing the same stream on the same "
            "ledger before it stops with a message naming that run (two writers would send events "
            "twice)."
        ),
    ),
    Setting(
        "full_resync",
        th.BooleanType,
        default=False,
        description=(
            "Send every object row again, changed or not (events are still sent once); deletes are "
            "not applied. Also the CLI flag --full-resync."
        ),
    ),
    Setting(
        "max_delete_fraction",
        th.NumberType,
        default=0.2,
        bounds=(0.0, 1.0),
        description=(
            "A run that would clear or delete more than this fraction of a stream's objects in "
            "Pendo stops and sends no deletes."
        ),
    ),
    Setting(
        "max_rejected_fraction",
        th.NumberType,
        default=0.05,
        bounds=(0.0, 1.0),
        description=(
            "A run whose rejected rows exceed this fraction of a stream's rows delivers the rest, "
            "then exits non-zero so orchestrator alerting fires."
        ),
    ),
    Setting(
        "dry_run",
        th.BooleanType,
        default=False,
        description=(
            "Map, validate and diff everything, write the payloads it would send under "
            "state_dir/dry_run/, send nothing and leave the ledger as it is."
        ),
    ),
    Setting(
        "rejects_include_values",
        th.BooleanType,
        default=True,
        description=(
            "Write each rejected row's values to state_dir/rejects/<stream>/<day>.jsonl (default). "
            "false: its key, field and reason only, with quoted values in the reason masked, for "
            "teams that may not keep customer data outside the warehouse."
        ),
    ),
    Setting(
        "call_log",
        th.BooleanType,
        default=False,
        description=(
            "Write every API call (method, URL, status, latency, attempt, bodies; secrets "
            "redacted) to state_dir/calls/<run>.jsonl."
        ),
    ),
    Setting(
        "unmapped_streams",
        th.StringType,
        default="fail",
        choices=typing.get_args(UnmappedStreams),
        description="A stream not in 'streams': 'fail' the run (default) or 'skip' it.",
    ),
    Setting(
        "max_concurrency",
        th.IntegerType,
        default=DEFAULT_CEILING,
        bounds=(1, MAX_CONCURRENCY),
        description=(
            "The most requests in flight at once, all endpoints together. Below it, each "
            "endpoint's number (Track, the /api/v1 routes) follows its pace and the round trip "
            "measured (rate x round trip, with a quarter more); unpaced (max_requests_per_second "
            "0), it is this."
        ),
    ),
    Setting(
        "max_requests_per_second",
        th.NumberType,
        description=(
            "Optional ceiling on requests per second to Pendo, per endpoint (Track, the /api/v1 "
            "routes), all streams together. Unset (the default): adaptive pacing learns Pendo's "
            "limit from its answers (slow start, cut on 429). 0: no client-side pacing at all (the "
            "emulator, a proxy that paces)."
        ),
    ),
    Setting(
        "request_timeout",
        th.NumberType,
        default=20,
        bounds=(0.1, 600.0),
        description=(
            "Seconds to wait for one Pendo answer before retrying (a metadata call that takes "
            "longer is halved instead). Also bounds how long a stop on SIGTERM waits for the calls "
            "on the wire."
        ),
    ),
    Setting(
        "max_retry_seconds",
        th.NumberType,
        default=300,
        bounds=(1.0, 86_400.0),
        description="How long one call is retried (429, 5xx, timeouts) before the run fails.",
    ),
    # The SDK adds these two to every target; here they would change nothing, so they are
    # declared to say so, and any value but the default is refused (text.prepare_config).
    Setting(
        "add_record_metadata",
        th.BooleanType,
        default=False,
        title="Add Record Metadata",
        inert="Pendo is never sent the SDK's _sdc_ metadata columns (deletes read "
        "_sdc_deleted_at on their own). Remove the setting (or set it to false)",
        description=(
            "Not used: Pendo is never sent the SDK's _sdc_ metadata columns. Only false (the "
            "default) is accepted."
        ),
    ),
    Setting(
        "load_method",
        th.StringType,
        default="append-only",
        choices=("append-only",),
        inert="target-pendo has one way to load: events are sent once by their key and "
        "objects update the Pendo visitors and accounts that exist, by id; nothing is "
        "overwritten, truncated or created. Remove the setting (or set it to 'append-only')",
        description=(
            "Not used: events are sent once by their key and objects update existing Pendo records "
            "by id. Only 'append-only' (the default) is accepted; 'upsert' and 'overwrite' are "
            "refused."
        ),
    ),
    Setting(
        "alert_webhook_url",
        th.StringType,
        secret=True,
        description=(
            "Incoming-webhook URL (Slack, Teams, PagerDuty's events bridge) that gets one JSON "
            'message {"text": ...} per run that failed, was stopped by a signal, or rejected more '
            "than max_rejected_fraction; no keys or row values in it."
        ),
    ),
)
SETTING: dict[str, Setting] = {s.name: s for s in SETTINGS}
# Each setting's default (settings without one are optional), as the parser and `--about` use it.
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS if s.default is not None}
# SDK built-in settings that mean nothing here; any value but their default is refused.
INERT_SDK_SETTINGS: dict[str, tuple[Any, str]] = {
    s.name: (s.default, s.inert) for s in SETTINGS if s.inert
}


def declared_schema() -> dict[str, Any]:
    """A fresh copy of the settings' JSON schema: the SDK adds its built-in settings to the
    schema a target class holds, in place."""
    return th.PropertiesList(*(s.schema_property() for s in SETTINGS)).to_dict()
