"""Tests of target_pendo/sinks."""
