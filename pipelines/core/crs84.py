"""A batch's placed geometries taken to OGC:CRS84: footprints, 3D geometry and semantic surfaces,
each distinct position moved by PROJ once.

Footprints, solids and surfaces share their corners, so each distinct position is transformed
once (`transform.ToCrs84.distinct`). Solids whose faces the pipeline already holds as flat
arrays (`solids.Faces`: handed on by the connector, or read once for the measures) are written
as WKB from those arrays, each corner read at its moved position (pipelines/geo/wkb_ragged.py:
no moved copy of every corner is made), and their semantic surfaces cut out of it: GEOS
neither copies coordinates out of them nor builds and writes them again; the footprints'
corners, which are the solids', are then found among those already moved. Where a source's
positions are known before its read (a CityJSON document's vertices: `Connector.ahead`), a
thread of their own moves them while the read goes on (`ahead`), and takes the solids there
from them (`begin`) while the caller traces the footprints and measures the solids in the
source CRS. Solids whose positions were not moved ahead are taken there in the caller's
thread, when asked: on the thread, the hand-over and the two threads' turns at the GIL cost
more than the work they would overlap, at every size measured (CityGML batches of 66 to
51,872 corners; CityJSON documents of 106,604 and 145,084, their positions not moved ahead).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from functools import cache, partial
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import shapely
from shapely import GeometryType

from citypipe.connectors import base, coordinates
from citypipe.connectors.ragged import offsets
from citypipe.core.measure import Beside, Measures
from citypipe.core.solids import Faces
from citypipe.core.threads import Threads
from citypipe.geo import crs as crslib
from citypipe.geo import transform as moving
from citypipe.geo import wkb_ragged
from citypipe.geo.errors import ConfigurationError
from citypipe.geo.transform import Moved, ToCrs84
from citypipe.geo.types import AxisOrder

__all__ = ["Begun", "MovedAhead", "ToCrs84", "ahead", "begin", "beside", "to_crs84"]


class _Placed(NamedTuple):
    """Solids taken to CRS84 from their `faces`: their corners' positions moved, and their
    WKB (None where GEOS is to write it)."""

    faces: Faces
    corners: Moved
    written: wkb_ragged.Solids | None
    table: Any = None
    """The corners' distinct positions hashed (positions.Table), among which the footprints'
    corners are looked up (`_among`); None without the compiled search."""

    def lost(self) -> set[int]:
        """The solids with a corner PROJ could not place, its owner read through its ring
        and face for those alone (a gather over every corner otherwise)."""
        bad = coordinates.out_of_bounds(self.corners.moved)
        if not bad.any():
            return set()
        at = bad[self.corners.codes]
        return set(self.faces.owner[self.faces.polygon[self.faces.ring[at]]].tolist())


Begun = Callable[[], _Placed]
"""The solids taken to CRS84, when asked: the worker's result (its error raised then), or the
work done then, in the caller's thread."""


class MovedAhead(NamedTuple):
    """A source's positions taken to CRS84 by `transform` on the worker (`ahead`)."""

    transform: ToCrs84
    moved: Future[Moved]


class _Worker:
    """The thread that moves a source's positions ahead of its read and takes its solids to
    CRS84 from them, one a process (pyproj makes each thread a PROJ object of its own for a
    transformation, at its first use there: RD New's 24 ms)."""

    def __init__(self) -> None:
        self._pool = Threads(1, "citypipe-crs84")  # made again in a forked child
        self._last: tuple[ToCrs84, weakref.ref[np.ndarray], Future[Moved]] | None = None
        os.register_at_fork(after_in_child=self._forget)  # a child's pool has moved nothing

    def _forget(self) -> None:
        self._last = None

    def begin(
        self, transform: ToCrs84, faces: Faces, has_z: np.ndarray, known: Future[Moved]
    ) -> Begun:
        """The solids placed on the thread, from the positions it moved ahead (`known`)."""
        return self._pool.submit(_placed, transform, faces, has_z, known).result

    def then(self, work: Callable[[], object]) -> Callable[[], object]:
        """`work` on the thread, after what it was given before (the solids it places)."""
        return self._pool.submit(work).result

    def ahead(self, transform: ToCrs84, xyz: np.ndarray) -> Future[Moved]:
        """The distinct positions of `xyz` moved on the thread (its PROJ object made with
        them where it has none): once, where the same array was given again (told early by
        its connector, `Connector.on_ahead`, then by `Connector.ahead`)."""
        last = self._last
        if last is not None and last[0] == transform and last[1]() is xyz:
            return last[2]
        begun = threading.Event()
        moved = self._pool.submit(self._moved, transform, xyz, begun.set)
        self._last = (transform, weakref.ref(xyz), moved)
        # the caller lets go of the GIL until PROJ has them: in C code (orjson's parse of
        # the rest of the document) it would keep it, the worker waiting for the switch
        # interval (5 ms) at each of its steps that let go of it and take it back
        moved.add_done_callback(lambda _: begun.set())  # or it failed before
        begun.wait()
        return moved

    @staticmethod
    def _moved(
        transform: ToCrs84, xyz: np.ndarray, begun: Callable[[], object] | None = None
    ) -> Moved:
        """The distinct positions of `xyz` moved, and the number of each row's (-1 for a row
        not moved: one no record places, theirs rejected); `begun` called as PROJ starts."""
        xy = xyz[:, :2]
        bad = coordinates.out_of_bounds(xy)
        if not bad.any():
            return transform.distinct(xy, found=begun)
        moved = transform.distinct(xy[~bad], found=begun)
        codes = np.full(len(xy), -1, np.int64)
        codes[~bad] = moved.codes
        return moved._replace(codes=codes)


@cache
def _worker() -> _Worker:
    return _Worker()


def ahead(
    positions: base.Ahead | None, crs: str | None, axis_order: AxisOrder | None
) -> MovedAhead | None:
    """The distinct positions a read will place (`Connector.ahead`) taken to CRS84 on the
    worker, begun now, in the CRS `crs` and `axis_order` where given (`--crs`,
    `--axis-order`), else theirs: `begin` then finds the solids' corners among them, PROJ's
    work done while the read walked its records. None where there are none to move (none
    given, lon/lat already, or in a CRS that placing refuses, and says why)."""
    if positions is None or not len(positions.xyz) or (crs or positions.crs) is None:
        return None
    try:
        resolved = crslib.resolve(crs or positions.crs)
    except ConfigurationError:
        return None
    axis = axis_order or positions.axis_order
    if crslib.is_lonlat(resolved, axis):
        return None
    transform = crslib.to_crs84(resolved, axis)
    return MovedAhead(transform, _worker().ahead(transform, positions.xyz))


def begin(
    transform: ToCrs84,
    geoms3d: np.ndarray,
    has_z: np.ndarray,
    faces: Faces | None,
    types: np.ndarray | None,
    ahead: MovedAhead | None = None,
) -> Begun | None:
    """The 3D geometries taken to CRS84 from their `faces` (those of `geoms3d[has_z]`, owned
    by their rows of `geoms3d`): on the worker thread, their corners found among the
    positions it moved `ahead` by the same transformation, where given; else in the
    caller's thread, when asked. None where they are not every one a multipolygon of its
    faces (CityGML's Polygon, lines: `to_crs84` takes them there through GEOS: `types`, their
    `solids.kinds`), or there are no faces."""
    if faces is None or types is None or not (types[has_z] == GeometryType.MULTIPOLYGON).all():
        return None
    if ahead is None or ahead.transform != transform:
        return partial(_placed, transform, faces, has_z, None)
    return _worker().begin(transform, faces, has_z, ahead.moved)


def beside(begun: Begun | None) -> Beside | None:
    """Where the solids are `begun` on the worker thread, work handed to it after them (the
    solids' measures: the thread is idle once it has placed them, while the caller takes the
    footprints to CRS84 and repairs them); None where they are not (taken in the caller's
    thread: the hand-over costs more than the work it would move, as `begin` says)."""
    if begun is None or isinstance(begun, partial):
        return None
    return _worker().then


def _placed(
    transform: ToCrs84, faces: Faces, has_z: np.ndarray, known: Future[Moved] | None
) -> _Placed:
    """The solids' corners moved, those among the positions `known` moved before (by this
    thread: done, or left where it is a forked parent's, which no thread here ends), and
    their WKB written from the `faces`' arrays (`wkb_ragged`, null for the rows without)."""
    before = known.result() if known is not None and known.done() else None
    corners = _through_rows(faces, before) or transform.distinct(faces.coords, known=before)
    flat = (faces.ring, faces.polygon, faces.owner)
    written = wkb_ragged.solids_z(corners.moved, corners.codes, faces.coords[:, 2], flat, has_z)
    search = moving.compiled
    few = search is None or len(corners.read) >= search.LIMIT
    return _Placed(faces, corners, written, None if few else search.Table(corners.read))


def _through_rows(faces: Faces, before: Moved | None) -> Moved | None:
    """The faces' corners among the positions moved `before` (`ahead`), each read through
    the row of the pool it was read from (`FlatFaces.rows`): each at the moved position
    `ToCrs84.distinct` would put it, without hashing each corner again (Delft's 145,084:
    1.4 -> 0.4 ms of this thread's). None where a corner is not one of those positions (a
    template's instance), or was not moved, or the rows are not known."""
    rows = faces.rows
    if before is None or rows is None or not len(rows) or rows.max() >= len(before.codes):
        return None
    codes = before.codes[rows]
    return None if codes.min() < 0 else before._replace(codes=codes)


def to_crs84(
    transform: ToCrs84,
    geoms: np.ndarray,
    geoms3d: np.ndarray,
    has_z: np.ndarray,
    measures: Measures | None,
    begun: Begun | None,
    untransformable: str,
    reasons: list[str | None],
) -> tuple[np.ndarray, pa.Array | None]:
    """The 2D geometries in CRS84, and the 3D ones there: those `begun` from their faces
    (their WKB written from the faces' arrays where it could be), else taken there in place,
    as are the semantic surfaces. A record whose coordinates PROJ cannot transform is
    rejected with the reason `untransformable`; the worker's error, if any, raised here."""
    flat_z = shapely.has_z(geoms)
    parts = None if measures is None else measures.surface_parts
    groups = [geoms[~flat_z], geoms[flat_z]]
    rows = [np.flatnonzero(~flat_z), np.flatnonzero(flat_z)]
    if begun is None:
        groups.append(geoms3d[has_z])
        rows.append(np.flatnonzero(has_z))
    if measures is not None and parts is None:
        groups.append(measures.surface_polygons)
    read: list[tuple[np.ndarray, np.ndarray]] = [
        shapely.get_coordinates(g, include_z=k > 0, return_index=True) for k, g in enumerate(groups)
    ]
    solids = None if begun is None else begun()
    # each group's rows of the distinct positions, which alone are moved (the solids' were)
    rest = _among(transform, [c for c, _ in read], solids)
    of = [rest.codes[a:b] for a, b in pairwise(np.cumsum([0] + [len(c) for c, _ in read]))]
    owners = [owner for _, owner in read[: len(rows)]]  # surfaces: none lost by them
    lost = _lost(coordinates.out_of_bounds(rest.moved), of[: len(rows)], owners, rows)
    out = geoms.copy()
    out[~flat_z] = _set(groups[0], rest.moved, of[0], read[0][0])
    out[flat_z] = _set(groups[1], rest.moved, of[1], read[1][0])
    placed: np.ndarray | wkb_ragged.Solids = geoms3d
    if solids is None:
        geoms3d[has_z] = _set(groups[2], rest.moved, of[2], read[2][0])
    else:
        lost |= solids.lost()
        placed = solids.written or _built(geoms3d, has_z, solids)
    if measures is not None:  # surfaces that are faces of the solids came with them
        measures.surface_polygons = (
            _surfaces(geoms3d, parts, solids, placed)
            if parts is not None
            else _set(groups[-1], rest.moved, of[-1], read[-1][0])
        )
    for i in lost:
        reasons[i] = reasons[i] or untransformable
        out[i] = geoms3d[i] = None
    # WKB of the records rejected here too: rejects are not written
    return out, placed.wkb if isinstance(placed, wkb_ragged.Solids) else placed


def _among(transform: ToCrs84, parts: list[np.ndarray], solids: _Placed | None) -> Moved:
    """`transform.distinct` of `parts`, which the solids' moved corners are `known` to:
    where their table was made (`_Placed.table`), each row's position looked up in it alone
    (the solids' corners not hashed again in this thread), those not among them moved by
    PROJ after them; each row moved where `distinct` would move it."""
    if solids is None or solids.table is None:
        return transform.distinct(*parts, known=solids and solids.corners)
    corners = solids.corners
    codes = solids.table.codes(parts)
    missing = np.flatnonzero(codes < 0)
    if not len(missing):
        return corners._replace(codes=codes)
    more = transform.distinct(np.concatenate([p[:, :2] for p in parts])[missing])
    codes[missing] = len(corners.read) + more.codes
    read, moved = (np.concatenate(pair) for pair in zip(corners[:2], more[:2], strict=True))
    return Moved(read, moved, codes)


def _built(geoms3d: np.ndarray, has_z: np.ndarray, solids: _Placed) -> np.ndarray:
    """The 3D geometries in CRS84 built in place from their faces, where GEOS is to write
    their WKB (`wkb_ragged.solids_z` could not)."""
    faces, (_, moved, codes) = solids.faces, solids.corners
    everything = np.ones(len(faces.owner), dtype=bool)
    ragged, nesting = faces.ragged(everything, _corners(moved, codes, faces.coords), len(geoms3d))
    of_solids = (*nesting[:2], offsets(np.diff(nesting[2])[has_z]))
    geoms3d[has_z] = shapely.from_ragged_array(GeometryType.MULTIPOLYGON, ragged, of_solids)
    return geoms3d


def _corners(moved: np.ndarray, codes: np.ndarray, read: np.ndarray) -> np.ndarray:
    """Coordinates `read` at their moved positions (`moved[codes]`), heights as read."""
    xy = moved[codes]
    return xy if read.shape[1] == 2 else np.column_stack([xy, read[:, 2:]])


def _set(
    geometries: np.ndarray, moved: np.ndarray, codes: np.ndarray, read: np.ndarray
) -> np.ndarray:
    """Copies of `geometries` with their coordinates `read` at their moved positions."""
    out = np.array(geometries, dtype=object)
    shapely.set_coordinates(out, _corners(moved, codes, read))
    return out


def _lost(
    bad: np.ndarray, codes: list[np.ndarray], owners: list[np.ndarray], rows: list[np.ndarray]
) -> set[int]:
    """The records with a position PROJ could not take to CRS84 (not finite, or beyond any
    Earth: `bad` of the distinct positions): of each group, its positions' rows among them
    (`codes`), owned by `owners`, which are rows of the group (`rows`: the record of each)."""
    if not bad.any():
        return set()
    lost = set()
    for code, owner, row in zip(codes, owners, rows, strict=True):
        lost.update(row[owner[bad[code]]].tolist())
    return lost


def _surfaces(
    geoms3d: np.ndarray,
    surface_parts: np.ndarray,
    solids: _Placed | None,
    placed: np.ndarray | wkb_ragged.Solids,
) -> np.ndarray | pa.Array:
    """The semantic surfaces that are faces of the solids, in CRS84: cut out of the solids'
    WKB where it was written from the faces' arrays, else made from those arrays where they
    were placed from them (`Faces.polygons`), else the solids' parts."""
    if isinstance(placed, wkb_ragged.Solids):
        return placed.faces(surface_parts)
    if solids is not None:
        faces, (_, moved, codes) = solids.faces, solids.corners
        return faces.polygons(surface_parts, _corners(moved, codes, faces.coords))
    return shapely.get_parts(geoms3d)[surface_parts]
