"""A large CityGML document read in two processes: the walk in a forked child, the rest here.

The connector's walk (libxml2's parse and the Python that turns members into records) runs
in a forked child, which hands each complete batch over a pipe as its records and its rings'
coordinate texts; this process builds the polygons (the coordinates parsed, rings repaired,
shapely geometry made), then harmonises and writes the batch while the child walks the next.
That splits the CPU time about in half (a child that also built the geometry did 70 % of it,
and paid for handing shapely geometry over as WKB). The batches are the ones one process makes
(the same walk makes them, in order), so xlinks, appearances and the CRS resolve alike.
Memory stays bounded: a pipe holds a few kB, so the child is at most one batch ahead (it
blocks sending the next).

A record's XML (asked for by rejects only) is not sent: the child sends where the object is
(its CityModel child's position, tag, gml:id or n-th of its tag), and this process reads that
member again from the file when a reject asks for it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from multiprocessing import current_process, get_context
from pathlib import Path
from typing import Any

from citypipe.connectors import gml_polygons
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.citygml_header import model_members
from citypipe.connectors.citygml_objects import ObjectReader
from citypipe.connectors.citygml_records import Record, batches, element_xml
from citypipe.geo.errors import DataError

__all__ = ["SPLIT_BYTES", "Located", "read_in_child", "spare_core"]

SPLIT_BYTES = 64_000_000
"""Files from this size are read in a second process: the overlap needs several batches (the
NRW tile's objects fill one of 2,000 records in about 30 MB); a smaller file only pays the fork
and the pipe."""


def spare_core() -> bool:
    """Whether a second process would find a core of its own: this process may use more than
    one, and the last minute's load (which counts this process while it works) left one idle.
    On a machine whose cores are busy already, the second process only adds its costs (the
    pipe: 15-20 % more CPU time), and was measured slower by the wall clock too. A daemonic
    process (a worker some pools start) may not start one."""
    if current_process().daemon:
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) > 1 and os.getloadavg()[0] <= (cores or 1) - 1


_Raw = tuple[list[Record], tuple[list[str], list[int], list[int], list[int]]]
"""A batch as the child hands it over: its records and its rings (GeometryReader.rings)."""

Position = tuple[int, str, "str | int"]
"""Where a record's element is: (its CityModel member's position among the CityModel's
children, its tag, its gml:id or its n-th place among the member's elements of that tag)."""


def read_in_child(
    path: Path,
    read: Callable[[Callable[[ObjectReader], Iterator[_Raw]]], Iterator[_Raw]],
    released: Callable[[], int],
    gml_id: str,
) -> Iterator[SourceBatch]:
    """The batches of `read` (the connector's walk, given what to make of each batch), its walk
    made by a forked child and its polygons built here; `released` counts the CityModel's
    children the walk has detached so far (the positions start there)."""
    receive, send = get_context("fork").Pipe(duplex=False)
    child = get_context("fork").Process(target=_child, args=(send, read, released), daemon=True)
    child.start()
    send.close()
    elements = partial(Located, path, gml_id=gml_id)
    try:
        while True:
            kind, payload = pickle.loads(receive.recv_bytes())
            if kind == "end":
                return
            if kind == "error":
                raise payload
            records, rings = payload
            yield from batches(records, gml_polygons.build(*rings), gml_id, elements)
    finally:
        receive.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _child(send: Any, read: Callable[..., Iterator[_Raw]], released: Callable[[], int]) -> None:
    try:
        try:
            for raw in read(partial(_take, released)):
                send.send_bytes(pickle.dumps(("batch", raw), protocol=5))
            message: tuple[str, Any] = ("end", None)
        except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
            message = ("error", _picklable(e))
        send.send_bytes(pickle.dumps(message, protocol=5))
    except (BrokenPipeError, OSError):
        pass  # the parent stopped reading: nothing left to hand over
    finally:
        send.close()
        os._exit(0)  # no atexit handlers or finalizers of the parent's objects in the child


def _picklable(e: Exception) -> Exception:
    """`e`, or a DataError saying the same where `e` would not cross the pipe intact."""
    try:
        pickle.loads(pickle.dumps(e, protocol=5))
    except Exception:  # noqa: BLE001 - any failure to round-trip
        return DataError(f"{type(e).__name__}: {e}")
    return e


def _take(released: Callable[[], int], reader: ObjectReader) -> Iterator[_Raw]:
    """A complete batch as it crosses the pipe: its records, located by position (their
    elements stay in the child), and its rings' coordinate texts."""
    taken = reader.take()
    if taken is None:
        return
    records, geometry = taken
    if records:
        model = records[0].locator[0].getparent()
        at = {child: released() + i for i, child in enumerate(model)}  # index() is a walk
        for rec in records:
            member, tag, key = rec.locator
            rec.locator = (at[member], tag, key)
    yield records, geometry.rings()


# -- a record's XML, read again ---------------------------------------------------------------


class Located(Sequence[str]):
    """The records' XML, read again from the file when a reject asks for it."""

    def __init__(self, path: Path, positions: list[Position], gml_id: str) -> None:
        self._path = path
        self._positions = positions
        self._gml_id = gml_id

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, i: Any) -> Any:
        position, tag, key = self._positions[i]
        return element_xml(_member(self._path, position), tag, key, self._gml_id)


def _member(path: Path, position: int) -> Any:
    """The CityModel's child at `position`, parsed as the reader parses it."""
    with open(path, "rb") as f:
        released = 0  # children before the one looked at, detached: memory stays bounded
        for model, member in model_members(f, huge_tree=True):
            index = model.index(member)
            if released + index == position:
                return member
            del model[: index + 1]
            released += index + 1
    raise LookupError(f"{path}: no CityModel member at {position}")
