"""The plugin definition's commands, run through Meltano: `meltano invoke target-pendo:check`.

plugin/target-pendo.yml gives Meltano a command per subcommand of `target-pendo --help`
(`check`, `ledger-status`, `ledger-reset`, ...). Meltano runs one as `target-pendo --config=ENV
<subcommand> <the words after it>`, with no config file: the target reads the settings Meltano
hands it as TARGET_PENDO_* variables (`streams` among them, flattened, which it nests again).
e2e/run.py calls `check_plugin_commands` once README's blocks ran (the project has synced, its
ledger has keys): check, ledger-status, ledger-reset, ledger-prune and report must find the
Pendo keys, the ledger and its runs as README's `meltano invoke target-pendo <subcommand>`
does, and ledger-reset must get the `--stream` given after it. Not ledger-retry: it is a run of
its own, whose report later checks would read.

Meltano Hub's own fields of the definition (keywords, domain_url, maintenance_status) are not
kept by `meltano add --from-ref`: `as_meltano_adds_it` is the definition without them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

PLUGIN = "target-pendo"
EVENTS = "analytics-product_events"  # a stream of e2e/warehouse.sql, as tap-postgres names it
NO_SUCH_STREAM = "e2e-no-such-stream"

CHECK = ["invoke", f"{PLUGIN}:check"]
LEDGER_STATUS = ["invoke", f"{PLUGIN}:ledger-status"]
# A stream the ledger does not have: forgets nothing, so later checks read the ledger as it
# was; without the --stream passed on, the subcommand would stop with a usage error instead
LEDGER_RESET = ["invoke", f"{PLUGIN}:ledger-reset", "--stream", NO_SUCH_STREAM]
LEDGER_PRUNE = ["invoke", f"{PLUGIN}:ledger-prune"]
REPORT = ["invoke", f"{PLUGIN}:report"]
# The same subcommands the way README shows them (`--config FILE` from Meltano), to compare.
PLAIN_STATUS = ["invoke", PLUGIN, "ledger", "status"]
PLAIN_REPORT = ["invoke", PLUGIN, "report"]
# For e2e/run.py's OWN_COMMANDS: every Meltano command e2e runs is listed there.
PLUGIN_COMMANDS = [
    CHECK,
    LEDGER_STATUS,
    LEDGER_RESET,
    LEDGER_PRUNE,
    REPORT,
    PLAIN_STATUS,
    PLAIN_REPORT,
]

# Fields of Meltano Hub's plugin format that `meltano add --from-ref` leaves out of meltano.yml.
HUB_ONLY_FIELDS = ("keywords", "domain_url", "maintenance_status")


class MeltanoProject(Protocol):
    """What e2e/run.py's `Project` offers: a meltano command in the project, exit code 0 or
    SystemExit with its output."""

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]: ...


def as_meltano_adds_it(definition: dict[str, Any]) -> dict[str, Any]:
    """The plugin definition as `meltano add --from-ref` writes it to meltano.yml."""
    return {k: v for k, v in definition.items() if k not in HUB_ONLY_FIELDS}


def check_plugin_commands(project: MeltanoProject, check: Callable[[bool, str], None]) -> None:
    """Each command of the plugin definition e2e can run without changing what later checks
    read, through `meltano invoke target-pendo:<command>`."""
    print("The plugin definition's commands (meltano invoke target-pendo:<command>):", flush=True)
    out = project.run(*CHECK).stdout
    check(
        "track_event_secret: ok" in out and "integration_key: ok (valid, with write access)" in out,
        "`target-pendo:check` finds both keys right, from the settings Meltano hands over",
    )

    status = project.run(*LEDGER_STATUS).stdout
    check(
        f"{EVENTS}\tsent\t" in status,
        "`target-pendo:ledger-status` counts the keys per stream and status",
    )
    check(
        status == project.run(*PLAIN_STATUS).stdout,
        "and says what `meltano invoke target-pendo ledger status` says (the same ledger)",
    )

    out = project.run(*LEDGER_RESET).stdout
    check(
        f"forgot 0 key(s) of stream '{NO_SUCH_STREAM}'" in out,
        "`target-pendo:ledger-reset --stream NAME` gets the stream given after it",
    )

    out = project.run(*LEDGER_PRUNE).stdout
    check(
        "pruned history older than" in out and ": 0 run(s)," in out,
        "`target-pendo:ledger-prune` prunes no run (all are younger than retention_days)",
    )

    report = project.run(*REPORT).stdout
    check(
        report.startswith("Run ") and EVENTS in report,
        "`target-pendo:report` shows the latest run's report",
    )
    check(
        report == project.run(*PLAIN_REPORT).stdout,
        "the same report as `meltano invoke target-pendo report`",
    )
