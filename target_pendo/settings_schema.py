"""Every setting of target-pendo, declared once: its type, default, description and whether it
is secret. The target hands this schema to the SDK (`config_jsonschema`), so `--about`, the
Meltano plugin definition (`plugin/target-pendo.yml`) and README's settings table are generated
from it; defaults come from `settings.DEFAULTS`, which `parse_settings` reads too.
"""

from __future__ import annotations

from typing import Any

from singer_sdk import typing as th

from target_pendo.settings import (
    CONTEXT_KEYS,
    DEFAULTS,
    DELETE_BEHAVIORS,
    MAX_METADATA_BATCH,
    NULL_VALUES,
    OBJECT_SYNCS,
    REGION_HOSTS,
)

STREAM_SPEC_SCHEMA = th.ObjectType(
    th.Property(
        "sync",
        th.StringType,
        allowed_values=["events", *OBJECT_SYNCS],
        description="What the stream's rows become: 'events' (Track events, the default) or "
        "updates of existing 'visitor', 'account' or 'parent_account' metadata.",
    ),
    th.Property("event_name", th.StringType, description="Fixed event name for every row."),
    th.Property(
        "event_name_column", th.StringType, description="Column holding each row's event name."
    ),
    th.Property(
        "visitor_id_column", th.StringType, description="Column with the Pendo visitor id."
    ),
    th.Property(
        "account_id_column",
        th.StringType,
        description="Column with the Pendo account id (recommended).",
    ),
    th.Property(
        "timestamp_column",
        th.StringType,
        description="Column with the event time (date-time, date, epoch s/ms, ISO string); "
        "empty: the time the batch is sent.",
    ),
    th.Property(
        "properties",
        th.ObjectType(additional_properties=th.StringType),
        description="Pendo property name -> column. Default: every column not used above, "
        "names made Pendo-safe.",
    ),
    th.Property(
        "context_columns",
        th.ObjectType(additional_properties=th.StringType),
        description=f"Track context field ({', '.join(CONTEXT_KEYS)}) -> column.",
    ),
    th.Property(
        "primary_key_column",
        th.StringType,
        description="Events: the column unique per event, so each is sent once (default: the "
        "stream's key properties).",
    ),
    th.Property(
        "delete_behavior",
        th.StringType,
        allowed_values=list(DELETE_BEHAVIORS),
        description="Objects: when a row leaves the source ('_sdc_deleted_at', or absent from "
        "a completed full-table sync): 'nothing' (default), 'clear' its fields, or 'delete' it "
        "(visitors and accounts only; permanent in Pendo).",
    ),
    th.Property(
        "deleted_column",
        th.StringType,
        description="Objects: a soft-delete column of the model (e.g. deleted_at, is_deleted): "
        "a row whose value is set (not null, not false) left the source and gets "
        "'delete_behavior', like a row with '_sdc_deleted_at' from a log-based tap.",
    ),
    th.Property(
        "null_values",
        th.StringType,
        allowed_values=list(NULL_VALUES),
        description="Objects: what a null does: 'clear' the Pendo field (default) or 'skip' "
        "it, leaving what Pendo holds (a gap in the warehouse does not wipe Pendo).",
    ),
    th.Property(
        "id_column",
        th.StringType,
        description="Objects: column with the visitor/account id (default 'id').",
    ),
    th.Property(
        "custom_fields",
        th.ObjectType(additional_properties=th.StringType),
        description="Objects: Pendo custom field -> column. With neither field map, every "
        "column but the id goes to custom fields of the same name.",
    ),
    th.Property(
        "agent_fields",
        th.ObjectType(additional_properties=th.StringType),
        description="Objects: Pendo agent field -> column.",
    ),
    th.Property(
        "create_missing_fields",
        th.BooleanType,
        description="Objects: create the agent and custom fields Pendo lacks through its schema "
        "route, typed from the column's JSON schema. Default false: a missing field stops the "
        "run before anything is sent, naming it.",
    ),
    th.Property(
        "batch_size",
        th.IntegerType,
        description=f"Objects: rows per bulk metadata call (default 500, at most "
        f"{MAX_METADATA_BATCH}).",
    ),
    additional_properties=True,
)


_SETTINGS = th.PropertiesList(
    th.Property(
        "track_event_secret",
        th.StringType,
        secret=True,
        description="The app's Track Event Shared Secret (Subscription Settings > app > "
        "App Details); needed by event streams.",
    ),
    th.Property(
        "integration_key",
        th.StringType,
        secret=True,
        description="A Pendo Integration Key with write access (Settings > Integrations); "
        "needed by object streams and the connection check.",
    ),
    th.Property(
        "region",
        th.StringType,
        default=DEFAULTS["region"],
        allowed_values=sorted(REGION_HOSTS),
        description="Pendo region of the subscription: picks the API and Track hosts.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        description="Base URL that overrides 'region' for every route, Track included (the "
        "bundled emulator, a proxy). https:// only, except to a loopback address.",
    ),
    th.Property(
        "track_url",
        th.StringType,
        description="Base URL for Track events (default: the region's data host, "
        "https://data.pendo.io in 'us'; 'api_url' when that is set). https:// only, except "
        "to a loopback address.",
    ),
    th.Property(
        "state_dir",
        th.StringType,
        default=DEFAULTS["state_dir"],
        description="Directory for rejects files and run reports.",
    ),
    th.Property(
        "streams",
        th.ObjectType(additional_properties=STREAM_SPEC_SCHEMA),
        description="Singer stream name -> sync spec; the key '*' applies to every "
        "stream not listed.",
    ),
    th.Property(
        "ledger_url",
        th.StringType,
        secret=True,
        description="SQLAlchemy URL of the sync ledger (e.g. postgresql+psycopg://user@host/"
        "db). Default: SQLite at state_dir/ledger.sqlite3.",
    ),
    th.Property(
        "retry_pending_days",
        th.NumberType,
        default=DEFAULTS["retry_pending_days"],
        description="Object rows Pendo could not take yet (an id it does not have, a value it "
        "failed) wait in the ledger and are sent again by each run of their stream, with no "
        "row from the tap, for this many days; then they are dropped and counted. 0: no "
        "retries.",
    ),
    th.Property(
        "retention_days",
        th.NumberType,
        default=DEFAULTS["retention_days"],
        description="Days a run's history is kept: its sync_rows lines, report, call log, "
        "dry-run payloads and rejects and unknown-id files. Older history is pruned at the "
        "end of each successful run (a bounded amount per run) and by 'target-pendo ledger "
        "prune'; what Pendo holds and what is pending (row_state) is never pruned by age. "
        "0: keep everything.",
    ),
    th.Property(
        "ledger_wait_seconds",
        th.NumberType,
        default=DEFAULTS["ledger_wait_seconds"],
        description="How long a run waits for another run that is syncing the same stream "
        "on the same ledger before it stops with a message naming that run (two writers "
        "would send events twice).",
    ),
    th.Property(
        "full_resync",
        th.BooleanType,
        default=DEFAULTS["full_resync"],
        description="Send every object row again, changed or not (events are still sent "
        "once); deletes are not applied. Also the CLI flag --full-resync.",
    ),
    th.Property(
        "max_delete_fraction",
        th.NumberType,
        default=DEFAULTS["max_delete_fraction"],
        description="A run that would clear or delete more than this fraction of a "
        "stream's objects in Pendo stops and sends no deletes.",
    ),
    th.Property(
        "max_rejected_fraction",
        th.NumberType,
        default=DEFAULTS["max_rejected_fraction"],
        description="A run whose rejected rows exceed this fraction of a stream's rows "
        "delivers the rest, then exits non-zero so orchestrator alerting fires.",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=DEFAULTS["dry_run"],
        description="Map, validate and diff everything, write the payloads it would send "
        "under state_dir/dry_run/, send nothing and leave the ledger as it is.",
    ),
    th.Property(
        "rejects_include_values",
        th.BooleanType,
        default=DEFAULTS["rejects_include_values"],
        description="Write each rejected row's values to state_dir/rejects/<stream>/<day>.jsonl "
        "(default). false: its key, field and reason only, with quoted values in the reason "
        "masked, for teams that may not keep customer data outside the warehouse.",
    ),
    th.Property(
        "call_log",
        th.BooleanType,
        default=DEFAULTS["call_log"],
        description="Write every API call (method, URL, status, latency, attempt, bodies; "
        "secrets redacted) to state_dir/calls/<run>.jsonl.",
    ),
    th.Property(
        "unmapped_streams",
        th.StringType,
        default=DEFAULTS["unmapped_streams"],
        allowed_values=["fail", "skip"],
        description="A stream not in 'streams': 'fail' the run (default) or 'skip' it.",
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType,
        default=DEFAULTS["max_concurrency"],
        description="The most requests in flight at once, all endpoints together. Below it, "
        "each endpoint's number (Track, the /api/v1 routes) follows its pace and the round "
        "trip measured (rate x round trip, with a quarter more); unpaced "
        "(max_requests_per_second 0), it is this.",
    ),
    th.Property(
        "max_requests_per_second",
        th.NumberType,
        description="Optional ceiling on requests per second to Pendo, per endpoint (Track, "
        "the /api/v1 routes), all streams together. Unset (the default): adaptive pacing "
        "learns Pendo's limit from its answers (slow start, cut on 429). 0: no client-side "
        "pacing at all (the emulator, a proxy that paces).",
    ),
    th.Property(
        "request_timeout",
        th.NumberType,
        default=DEFAULTS["request_timeout"],
        description="Seconds to wait for one Pendo answer before retrying (a metadata call "
        "that takes longer is halved instead). Also bounds how long a stop on SIGTERM waits "
        "for the calls on the wire.",
    ),
    th.Property(
        "max_retry_seconds",
        th.NumberType,
        default=DEFAULTS["max_retry_seconds"],
        description="How long one call is retried (429, 5xx, timeouts) before the run fails.",
    ),
    # The SDK adds these two to every target; here they would change nothing, so they are
    # declared to say so, and any value but the default is refused (settings.py).
    th.Property(
        "add_record_metadata",
        th.BooleanType,
        default=DEFAULTS["add_record_metadata"],
        title="Add Record Metadata",
        description="Not used: Pendo is never sent the SDK's _sdc_ metadata columns. Only "
        "false (the default) is accepted.",
    ),
    th.Property(
        "load_method",
        th.StringType,
        default=DEFAULTS["load_method"],
        allowed_values=["append-only"],
        description="Not used: events are sent once by their key and objects update "
        "existing Pendo records by id. Only 'append-only' (the default) is accepted; "
        "'upsert' and 'overwrite' are refused.",
    ),
    th.Property(
        "alert_webhook_url",
        th.StringType,
        secret=True,
        description="Incoming-webhook URL (Slack, Teams, PagerDuty's events bridge) that "
        'gets one JSON message {"text": ...} per run that failed, was stopped by a '
        "signal, or rejected more than max_rejected_fraction; no keys or row values in it.",
    ),
)


def declared_schema() -> dict[str, Any]:
    """A fresh copy of the settings' JSON schema. The SDK adds its built-in settings
    (`validate_records`, ...) to the schema a target class holds, in place: tests that want
    only what is declared here take a copy of their own."""
    return _SETTINGS.to_dict()
