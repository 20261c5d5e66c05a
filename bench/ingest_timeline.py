"""The wall timeline of an ingest: which steps run one after another on the run's thread, which
run on other threads (the input's hash, the features' encoding, the flushes, the removal of
replaced runs), and where the run's thread waits for them (issue 17's fixed cost by wall).

Each step (bench/ingest_split.py's, and the steps between them) is stamped by perf_counter as
it begins and ends, with the thread it runs on, in `--repeat` ingests after three warm-ups;
printed for the ingest of median wall time (its steps as they began, indented by how deep each
is called), with each step's median length over all; `(own)` is the run's thread's time no
step claims. The ingests follow one another as in `bench/run.py --measure`, each waiting
for the removal of the run it replaced (on its thread, stamped with it).

    python bench/ingest_timeline.py FILE [--repeat 40] [--crs EPSG:25832]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from cityjson_stages import _timed_iterator  # bench/cityjson_stages.py
from ingest_split import (  # bench/ingest_split.py: the steps of an ingest, its arguments
    STEPS,
    file_arguments,
)

from citypipe.connectors import registry
from citypipe.core import (
    attempt,
    harmonise,
    incremental_harvest,
    lake,
    lake_layout,
    observations,
    order,
    write,
)
from citypipe.core import ingest as ingesting

MORE: tuple[tuple[Any, str, str], ...] = (
    (incremental_harvest.Delta, "__init__", "delta.init"),
    (incremental_harvest.Delta, "merge", "delta.merge"),
    (order.OrderedWriter, "seal", "features.seal"),
    (order.OrderedWriter, "wait", "features.wait"),
    (write.BesideWriter, "close", "surfaces.close"),
    (write.BesideWriter, "wait", "surfaces.wait"),
    (observations.ObservationStage, "__init__", "observations.init"),
    (observations.ObservationStage, "close", "observations.close"),
    (lake_layout, "_remove", "lake.remove"),
    (lake_layout, "fsync_together", "commit.flush_together"),
    (attempt.Attempt, "_empty_copied", "commit.empty_linked"),
    (os, "fsync", "os.fsync"),
    (order.OrderedWriter, "_row_distances", "features.keys"),
    (order.OrderedWriter, "_write_ordered", "features.ordered"),
    (write.GeoParquetWriter, "_open", "geoparquet.open"),
    (write._ColumnStats, "add", "geoparquet.stats"),
    (pq.ParquetWriter, "write_batch", "parquet.write_batch"),
    (pq.ParquetWriter, "write_table", "parquet.write_table"),
)

Event = tuple[str, str, int, float, float]
"""label, thread, depth, begin, end (perf_counter seconds)."""
_events: list[Event] = []
_depth = threading.local()


def _stamped(owner: Any, name: str, label: str) -> None:
    """`owner.name` replaced by a wrapper that keeps when it began and ended, on which thread."""
    function: Callable[..., Any] = getattr(owner, name)

    def stamped(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "n", 0)
        _depth.n = depth + 1
        begin = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            end = time.perf_counter()
            _depth.n = depth
            _events.append((label, threading.current_thread().name, depth, begin, end))

    setattr(owner, name, stamped)


def _instrument(path: Path) -> Callable[..., Any]:
    connector = type(registry.open_location(path, None))
    for owner, name, label in (*STEPS, *MORE):
        _stamped(owner, name, label)
    _stamped(connector, "inspect", "inspect")
    _timed_iterator(connector, "read", "read", _stamped)
    ingesting.Harmoniser = harmonise.Harmoniser
    _stamped(ingesting, "ingest", "ingest")
    return ingesting.ingest


def _thread(name: str) -> str:
    """A pool's thread by its pool (`citypipe-flush_0` -> `citypipe-flush`)."""
    return name.rsplit("_", 1)[0] if name != "MainThread" else "main"


Step = tuple[str, str, int, int]
"""label, thread, depth, rank among the same label, thread and depth in its ingest."""


def timeline(path: Path, repeat: int, crs: str | None = None) -> list[dict[Step, tuple]]:
    """Each ingest's steps, (begin, end) from its start (seconds), after three warm-ups."""
    ingest = _instrument(path)
    target = lake.Lake(Path(tempfile.mkdtemp(prefix="citypipe-timeline-")))
    runs = []
    for i in range(repeat + 3):
        _events.clear()
        ingest(path, "bench", target, crs=crs, validate=False, render_docs=False)
        lake_layout.removed()  # the replaced run's removal stamped with this ingest
        if i < 3:
            continue
        start = next(e[3] for e in _events if e[0] == "ingest")
        seen: dict[tuple, int] = defaultdict(int)
        steps: dict[Step, tuple] = {}
        for label, thread, depth, begin, end in sorted(_events, key=lambda e: e[3]):
            key = (label, _thread(thread), depth)
            steps[(*key, seen[key])] = (begin - start, end - start)
            seen[key] += 1
        steps[("(own)", "main", 1, 0)] = (0.0, _own(_events))
        runs.append(steps)
    return runs


def _own(events: list[Event]) -> float:
    """The run's thread's time in the ingest that no step under it claims."""
    top = next(e for e in events if e[0] == "ingest")
    claimed = sum(e[4] - e[3] for e in events if e[1] == "MainThread" and e[2] == 1)
    return top[4] - top[3] - claimed


def main() -> None:
    args = file_arguments(__doc__.splitlines()[0], 40)
    runs = timeline(args.file, args.repeat, args.crs)
    total = ("ingest", "main", 0, 0)
    runs.sort(key=lambda steps: steps[total][1])
    middle = runs[len(runs) // 2]
    print(
        f"the ingest of median wall of {args.repeat} of {args.file.name}: ms from its start; "
        "the median length of each step over all"
    )
    print(f"{'step':40} {'thread':16} {'begin':>7} {'end':>7} {'length':>7} {'median':>7}")
    for key, (begin, end) in sorted(middle.items(), key=lambda s: s[1][0]):
        label, thread, depth, rank = key
        median = statistics.median(s[key][1] - s[key][0] for s in runs if key in s)
        name = "  " * depth + label + (f" #{rank}" if rank else "")
        length = end - begin
        print(
            f"{name:40} {thread:16} {begin * 1e3:7.2f} {end * 1e3:7.2f} {length * 1e3:7.2f} "
            f"{median * 1e3:7.2f}"
        )


if __name__ == "__main__":
    main()
