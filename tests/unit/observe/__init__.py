"""Tests of target_pendo/observe."""
