"""When a full-table sync is complete, from Singer's ACTIVATE_VERSION messages. Pure.

Taps mark a full-table sync with a version: records carry it, and ACTIVATE_VERSION announces
it. When they send that message differs, and deletes depend on telling the cases apart:
- taps in the Stitch / PipelineWise tradition send it before the first full-table sync and
  again *after* each one completes;
- singer-sdk taps (0.54, `emit_activate_version_messages`) send it once, when the sync
  *begins* (``Stream.sync``), and nothing when it ends.

An id absent from a full-table sync may be deleted only when the sync is known to be complete,
so a version counts as complete only on evidence that it ended: a second ACTIVATE_VERSION for
it, or one that follows records of that version. A sync the tap abandoned after its opening
message (or a singer-sdk tap's sync) is never complete here, and deletes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FullTableVersions:
    """What one stream's ACTIVATE_VERSION messages and record versions said during a run."""

    announced: set[int] = field(default_factory=set)
    with_records: set[int] = field(default_factory=set)
    completed: int | None = None  # the latest version seen complete

    def record(self, version: int | None) -> None:
        """A RECORD of this stream arrived, carrying `version` (None: no version field)."""
        if version is not None:
            self.with_records.add(version)

    def activate(self, version: int) -> bool:
        """An ACTIVATE_VERSION arrived; True when it proves `version` complete."""
        done = version in self.announced or version in self.with_records
        self.announced.add(version)
        if done and (self.completed is None or version >= self.completed):
            self.completed = version
        return done

    @property
    def incomplete(self) -> list[int]:
        """Versions announced but never seen complete (a sync that may have stopped early)."""
        return sorted(v for v in self.announced if self.completed is None or v > self.completed)
