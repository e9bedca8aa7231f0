"""Rows to Pendo payloads, without I/O: Track bodies and JSON encoding (``rows.py``), an object
stream's fields against Pendo's schema (``fields.py``) and each value typed (``coerce.py``)."""
