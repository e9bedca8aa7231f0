"""Tests of target_pendo/mapping."""
