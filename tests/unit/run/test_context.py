"""target_pendo.run.context: what one run shares with its sinks."""

from __future__ import annotations

import threading
from typing import Any

from target_pendo.run.context import RunContext


class HeldClient:
    """A client whose re-read of one kind's field schema is held until the test lets it go
    (an answer in its retry waits)."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.entered = threading.Event()
        self.release = threading.Event()

    def get_field_schema(self, kind: str) -> dict[str, Any]:
        if kind == self.held:
            self.entered.set()
            assert self.release.wait(30)
        return {"agent": {}, "custom": {kind: {"Type": "string"}}}


def run_with(client: HeldClient) -> RunContext:
    return RunContext(
        settings=None,
        client=client,
        workers=None,
        recorder=None,
        report=None,
        ledger=None,
        run_id="r",
    )


def test_a_fresh_read_does_not_hold_the_other_kinds():
    """A worker re-reading one kind's schema after a 400 may wait out retries; a new sink's
    first read of another kind goes on meanwhile."""
    client = HeldClient(held="visitor")
    run = run_with(client)
    reread = threading.Thread(target=run.field_schema, args=("visitor",), kwargs={"fresh": True})
    reread.start()
    assert client.entered.wait(30)
    other: dict[str, Any] = {}
    first = threading.Thread(target=lambda: other.update(run.field_schema("account")))
    first.start()
    first.join(10)
    waited = first.is_alive()  # still blocked while the other kind's re-read is held
    client.release.set()
    reread.join(30)
    first.join(30)
    assert not waited, "the first read of 'account' waited for the re-read of 'visitor'"
    assert "account" in other["custom"]
    assert run.field_schema("visitor")["custom"] == {"visitor": {"Type": "string"}}
