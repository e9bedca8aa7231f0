"""When a full-table sync is complete, from Singer's ACTIVATE_VERSION messages. Pure. Stitch /
PipelineWise taps send it before a full-table sync and again *after* it; singer-sdk taps (0.54)
only when it *begins*. Absent ids may be deleted only after a sync proven complete: a second
ACTIVATE_VERSION for it, or one that follows its records."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FullTableVersions:
    """What one stream's ACTIVATE_VERSION messages and record versions said during a run."""

    announced: set[int] = field(default_factory=set)
    with_records: set[int] = field(default_factory=set)  # versions RECORDs carried
    completed: int | None = None  # the latest version seen complete

    def activate(self, version: int) -> None:
        """An ACTIVATE_VERSION arrived: it proves `version` complete if it came before."""
        done = version in self.announced or version in self.with_records
        self.announced.add(version)
        if done and (self.completed is None or version >= self.completed):
            self.completed = version

    @property
    def incomplete(self) -> list[int]:
        """Versions announced but never seen complete (a sync that may have stopped early)."""
        return sorted(v for v in self.announced if self.completed is None or v > self.completed)
