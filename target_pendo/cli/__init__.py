"""The `target-pendo` command (``main.py``), what its commands share (``options.py``) and the
subcommands ``check.py``, ``ledger.py`` and ``report.py``. It imports the target; nothing
outside imports it but the entry points. A module is imported by its name, not from here.
"""
