"""Everything that speaks to Pendo: ``api.py`` (Pendo's routes, body keys and limits),
``client.py`` (Pendo's operations, each with a typed answer from ``answers.py``),
``transport.py`` (how a request travels: pacing, calls in flight, retries, the call log), and
``dryrun.py`` (the adapter that records writes instead of sending them). Which calls run side
by side is the sinks' decision.
"""
