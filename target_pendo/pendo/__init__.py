"""Everything that speaks to Pendo: ``client.py`` (its operations), ``transport.py`` (how a
request travels) and ``dryrun.py``. Which calls run side by side is the sinks' decision."""
