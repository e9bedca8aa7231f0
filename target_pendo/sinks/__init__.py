"""Sinks: one per Singer stream, chosen by the stream's `sync` setting."""

from target_pendo.sinks.events import EventsSink
from target_pendo.sinks.objects import ObjectsSink
from target_pendo.sinks.skip import SkipSink

__all__ = ["EventsSink", "ObjectsSink", "SkipSink"]
