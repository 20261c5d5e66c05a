"""Where a CityGML ingest's CPU time goes, measured inside real ingests (issue 17).

Each stage is timed by wrapping the function that does it, in one process: opening the file
(the format sniffed, the header read: `registry.open_location`, `inspect`), the reader's parse
(libxml2 through iterparse, `model_members`; a small document's whole parse for its header,
`parsed_model`), its walk of the members (`ObjectReader.member`: Python over lxml's
elements), its flush (the polygons built, the batches made), harmonise
(footprints, measures, CRS84, rows), the writes (features sorted and written, surfaces,
rejects: what the ingest calls of their writers), the input's fingerprint (SHA-256), the
commit (the files flushed, the history row, the switch, the previous run removed), and the
rest (the lake's run folder and lock, the lxml tree freed, the ingest's own code). The floor
(lxml's iterparse clearing every element, as bench/run.py times it) is timed in the same
process, alternating with the ingests. Printed: each file's best floor and the split of its
ingest with the least total CPU time. Files are read in one process (`split_bytes` 0), so the
stages are this process's.

    python bench/citygml_stages.py [--repeat 10] FILE ...
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from run import iterparse_floor  # bench/run.py

from citypipe.connectors import citygml, citygml_objects, registry
from citypipe.core import harmonise, incremental, order, write
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake

STAGES = ("open", "parse", "walk", "flush", "harmonise", "write", "hash", "commit")
_spent: dict[str, float] = {}


def _timed(function: Callable[..., Any], stage: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            _spent[stage] = _spent.get(stage, 0.0) + time.process_time() - start

    return timed


def _timed_iterator(function: Callable[..., Iterator[Any]], stage: str) -> Callable[..., Any]:
    """A generator function whose own work (each `next`, not its caller's) counts to `stage`."""

    def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
        items = function(*args, **kwargs)
        while True:
            start = time.process_time()
            item = next(items, timed)
            _spent[stage] = _spent.get(stage, 0.0) + time.process_time() - start
            if item is timed:
                return
            yield item

    return timed


def _without_parse(function: Callable[..., Any], stage: str) -> Callable[..., Any]:
    """`_timed`, less the "parse" stage's time spent inside it: the header's read parses a
    small document whole (citygml_header.parsed_model), which the read then walks."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        start, parsed = time.process_time(), _spent.get("parse", 0.0)
        try:
            return function(*args, **kwargs)
        finally:
            inner = _spent.get("parse", 0.0) - parsed
            _spent[stage] = _spent.get(stage, 0.0) + time.process_time() - start - inner

    return timed


def _fingerprint(function: Callable[..., Callable[[], Any]]) -> Callable[..., Any]:
    """incremental.fingerprint, whose hashing counts to "hash": the call's own work and the
    wait of the callable it returns for the thread that hashes the file."""

    def fingerprint(*args: Any, **kwargs: Any) -> Callable[[], Any]:
        return _timed(_timed(function, "hash")(*args, **kwargs), "hash")

    return fingerprint


def _instrument() -> None:
    registry.open_location = _timed(registry.open_location, "open")
    connector = citygml.CityGMLConnector
    connector.inspect = _without_parse(connector.inspect, "open")  # type: ignore[method-assign]
    citygml.parsed_model = _timed(citygml.parsed_model, "parse")
    incremental.fingerprint = _fingerprint(incremental.fingerprint)
    for cls, names in (
        (order.OrderedWriter, ("write", "close")),
        (write.BesideWriter, ("write", "close", "wait")),
        (write.RowsWriter, ("write", "close")),
    ):
        for name in names:
            setattr(cls, name, _timed(getattr(cls, name), "write"))
    Lake._land = _timed(Lake._land, "commit")  # type: ignore[method-assign]
    reader = citygml_objects.ObjectReader
    citygml.model_members = _timed_iterator(citygml.model_members, "parse")
    reader.member = _timed(reader.member, "walk")
    flush = reader.flush
    reader.flush = _timed(lambda self: iter(list(flush(self))), "flush")
    harmoniser = harmonise.Harmoniser
    harmoniser.harmonise = _timed(harmoniser.harmonise, "harmonise")


def _floor(path: Path) -> float:
    start = time.process_time()
    iterparse_floor(path)
    return time.process_time() - start


def stages(path: Path, repeat: int) -> tuple[float, float, dict[str, float]]:
    """The best floor, the least total CPU time of `repeat` ingests (after a warm-up), and its
    split by stage (seconds)."""
    lake = Lake(Path(tempfile.mkdtemp(prefix="citypipe-stages-")))
    floor = total = float("inf")
    split: dict[str, float] = {}
    for i in range(repeat + 1):
        floor = min(floor, _floor(path))
        _spent.clear()
        start = time.process_time()
        ingest(path, "bench", lake, validate=False, render_docs=False, options={"split_bytes": 0})
        spent = time.process_time() - start
        if i and spent < total:
            total, split = spent, dict(_spent)
    split["rest"] = total - sum(split.values())
    return floor, total, split


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--repeat", type=int, default=10)
    args = p.parse_args()
    _instrument()
    head = f"{'file':44} {'floor':>6} {'ingest':>7} {'/floor':>6}" + "".join(
        f" {s:>7}" for s in (*STAGES, "rest")
    )
    print(f"CPU ms, the ingest with the least total of {args.repeat}\n{head}\n{'-' * len(head)}")
    for path in args.files:
        try:
            floor, total, split = stages(path, args.repeat)
        except Exception as e:  # noqa: BLE001 - a file citypipe refuses (a local CRS): said, not timed
            print(f"{path.name[:44]:44} failed: {str(e)[:120]}")
            continue
        print(
            f"{path.name[:44]:44} {floor * 1000:6.1f} {total * 1000:7.1f} {total / floor:6.2f}"
            + "".join(f" {split.get(s, 0.0) * 1000:7.1f}" for s in (*STAGES, "rest"))
        )


if __name__ == "__main__":
    main()
