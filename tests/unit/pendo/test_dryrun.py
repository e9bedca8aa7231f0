"""The dry run's transport: the client's own calls, with every write recorded and answered as
Pendo answers a write that worked, every read sent to Pendo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator
from target_pendo.errors import PendoAuthError
from target_pendo.observe.redact import Redactor
from target_pendo.pendo.answers import CallOutcome, MetadataAnswer
from target_pendo.pendo.client import API_SETTING, PendoClient
from target_pendo.pendo.dryrun import DRY_RUN_JOB_ID, RecordingAdapter
from target_pendo.run.rejects import RowLog


def recording_client(api_url: str, folder: Path, **keys: str | None) -> tuple[PendoClient, RowLog]:
    redact = Redactor([DEMO_TRACK_SECRET, DEMO_INTEGRATION_KEY])
    payloads = RowLog(folder, "dry_run/r1", "r1", redact)
    settings = {
        "track_event_secret": DEMO_TRACK_SECRET,
        "integration_key": DEMO_INTEGRATION_KEY,
        **keys,
    }
    client = PendoClient(
        api_url,
        **settings,
        max_requests_per_second=0,
        request_timeout=5,
        max_retry_seconds=5,
        redact=redact,
        adapter=lambda: RecordingAdapter(payloads, redact),
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


@pytest.mark.parametrize(
    ("api_url", "track_url"),
    [
        ("http://127.0.0.1:9/pendo-proxy", None),  # one host with a path of its own
        ("http://127.0.0.1:9", "http://127.0.0.1:9/api"),  # only the Track host has one
    ],
)
def test_a_host_with_a_path_records_the_route(
    tmp_path: Path, api_url: str, track_url: str | None
) -> None:
    """Behind a proxy a host's URL has a path of its own; the record names Pendo's route, and
    the answer is the route's. Nothing listens on the hosts: a write never leaves."""
    client, payloads = recording_client(api_url, tmp_path, track_url=track_url)
    try:
        result = client.track(b'{"visitorId": "v"}', stream="s")
        answer = client.update_metadata("visitor", "agent", b'[{"visitorId": "v"}]', 1, stream="s")
    finally:
        client.close()
        payloads.close()
    assert result.outcome is CallOutcome.ACCEPTED
    assert isinstance(answer, MetadataAnswer)
    assert answer.updated == 1
    assert [r["path"] for r in recorded(tmp_path, "s")] == [
        "/data/track",
        "/api/v1/metadata/visitor/agent/value",
    ]


def test_a_preview_needs_no_keys_but_a_read_does(tmp_path: Path) -> None:
    """A dry run's writes never leave, so they need no key; a read goes to Pendo and does."""
    client, payloads = recording_client(
        "http://127.0.0.1:9", tmp_path, track_event_secret=None, integration_key=None
    )
    try:
        assert client.track(b'{"visitorId": "v"}', stream="s").outcome is CallOutcome.ACCEPTED
        assert isinstance(
            client.update_metadata("visitor", "agent", b"[]", 0, stream="s"), MetadataAnswer
        )
        with pytest.raises(PendoAuthError, match="integration_key"):
            client.get_field_schema("visitor")
    finally:
        client.close()
        payloads.close()
    assert len(recorded(tmp_path, "s")) == 2


def test_every_method_but_get_and_head_is_recorded(emulator: Emulator, tmp_path: Path) -> None:
    client, payloads = recording_client(emulator.url, tmp_path)
    try:
        for method in ("PUT", "PATCH", "DELETE"):
            client.request(method, "/api/v1/metadata/visitor/custom/value", API_SETTING, b"[]")
    finally:
        client.close()
        payloads.close()
    assert [r["method"] for r in recorded(tmp_path, "_")] == ["PUT", "PATCH", "DELETE"]
    assert emulator.request_counts() == {}


def test_a_write_without_the_clients_call_is_a_bug(tmp_path: Path) -> None:
    """The adapter files a write under the call its wire request carries; a bare wire request
    (not the transport's) is no write to record."""
    redact = Redactor([])
    payloads = RowLog(tmp_path, "dry_run/r1", "r1", redact)
    adapter = RecordingAdapter(payloads, redact)
    bare = requests.Request("POST", "http://127.0.0.1:9/data/track", data=b"{}").prepare()
    try:
        with pytest.raises(RuntimeError, match="outside a client call"):
            adapter.send(bare)
    finally:
        adapter.close()
        payloads.close()
    assert not (tmp_path / "dry_run" / "r1" / "_.jsonl").exists()
