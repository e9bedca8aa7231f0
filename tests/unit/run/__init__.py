"""Tests of target_pendo/run."""
