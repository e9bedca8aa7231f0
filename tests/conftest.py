"""Shared fixtures: a real emulator over HTTP on a free localhost port, per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pendo_emulator import DEMO_INTEGRATION_KEY, DEMO_TRACK_SECRET, Emulator


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
        "max_requests_per_second": 0,  # no client-side pacing against the emulator
        # unpaced, max_concurrency calls go at once: the old 8, so that two test workers on
        # two cores are not 128 threads (tests of the default set neither)
        "max_concurrency": 8,
        "max_retry_seconds": 10,
        "request_timeout": 5,
        # many tests reject most of their rows on purpose; the alert has tests of its own
        "max_rejected_fraction": 1,
    }


@pytest.fixture(scope="session")
def postgres_server():
    from .pg import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_config(request, base_config: dict) -> dict:
    """base_config with the ledger on SQLite (the default) or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return dict(base_config)
    server = request.getfixturevalue("postgres_server")
    return {**base_config, "ledger_url": server.new_database()}


# --- markers: `pytest -m unit` (no emulator, no target process), `-m e2e`, `-m postgres` ---
# Tests live where what they test lives: tests/unit/<package path>/test_<module>.py for one
# module, tests/e2e/ for the target as a whole (the CLI, Meltano, README's commands, runs
# against the emulator). A test is e2e when it is in tests/e2e/ or needs the emulator (its
# fixtures: a module's tests against a live emulator); everything else is unit.
E2E_FIXTURES = {"emulator", "base_config", "ledger_config"}
E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = {str(v) for v in callspec.params.values()} if callspec else set()
        if "postgres_server" in fixtures or "postgres" in params:
            item.add_marker(pytest.mark.postgres)
        in_e2e = E2E_DIR in Path(str(getattr(item, "path", ""))).parents
        if in_e2e or fixtures & E2E_FIXTURES:
            item.add_marker(pytest.mark.e2e)
        else:
            item.add_marker(pytest.mark.unit)
