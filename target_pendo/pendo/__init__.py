"""Everything that speaks to Pendo, in layers that each do one job:

- ``api.py``: Pendo's routes, body keys and limits, each written once;
- ``client.py``: Pendo's operations (a Track event, a metadata write, a field schema read, a
  bulk delete, the key checks), each returning a typed answer (``answers.py``) or raising a
  typed error that names the setting to fix;
- ``transport.py``: how a request travels (keep-alive sessions, pacing from ``ratelimit.py``,
  retries from ``retry.py``, the call log from ``calllog.py``, observers told of each
  attempt through ``attempts.py``); what carries the bytes is a requests adapter;
- ``dryrun.py``: the adapter of a dry run, which records writes instead of sending them.

Which calls run side by side is not decided here but by the sinks, which own what each answer
means for their rows (``sinks/track_calls.py``, ``workers.py``).
"""
