"""The dry run's transport: the client's own calls, with every write recorded and answered as
Pendo answers a write that worked, every read sent to Pendo."""

from __future__ import annotations

import json
import time
from pathlib import Path

from target_pendo.emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator
from target_pendo.pendo.answers import CallOutcome, MetadataAnswer
from target_pendo.pendo.client import PendoClient
from target_pendo.pendo.dryrun import DRY_RUN_JOB_ID, RecordingAdapter
from target_pendo.redact import Redactor
from target_pendo.rejects import RowLog


def recording_client(api_url: str, folder: Path) -> tuple[PendoClient, RowLog]:
    redact = Redactor([DEMO_TRACK_SECRET, DEMO_INTEGRATION_KEY])
    payloads = RowLog(folder, "dry_run/r1", "r1", redact)
    client = PendoClient(
        api_url,
        track_event_secret=DEMO_TRACK_SECRET,
        integration_key=DEMO_INTEGRATION_KEY,
        max_requests_per_second=0,
        request_timeout=5,
        max_retry_seconds=5,
        redact=redact,
        adapter=lambda: RecordingAdapter(payloads, redact, (api_url,)),
        sends=False,
    )
    return client, payloads


def recorded(folder: Path, stream: str) -> list[dict]:
    path = folder / "dry_run" / "r1" / f"{stream}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_are_recorded_by_stream_and_answered_as_pendo_would(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.seed("visitor", group="custom", fields={"plan": "string"})
    client, payloads = recording_client(emulator.url, tmp_path)
    try:
        body = json.dumps({"type": "track", "event": "E", "visitorId": "v-1"}).encode()
        track = client.track(body, stream="events")
        items = [{"visitorId": f"v-{i}", "values": {"plan": "gold"}} for i in range(3)]
        answer = client.update_metadata(
            "visitor", "custom", json.dumps(items).encode(), 3, stream="users"
        )
        created = client.create_fields(
            "visitor", "custom", [{"name": "tier", "displayname": "Tier", "type": "string"}]
        )
        schema = client.get_field_schema("visitor")
        started = time.monotonic()
        jobs = client.bulk_delete("visitor", [f"v-{i}" for i in range(1200)], stream="users")
        elapsed = time.monotonic() - started
    finally:
        client.close()
        payloads.close()
    assert track.outcome is CallOutcome.ACCEPTED
    assert isinstance(answer, MetadataAnswer)
    assert (answer.updated, answer.failed) == (3, 0)
    assert created is True
    assert "plan" in schema["custom"]  # the read went to Pendo
    assert jobs == [DRY_RUN_JOB_ID] * 3  # 500 ids a call
    assert elapsed < 1.0  # nothing to spare: no second between recorded deletes
    assert emulator.request_counts() == {"GET /api/v1/metadata/schema/visitor": 1}
    assert emulator.events() == []
    (event,) = recorded(tmp_path, "events")
    assert (event["path"], event["body"]["visitorId"]) == ("/data/track", "v-1")
    users = recorded(tmp_path, "users")
    assert [u["path"] for u in users] == [
        "/api/v1/metadata/visitor/custom/value",
        *["/api/v1/bulkdelete/visitor"] * 3,
    ]
    assert users[0]["body"] == items
    (fields,) = recorded(tmp_path, "_")  # a call of no stream
    assert fields["path"] == "/api/v1/metadata/schema/visitor/custom"
    text = "".join(p.read_text() for p in (tmp_path / "dry_run" / "r1").iterdir())
    assert DEMO_INTEGRATION_KEY not in text
    assert DEMO_TRACK_SECRET not in text


def test_a_host_with_a_path_records_the_route(tmp_path: Path) -> None:
    """Behind a proxy the host's URL has a path of its own; the record names Pendo's route.
    Nothing listens on the host: a write never leaves the process."""
    client, payloads = recording_client("http://127.0.0.1:9/pendo-proxy", tmp_path)
    try:
        result = client.track(b'{"visitorId": "v"}', stream="s")
    finally:
        client.close()
        payloads.close()
    assert result.outcome is CallOutcome.ACCEPTED
    assert [r["path"] for r in recorded(tmp_path, "s")] == ["/data/track"]
