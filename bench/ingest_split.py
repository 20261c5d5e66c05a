"""Where an ingest's CPU goes, any format, the lake's steps included (issue 17's fixed cost).

Each step is timed by wrapping the function that does it, in one process, by the thread CPU
it spends itself (a wrapped step called inside another counts to its own line, not to the
caller's): the connector (`open` the format told, `inspect`, `read` each batch), harmonise's
own work beside the geometry's (`geometry.place`) and its rows, the writers (features,
surfaces, rejects; `geoparquet.write` is the Parquet encoding), the input's `fingerprint`, and
the lake (the run's lock, folder and sweep; the commit: its history row encoded and staged,
the files flushed, the links). What no step claims is `ingest.rest`: the ingest's own code,
and the cycle collector where it runs as the ingest returns (lxml's parsers keep a CityGML
run's tree for it). Printed: the median of each step over `--repeat` ingests after three
warm-ups, largest first, and the median total; the input's hash (`fingerprint`'s) and the
history row's encoding (`history.encoded`) count the CPU of the threads they run on, the removal
of replaced runs is on a thread of its own and not counted.

    python bench/ingest_split.py FILE [--repeat 40] [--crs EPSG:25832]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cityjson_stages import (  # bench/cityjson_stages.py: a step's own CPU
    _spent,
    _timed,
    _timed_iterator,
)

from citypipe.connectors import registry
from citypipe.core import (
    attempt,
    geometry,
    harmonise,
    history,
    incremental,
    lake,
    lake_layout,
    order,
    rows,
    write,
)
from citypipe.core import ingest as ingesting

STEPS: tuple[tuple[Any, str, str], ...] = (
    (registry, "open_location", "open"),
    (incremental, "fingerprint", "fingerprint"),
    (incremental, "_digest", "fingerprint"),  # on its thread
    (lake.Lake, "_lock", "lake.lock"),
    (lake.Lake, "_rename_hive_folders", "lake.rename_hive"),
    (lake.Lake, "_sweep", "lake.sweep"),
    (attempt.Attempt, "begin", "lake.begin"),
    (harmonise.Harmoniser, "__init__", "harmoniser.init"),
    (harmonise.Harmoniser, "harmonise", "harmonise.own"),
    (geometry.Placer, "place", "geometry.place"),
    (rows.FeatureRows, "batch", "rows.batch"),
    (order.OrderedWriter, "write", "features.write"),
    (order.OrderedWriter, "close", "features.sort"),
    (write.GeoParquetWriter, "write", "geoparquet.write"),
    (write.GeoParquetWriter, "close", "geoparquet.close"),
    (write.RowsWriter, "write", "rejects"),
    (write.RowsWriter, "close", "rejects"),
    (attempt.Attempt, "commit", "commit.rest"),
    (attempt.Attempt, "_flush_files", "commit.flush"),
    (attempt.Attempt, "_link", "commit.links"),
    (lake_layout, "fsync", "commit.flush"),
    (history.Ingest, "encoded", "history.encoded"),
    (history.Ingest, "stage", "history.staged"),
    (lake.Lake, "publish", "commit.publish"),
)


def _instrument(path: Path) -> Callable[..., Any]:
    """Every step wrapped (the connector's class is the one `path` is read with), and the
    ingest, whose own code is `ingest.rest`."""
    connector = type(registry.open_location(path, None))
    for owner, name, label in STEPS:
        _timed(owner, name, label)
    _timed(connector, "inspect", "inspect")
    _timed_iterator(connector, "read", "read")
    ingesting.Harmoniser = harmonise.Harmoniser  # imported by name: the wrapped class's
    _timed(ingesting, "ingest", "ingest.rest")
    return ingesting.ingest


def split(path: Path, repeat: int, crs: str | None = None) -> dict[str, list[float]]:
    """Each step's thread CPU (seconds) in each of `repeat` ingests after three warm-ups (0
    where an ingest did not take it), and their `total`."""
    ingest = _instrument(path)
    runs: list[dict[str, float]] = []
    target = lake.Lake(Path(tempfile.mkdtemp(prefix="citypipe-split-")))
    for i in range(repeat + 3):
        _spent.clear()
        ingest(path, "bench", target, crs=crs, validate=False, render_docs=False)
        if i >= 3:
            runs.append({**_spent, "total": sum(_spent.values())})
    lake_layout.removed()
    return {label: [run.get(label, 0.0) for run in runs] for label in {*_spent, "total"}}


def file_arguments(description: str, repeat: int) -> argparse.Namespace:
    """An ingest bench's arguments: the file, ingests timed (`--repeat`) and its `--crs`."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("file", type=Path)
    p.add_argument("--repeat", type=int, default=repeat)
    p.add_argument("--crs", help="the CRS of a file that declares none")
    return p.parse_args()


def main() -> None:
    args = file_arguments(__doc__.splitlines()[0], 40)
    spent = split(args.file, args.repeat, args.crs)
    print(f"thread CPU ms, median of {args.repeat} ingests of {args.file.name}")
    for label, seconds in sorted(spent.items(), key=lambda s: -statistics.median(s[1])):
        print(
            f"{'  ' if label != 'total' else ''}{label:18} {statistics.median(seconds) * 1000:7.3f}"
        )


if __name__ == "__main__":
    main()
