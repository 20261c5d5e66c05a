"""When each step of an ingest begins and ends, on which thread: a wall timeline (issue 17).

bench/ingest_split.py tells each step's CPU; this tells where the wall goes between the
threads: the run's, the CRS84 worker's (PROJ, the solids placed and measured beside) and the
features' encoding thread, and where one waits for another (`begun.wait`: the run's thread
for the solids on the worker). Each step is wrapped to stamp perf_counter (from the ingest's
start) and its thread CPU; `read.N` is the connector's N-th batch (its last, the end of the
read). Printed: the fastest ingest of `--repeat` after three warm-ups, its steps by when they
began, and the median of the run's wait for the worker.

    python bench/ingest_timeline.py FILE [--repeat 30] [--crs EPSG:7415]
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any

from ingest_split import file_arguments  # bench/ingest_split.py

from citypipe.connectors import registry
from citypipe.core import crs84, geometry, harmonise, lake, lake_layout, order, rows, write
from citypipe.core import ingest as ingesting
from citypipe.core import measure as measuring

Event = tuple[str, str, float, float, float]
"""A step's thread, name, begin and end (ms from the ingest's start), and thread CPU (ms)."""

STEPS: tuple[tuple[Any, str, str], ...] = (
    (harmonise.Harmoniser, "harmonise", "harmonise"),
    (harmonise.Harmoniser, "_properties", "harmonise.properties"),
    (harmonise.Harmoniser, "_filled", "harmonise.columns"),
    (geometry.Placer, "place", "place"),
    (geometry, "_footprints", "place.footprints"),
    (geometry, "measure", "place.measure"),
    (geometry, "_repair", "place.repair"),
    (crs84, "to_crs84", "place.to_crs84"),
    (crs84._Worker, "_moved", "worker.proj"),
    (crs84, "_placed", "worker.placed"),
    (measuring, "_solids", "measure.solids"),
    (rows.FeatureRows, "batch", "rows.batch"),
    (order.OrderedWriter, "write", "features.write"),
    (order.OrderedWriter, "seal", "features.seal"),
    (order.OrderedWriter, "_write_ordered", "features.sorted"),
    (order.OrderedWriter, "wait", "features.wait"),
    (write.GeoParquetWriter, "write", "parquet.write"),
    (write.GeoParquetWriter, "close", "parquet.close"),
)


class Timeline:
    """The events of one ingest at a time (`start` clears them)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.began = 0.0

    def start(self) -> None:
        self.events = []
        self.began = time.perf_counter()

    def stamp(self, label: str, began: float, cpu: float) -> None:
        thread = threading.current_thread().name.split("_")[0]
        ms = [(t - self.began) * 1e3 for t in (began, time.perf_counter())]
        self.events.append((thread, label, *ms, (time.thread_time() - cpu) * 1e3))

    def timed(self, function: Callable[..., Any], label: str) -> Callable[..., Any]:
        @wraps(function)
        def stamped(*args: Any, **kwargs: Any) -> Any:
            began, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.stamp(label, began, cpu)

        return stamped

    def batches(self, read: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        """A connector's `read`, each batch's making stamped (`read.N`)."""

        @wraps(read)
        def stamped(*args: Any, **kwargs: Any) -> Iterator[Any]:
            made = read(*args, **kwargs)
            for k in itertools.count():
                began, cpu = time.perf_counter(), time.thread_time()
                batch = next(made, None)
                self.stamp(f"read.{k}", began, cpu)
                if batch is None:
                    return
                yield batch

        return stamped

    def waited(self, begin: Callable[..., Any]) -> Callable[..., Any]:
        """`_Worker.begin`, the run's wait for the solids it hands back stamped."""

        @wraps(begin)
        def stamped(*args: Any, **kwargs: Any) -> Callable[[], Any]:
            begun = begin(*args, **kwargs)
            return self.timed(begun, "begun.wait")

        return stamped


def _instrument(path: Path, timeline: Timeline) -> None:
    for owner, name, label in STEPS:
        stamped = timeline.timed(getattr(owner, name), label)
        static = isinstance(vars(owner).get(name), staticmethod)
        setattr(owner, name, staticmethod(stamped) if static else stamped)
    connector = type(registry.open_location(path, None))
    connector.read = timeline.batches(connector.read)  # type: ignore[method-assign]
    crs84._Worker.begin = timeline.waited(crs84._Worker.begin)  # type: ignore[method-assign]
    ingesting.Harmoniser = harmonise.Harmoniser  # imported by name: the wrapped class's


def timelines(path: Path, repeat: int, crs: str | None = None) -> list[tuple[float, list[Event]]]:
    """Each ingest's wall (ms) and events, after three warm-ups, fastest first."""
    timeline = Timeline()
    _instrument(path, timeline)
    target = lake.Lake(Path(tempfile.mkdtemp(prefix="citypipe-timeline-")))
    runs = []
    for i in range(repeat + 3):
        timeline.start()
        ingesting.ingest(path, "bench", target, crs=crs, validate=False, render_docs=False)
        if i >= 3:
            runs.append(((time.perf_counter() - timeline.began) * 1e3, timeline.events))
    lake_layout.removed()
    return sorted(runs, key=lambda run: run[0])


def main() -> None:
    args = file_arguments(__doc__.splitlines()[0], 30)
    runs = timelines(args.file, args.repeat, args.crs)
    walls = [wall for wall, _ in runs]
    waits = [sum(e[3] - e[2] for e in events if e[1] == "begun.wait") for _, events in runs]
    print(
        f"{args.file.name}: wall min / median {min(walls):.1f} / {statistics.median(walls):.1f} ms"
    )
    print(f"the run's wait for the worker, median {statistics.median(waits):.2f} ms")
    print(f"the fastest ingest, ms from its start:{'':19}begin      end      CPU")
    for thread, label, began, ended, cpu in sorted(runs[0][1], key=lambda e: e[2]):
        print(f"  {thread:16} {label:22} {began:8.2f} {ended:8.2f} {cpu:8.2f}")


if __name__ == "__main__":
    main()
