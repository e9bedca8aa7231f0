"""Shared fixtures: a real emulator over HTTP on a free localhost port, per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from target_pendo.emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def base_config(emulator: Emulator, tmp_path) -> dict:
    """A config pointing at the emulator, fast enough for tests (no client rate limit cap)."""
    return {
        "api_url": emulator.url,
        "track_event_secret": DEMO_TRACK_SECRET,
        "integration_key": DEMO_INTEGRATION_KEY,
        "state_dir": str(tmp_path / "state"),
        "max_requests_per_second": 10000,
        "max_retry_seconds": 10,
        "request_timeout": 5,
    }
