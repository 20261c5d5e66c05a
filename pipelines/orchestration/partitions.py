"""A partitioned source's Dagster partitions: one static partition per tile file, or one
time-window partition per UTC day.

The tile keys are the tiles' (`citypipe.core.partitions`) as the files are when the code location
loads: a tile added later shows once the location reloads (the UI's "Reload", `dagster dev`
restarted), as Dagster's static partitions do. The days run from the entry's first day to
yesterday, a new one each midnight (UTC) without a reload. The UI backfills any of them, the CLI
runs some (`citypipe run --source NAME --partition KEY`, or `FIRST..LAST`) or all, in parallel
(`parallel.py`).
"""

from __future__ import annotations

from dagster import DailyPartitionsDefinition, PartitionsDefinition, StaticPartitionsDefinition

from citypipe.core import partitions
from citypipe.core.catalog import Source
from citypipe.core.lake import Lake

__all__ = ["partitions_def", "to_run"]


def partitions_def(source: Source) -> PartitionsDefinition | None:
    """The source's partitions, None for a source that has none."""
    if source.partitions is not None:
        start = source.partitions.daily.strftime(partitions.DAY)
        return DailyPartitionsDefinition(start_date=start, timezone="UTC", end_offset=0)
    if not source.partitioned:
        return None
    return StaticPartitionsDefinition(list(source.tile_files()))


def to_run(source: Source, asked: list[str] | None, lake: Lake) -> list[str]:
    """The partitions of `source` a run ingests: those `asked` names (keys or ranges), else
    every tile, or every day not yet in the `lake` (a day that landed is harvested again only
    when named: a backfill)."""
    keys = source.partition_keys()
    if asked:
        return partitions.chosen(source.name, asked, keys)
    if source.partitions is None:
        return keys
    return [d for d in keys if lake.footer("features", partitions.unit(source.name, d)) is None]
