"""A large CityGML document read in a second process: the parse there, the rest of the ingest here.

The reader (libxml2's parse and the Python walk that turns members into records and polygons)
is over half of a large ingest, harmonising and writing the rest: a forked child runs the
one-process reader and hands each SourceBatch over a pipe while this process harmonises and
writes the one before. The batches are the same, in the same order (the same reader makes
them), so xlinks, appearances and the CRS resolve as in one process. Memory stays bounded: a
pipe holds a few kB, so the child is at most one batch ahead (it blocks sending the next).

Geometry crosses the pipe as WKB made and read in one shapely call per batch (pickling each
geometry costs a call per geometry). A record's XML (asked for by rejects only) is not sent:
the child sends where the object is (the CityModel child's position, tag, gml:id or n-th of
its tag), and this process reads that member again from the file when a reject asks for it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from lxml import etree

from citypipe.connectors.base import Solids, SourceBatch, Surface
from citypipe.connectors.citygml_header import MEMBERS, PARSER

__all__ = ["SPLIT_BYTES", "Located", "read_in_child", "spare_core"]

SPLIT_BYTES = 64_000_000
"""Files from this size are read in a second process: the overlap needs several batches (the
NRW tile's objects fill one of 2,000 records in about 30 MB); a smaller file only pays the fork
and the pipe."""

_NOTHING = np.empty(0, dtype=object)
"""What stands for the geometry a batch sends apart (as WKB)."""

def spare_core() -> bool:
    """Whether a second process would find a core of its own: this process may use more than
    one, and the last minute's load (which counts this process while it works) left one idle.
    On a machine whose cores are busy already, the second process only adds its costs (the
    pipe: 15-20 % more CPU time), and was measured slower by the wall clock too."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) > 1 and os.getloadavg()[0] <= (cores or 1) - 1


Position = tuple[int, str, "str | int"]
"""Where a record's element is: (its CityModel member's position among the CityModel's
children, its tag, its gml:id or its n-th place among the member's elements of that tag)."""


def read_in_child(
    path: Path, read: Callable[[], Iterator[SourceBatch]], released: Callable[[], int], gml_id: str
) -> Iterator[SourceBatch]:
    """The batches `read` yields, made by a forked child (`read` there as here); `released`
    counts the CityModel's children `read` has detached so far (the positions start there)."""
    receive, send = get_context("fork").Pipe(duplex=False)
    child = get_context("fork").Process(target=_child, args=(send, read, released), daemon=True)
    child.start()
    send.close()
    try:
        while True:
            kind, payload = pickle.loads(receive.recv_bytes())
            if kind == "end":
                return
            if kind == "error":
                raise payload
            yield _decode(payload, path, gml_id)
    finally:
        receive.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _child(
    send: Any, read: Callable[[], Iterator[SourceBatch]], released: Callable[[], int]
) -> None:
    try:
        try:
            for batch in read():
                payload = _encode(batch, released())
                send.send_bytes(pickle.dumps(("batch", payload), protocol=5))
            message: tuple[str, Any] = ("end", None)
        except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
            message = ("error", e)
        send.send_bytes(pickle.dumps(message, protocol=5))
    except (BrokenPipeError, OSError):
        pass  # the parent stopped reading: nothing left to hand over
    finally:
        send.close()
        os._exit(0)  # no atexit handlers or finalizers of the parent's objects in the child


# -- a batch across the pipe ------------------------------------------------------------------


def _encode(batch: SourceBatch, released: int) -> dict[str, Any]:
    solids = batch.solids
    assert solids is not None and isinstance(batch.geometries, np.ndarray)
    surfaces = solids.surfaces or [None] * len(batch.source_ids)
    counts = [0 if s is None else len(s) for s in surfaces]
    flat = [s for group in surfaces if group for s in group]
    return {
        "batch": replace(batch, geometries=_NOTHING, solids=None, records=()),
        "records": _positions(batch.records._locators, released),  # type: ignore[attr-defined]
        "footprints": shapely.to_wkb(batch.geometries),
        "geometry_3d": shapely.to_wkb(np.asarray(solids.geometry_3d, dtype=object)),
        "no_surfaces": solids.surfaces is None,
        "surface_counts": counts,
        "surface_types": [s.type for s in flat],
        "surface_polygons": shapely.to_wkb(np.array([s.polygon for s in flat], dtype=object)),
    }


def _positions(locators: list[tuple[Any, str, str | int]], released: int) -> list[Position]:
    """Each record's member by its position in the whole CityModel (`released` children of it
    are detached already): the CityModel's children counted once (lxml's index() is a walk)."""
    if not locators:
        return []
    model = locators[0][0].getparent()
    at = {child: released + i for i, child in enumerate(model)}
    return [(at[member], tag, key) for member, tag, key in locators]


def _decode(payload: dict[str, Any], path: Path, gml_id: str) -> SourceBatch:
    polygons = shapely.from_wkb(payload["surface_polygons"]).tolist()
    made = [Surface(t, p) for t, p in zip(payload["surface_types"], polygons, strict=True)]
    surfaces: list[list[Surface] | None] = []
    end = 0
    for n in payload["surface_counts"]:
        start, end = end, end + n
        surfaces.append(made[start:end] or None)
    return replace(
        payload["batch"],
        geometries=shapely.from_wkb(payload["footprints"]),
        solids=Solids(
            shapely.from_wkb(payload["geometry_3d"]),
            None if payload["no_surfaces"] else surfaces,
        ),
        records=Located(path, payload["records"], gml_id),
    )


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
        member = _member(self._path, position)
        if isinstance(key, int):
            elem = next(islice(member.iter(tag), key, None))
        else:
            elem = next(e for e in member.iter(tag) if e.get(self._gml_id) == key)
        return etree.tostring(elem, encoding="unicode")


def _member(path: Path, position: int) -> Any:
    """The CityModel's child at `position`, parsed as the reader parses it."""
    tags = [f"{{*}}{m}" for m in MEMBERS]
    with open(path, "rb") as f:
        context = etree.iterparse(
            f, events=("end",), tag=tags, remove_comments=True, remove_pis=True,
            huge_tree=True, **PARSER,
        )  # fmt: skip
        released = 0  # children before the one looked at, detached: memory stays bounded
        for _, member in context:
            model = member.getparent()
            if model is None or model.getparent() is not None:
                continue
            index = model.index(member)
            if released + index == position:
                return member
            del model[: index + 1]
            released += index + 1
    raise LookupError(f"{path}: no CityModel member at {position}")
