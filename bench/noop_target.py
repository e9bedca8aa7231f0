"""The SDK's own cost: a singer-sdk target whose BatchSink does nothing with its batches.

Same SDK version and defaults (record validation on) as target-pendo, so "target-pendo ÷ this"
is what target-pendo adds on top of the SDK.
"""

from __future__ import annotations

from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink
from singer_sdk.target_base import Target


class NoopSink(BatchSink):
    MAX_SIZE_DEFAULT = 5000

    def process_batch(self, context: dict) -> None:
        """Drop the batch."""


class NoopTarget(Target):
    name = "target-noop"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = NoopSink


if __name__ == "__main__":
    NoopTarget.cli()
