"""Where a CityJSON ingest's CPU time goes, measured inside real ingests (issue 17).

Each stage is timed by wrapping the function that does it, in one process, as the main thread's
CPU time spent in it and not in a stage it calls (so the stages add up): the file's format told
(`open`), the document opened and parsed (`cityjson_lift` and orjson: `_open`), its objects
counted (`inspect`), the read's own work (`read`: each batch's vertices, the document let go of
after the last batch), the walk of its objects (`Batch.add_all`), their geometries checked and
repaired (`build_shapes`), their semantic surfaces, the rest of the batch's making; placing it
(the unplaceable found, footprints, measures, CRS84, repairs, the rest of `Placer.place`), the
properties' JSON (`json_texts`, the measures added to them), the other columns, the rest of
harmonise; the writes (features in spatial order, surfaces, rejects), the commit, the input's
fingerprint (SHA-256 of its bytes), and the rest (the run's own code, the batch freed: Den
Haag's records and properties about 1 ms each). Printed: each file's split of the ingest with
the least main-thread CPU time, and the least CPU time of the whole process (the surfaces'
writing thread with it), a column per file; below them the stages that ran on other threads
in that ingest (a document's vertices and then the solids taken to CRS84 on their worker,
the fingerprint's hash, the history row's encoding), each thread's own CPU time, beside the
main thread's; and the wall time the main thread waited for the solids' CRS84 (the worker's
time on its path), the median of the ingests'.

    python bench/cityjson_stages.py [--repeat 20] FILE ...
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from citypipe.connectors import cityjson, cityjson_objects, registry
from citypipe.core import crs84, geometry, harmonise, incremental, order, write
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake

_spent: dict[str, float] = {}
_threads = threading.local()  # each thread's `inner`: the time of the stages called by each
# stage running in it, innermost last


def _timed(owner: Any, name: str, stage: str) -> None:
    """`owner.name` replaced by a wrapper that counts its own time to `stage`, or to
    `stage (thread)` where it runs on another thread than the main one."""
    function: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        inner = _threads.__dict__.setdefault("inner", [])
        label = stage if threading.current_thread() is threading.main_thread() else THREAD % stage
        start = time.thread_time()
        inner.append(0.0)
        try:
            return function(*args, **kwargs)
        finally:
            spent, within = time.thread_time() - start, inner.pop()
            _spent[label] = _spent.get(label, 0.0) + spent - within
            if inner:
                inner[-1] += spent

    static = isinstance(inspect.getattr_static(owner, name), staticmethod)  # crs84's _moved
    setattr(owner, name, staticmethod(timed) if static else timed)


_END = object()


def _timed_iterator(
    owner: Any, name: str, label: str, timed: Callable[[Any, str, str], None] = _timed
) -> None:
    """A generator function whose own work (each `next`, not its caller's) counts to `label`
    (`timed` wraps each `next`: by its CPU here, by its begin and end in ingest_timeline)."""
    function = getattr(owner, name)
    step = SimpleNamespace(next=lambda items: next(items, _END))
    timed(step, "next", label)

    def stepped(*args: Any, **kwargs: Any) -> Iterator[Any]:
        items = function(*args, **kwargs)
        while (item := step.next(items)) is not _END:
            yield item

    setattr(owner, name, stepped)


STAGES = (
    (registry, "open_location", "open"),
    (cityjson.CityJSONConnector, "_open", "parse"),
    (cityjson.CityJSONConnector, "inspect", "inspect"),
    (cityjson_objects.Batch, "add_all", "walk"),
    (cityjson_objects, "build_shapes", "shapes"),
    (cityjson_objects, "semantic_surfaces", "semantics"),
    (cityjson_objects.Batch, "source_batch", "batch"),
    (geometry, "_unplaceable", "unplaceable"),
    (geometry, "_footprints", "footprints"),
    (geometry, "measure", "measures"),
    (geometry.crs84, "to_crs84", "crs84"),
    (geometry, "_repair", "repair"),
    (geometry.Placer, "place", "place"),
    (harmonise, "json_texts", "json"),
    (harmonise, "_extras", "json"),
    (harmonise.Harmoniser, "_filled", "columns"),
    (harmonise.Harmoniser, "harmonise", "harmonise"),
    (order.OrderedWriter, "write", "write"),
    (order.OrderedWriter, "close", "write"),
    (order.OrderedWriter, "_write_ordered", "write"),  # on its thread once sealed
    (order.OrderedWriter, "_close_flushed", "write"),  # the sealed file's footer and flush too
    (write.BesideWriter, "write", "write"),
    (write.BesideWriter, "close", "write"),
    (write.RowsWriter, "write", "write"),
    (write.RowsWriter, "close", "write"),
    (Lake, "_land", "commit"),
    (incremental, "_digest", "fingerprint"),
    (crs84, "_placed", "crs84"),
    (crs84._Worker, "_moved", "crs84 ahead"),  # a document's vertices, on the worker
)
THREAD = "%s (thread)"
"""A stage's time on another thread (the solids' CRS84, the fingerprint's hash, the history
row's encoding, a sealed writer's features): counted apart, not in the main thread's."""
READ = (cityjson.CityJSONConnector, "read", "read")
"""The read's own work, each batch's `next` (a generator): the batches' vertices, the
document let go of after the last."""
NAMES = tuple(dict.fromkeys(stage for _, _, stage in (*STAGES, READ)))
WAIT = "crs84 wait (wall)"
"""The main thread's wall time in the worker's result (`crs84.begin`'s): where it waits for
the solids' CRS84, the worker is on the run's path."""
_OFF_MAIN = (*(THREAD % name for name in NAMES), WAIT)


def _waited() -> None:
    """`crs84.begin` replaced by a wrapper whose result, when asked, counts its wall time to
    `WAIT`."""
    begin = crs84.begin

    def timed(*args: Any, **kwargs: Any) -> crs84.Begun | None:
        begun = begin(*args, **kwargs)
        if begun is None:
            return None

        def result() -> Any:
            start = time.perf_counter()
            try:
                return begun()
            finally:
                _spent[WAIT] = _spent.get(WAIT, 0.0) + time.perf_counter() - start

        return result

    crs84.begin = timed


def stages(path: Path, repeat: int) -> tuple[float, float, dict[str, float]]:
    """The least main-thread CPU time of `repeat` ingests (after two warm-ups), its split by
    stage (seconds), the least process CPU time; the wait for the solids' CRS84 (`WAIT`) the
    median of the ingests' (a wall time: what the other processes leave of the cores)."""
    lake = Lake(Path(tempfile.mkdtemp(prefix="citypipe-stages-")))
    best = process = float("inf")
    split: dict[str, float] = {}
    waits = []
    for i in range(repeat + 2):
        _spent.clear()
        start, started = time.thread_time(), time.process_time()
        ingest(path, "bench", lake, validate=False, render_docs=False)
        spent = time.thread_time() - start
        if i >= 2:
            process = min(process, time.process_time() - started)
            waits.append(_spent.get(WAIT, 0.0))
            if spent < best:
                best, split = spent, dict(_spent)
    split["rest"] = best - sum(v for k, v in split.items() if k not in _OFF_MAIN)
    split[WAIT] = statistics.median(waits) if waits else 0.0
    return best, process, split


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    for owner, name, stage in STAGES:
        _timed(owner, name, stage)
    _timed_iterator(*READ)
    _waited()
    results = [(path.name[:24], *stages(path, args.repeat)) for path in args.files]
    print(f"CPU ms, the ingest with the least main-thread time of {args.repeat}")
    print(f"{'':20}" + "".join(f" {name:>24}" for name, *_ in results))
    print(f"{'process':20}" + "".join(f" {process * 1000:24.1f}" for _, _, process, _ in results))
    print(f"{'main thread':20}" + "".join(f" {best * 1000:24.1f}" for _, best, _, _ in results))
    for stage in (*NAMES, "rest", *(t for t in _OFF_MAIN if any(t in s for *_, s in results))):
        print(f"{stage:20}" + "".join(f" {s.get(stage, 0.0) * 1000:24.1f}" for *_, s in results))


if __name__ == "__main__":
    main()
