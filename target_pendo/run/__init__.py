"""One run: what it shares with its sinks (``context.py``), the only writer of what became of
a row (``recorder.py``, naming its outcomes in ``outcomes.py``; rejects and unknown ids in
``rejects.py``), the HTTP workers every sink shares, and the retention window."""
