"""The `target-pendo` command (``main.py``): the SDK's sync command and the subcommands, as one
click group, and what they share (``options.py``: `--config`, read once, before or after the
subcommand).

The subcommands: ``check.py`` (`check`: both keys against Pendo), ``ledger.py`` (`ledger
status|reset|retry|prune|export`) and ``report.py`` (`report`). This package
imports the target (a sync, `ledger retry`); nothing outside it imports this package but the
entry points, so no import goes the other way. Nothing is imported here: a module of the package
is imported by its name (`target_pendo.cli.main`).
"""
