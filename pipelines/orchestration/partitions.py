"""A partitioned source's Dagster partitions: one static partition per tile file.

The keys are the tiles' (`citypipe.core.partitions`) as the files are when the code location
loads: a tile added later shows once the location reloads (the UI's "Reload", `dagster dev`
restarted), as Dagster's static partitions do. The UI backfills any of them, the CLI runs one
(`citypipe run --source NAME --partition KEY`) or all in parallel (`parallel.py`).
"""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from citypipe.core.catalog import Source

__all__ = ["partitions_def"]


def partitions_def(source: Source) -> StaticPartitionsDefinition | None:
    """The source's partitions, None for a source that has none."""
    if not source.partitioned:
        return None
    return StaticPartitionsDefinition(list(source.tile_files()))
