"""Rows to Pendo payloads, without I/O: Track bodies and JSON, object fields, value types."""
