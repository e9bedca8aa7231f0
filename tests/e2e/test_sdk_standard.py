"""The singer-sdk's standard target tests, run against a real emulator over HTTP.

Every test stream is routed to events (visitor = its id column), so the SDK's sample files go
through mapping, the client and the emulator; rows the SDK files leave without an id, or whose
id is not a valid Pendo id, land in the rejects file instead of failing the run.
"""

from __future__ import annotations

import atexit
import tempfile

from singer_sdk.testing import get_target_test_class

from pendo_emulator import DEMO_TRACK_SECRET, Emulator
from target_pendo.target import TargetPendo

_EMULATOR = Emulator().start()
atexit.register(_EMULATOR.stop)


def _spec(visitor_column: str) -> dict:
    # Some SDK sample streams declare no key: the visitor column doubles as the event key.
    return {
        "event_name": "SDK Standard Test",
        "visitor_id_column": visitor_column,
        "primary_key_column": visitor_column,
    }


SDK_TEST_CONFIG = {
    "api_url": _EMULATOR.url,
    "track_event_secret": DEMO_TRACK_SECRET,
    "state_dir": tempfile.mkdtemp(prefix="target-pendo-sdk-tests-"),
    "max_requests_per_second": 0,
    "max_retry_seconds": 5,
    "max_rejected_fraction": 1,  # some SDK sample rows have no usable visitor id
    "streams": {
        "*": _spec("id"),
        "TestCamelcase": _spec("Id"),
        "ForecastingTypeToCategory": _spec("Id"),
        "test:SpecialChars!in?attributes": _spec("_id"),
        "test_object_schema_with_properties": _spec("object_store"),
        "test_object_schema_no_properties": _spec("object_store"),
    },
}

TestTargetPendoStandard = get_target_test_class(
    TargetPendo, config=SDK_TEST_CONFIG, parse_env_config=False
)


def test_standard_suite_reached_the_emulator() -> None:
    """Guards against a suite that passes without sending anything (runs after the class)."""
    assert _EMULATOR.request_counts().get("POST /data/track", 0) > 0
