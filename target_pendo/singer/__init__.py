"""The Singer input: lines read with their numbers (``reader.py``), BATCH files, a record's
schema check (``validation.py``) and when a full-table sync is complete (``versions.py``)."""
