"""The Singer input: numbered lines, BATCH files, record validation, full-table versions."""
