"""A batch's geometries placed in OGC:CRS84: 2D and valid, 3D where the source has Z.

The CRS is decided once per source (declared, or defined by the format; never guessed), then
every record's coordinates are checked before GEOS or PROJ sees them: a position that is not
finite, not on any Earth, not transformable or not longitude/latitude once transformed rejects
its record with the reason. Invalid geometries are repaired where GEOS can (noted), 3D objects
without a footprint get one from their ground surfaces or solid, and are measured in metres
(pipelines/core/measure.py) before they leave the source CRS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyproj
import shapely
from shapely.errors import GEOSException

from citypipe.connectors import coordinates, rings
from citypipe.connectors.base import Ahead, FlatFaces, Solids, SourceBatch, make_surface
from citypipe.connectors.coordinates import LIMIT
from citypipe.core import crs84, footprints, solids
from citypipe.core.crs84 import ToCrs84
from citypipe.core.measure import Measures, measure
from citypipe.geo import crs as crslib
from citypipe.geo import validity, wkb
from citypipe.geo.errors import ConfigurationError, UnknownCRS
from citypipe.geo.surfaces import SurfaceColumns
from citypipe.geo.types import AxisOrder, Points

__all__ = ["Placed", "Placer", "positioned"]

_LONLAT_MIN, _LONLAT_MAX = np.array([-180.0, -90.0]), np.array([180.0, 90.0])


@dataclass
class Placed:
    """What `Placer.place` makes of a batch's geometries, aligned with its records."""

    geometry: np.ndarray | Points
    geometry_3d: np.ndarray | pa.Array | None
    """None when no record has 3D; shapely geometries, or their WKB where it was written from
    the arrays they are built of (`pipelines/core/crs84.py`; null where a record has none)."""
    source_crs: str | None
    bounds: np.ndarray
    """xmin, ymin, xmax, ymax of each 2D geometry (NaN where it has none)."""
    measures: Measures | None = None
    """For 3D objects whose place could be measured in metres."""

    def wkb_3d(self, rows: slice | np.ndarray) -> pa.Array | None:
        """The 3D WKB of `geometry_3d[rows]` (null where a record has none)."""
        return None if self.geometry_3d is None else wkb.to_wkb_3d(self.geometry_3d, rows)


def _by_record(
    f: Callable[..., np.ndarray], *columns: np.ndarray | Sequence[Any]
) -> tuple[np.ndarray, dict[int, str]]:
    """`f` over whole columns, or record by record where GEOS refuses one: the results (None
    for the refused), and GEOS's message for each refused record."""
    try:
        return f(*columns), {}
    except GEOSException:
        pass
    out, failed = np.full(len(columns[0]), None, dtype=object), {}
    for i in range(len(out)):
        try:
            out[i] = f(*(c[i : i + 1] for c in columns))[0]
        except GEOSException as e:
            failed[i] = str(e).strip()
    return out, failed


def _untransformable(label: str) -> str:
    return f"coordinates that {label} cannot take to longitude/latitude"


def positioned(geometries: np.ndarray | Points) -> np.ndarray:
    """Which records have a geometry with a position (neither missing nor empty)."""
    if isinstance(geometries, Points):
        return geometries.present
    return ~shapely.is_missing(geometries) & ~shapely.is_empty(geometries)


def _columns(solids3d: Solids | None) -> SurfaceColumns | None:
    """The batch's semantic surfaces as columns (None: none known), made once from the lists
    of a connector that hands lists, so that the pipeline has one path for them."""
    if solids3d is None or solids3d.surfaces is None:
        return None
    if isinstance(solids3d.surfaces, SurfaceColumns):
        return solids3d.surfaces
    return SurfaceColumns.of(solids3d.surfaces, solids3d.surface_faces, make_surface)


def _has_coordinates(batch: SourceBatch, surfaces: SurfaceColumns | None) -> bool:
    """Whether any record of the batch has a position: a footprint, a 3D geometry or surfaces."""
    if positioned(batch.geometries).any():
        return True
    if batch.solids is None:
        return False
    if positioned(np.asarray(batch.solids.geometry_3d, dtype=object)).any():
        return True
    if batch.solids.faces is not None and len(batch.solids.faces.owner):
        return True  # geometries held as their faces alone
    return surfaces is not None and len(surfaces.owner) > 0


def _unplaceable(
    geoms: np.ndarray,
    src3d: np.ndarray,
    surfaces: SurfaceColumns | None,
    flat: FlatFaces | None,
) -> dict[int, str]:
    """Records with a coordinate that is NaN, infinite or beyond any Earth, in their
    geometry, 3D geometry (its polygons read from their faces `flat`; None: the batch has
    no 3D objects) or semantic surfaces (those that are no face of the 3D geometry), and the
    first such position."""
    found = coordinates.bad_geometries(geoms)
    if flat is not None:
        found = {**_bad_solids(src3d, flat), **found}
    if surfaces is None:
        return found
    loose = np.flatnonzero(surfaces.face < 0)
    if len(loose):
        owner = surfaces.owner[loose].tolist()
        bad = coordinates.bad_geometries(surfaces.polygons()[loose])
        found = {**{owner[k]: why for k, why in bad.items()}, **found}
    return found


def _bad_solids(src3d: np.ndarray, flat: FlatFaces) -> dict[int, str]:
    """`coordinates.bad_geometries` of the 3D geometries, their polygons' positions read from
    their faces' arrays (`Solids.faces`, or read once from GEOS), where these all have a Z.
    Every value finite and within bounds, the common case, is told by the array's least and
    greatest (a NaN is neither), without the passes that say which rows are not."""
    fine = flat.coords.max(initial=-np.inf) <= LIMIT and flat.coords.min(initial=np.inf) >= -LIMIT
    if not fine and np.isnan(flat.coords[:, 2]).any():  # 2D faces: GEOS says which have Z
        return coordinates.bad_geometries(src3d)
    found: dict[int, str] = {}
    bad = np.zeros(0, np.int64) if fine else np.flatnonzero(coordinates.out_of_bounds(flat.coords))
    for k, i in zip(bad.tolist(), flat.owner[flat.polygon[flat.ring[bad]]].tolist(), strict=True):
        found.setdefault(i, coordinates.describe_position(flat.coords[k]))
    rest = np.flatnonzero(~solids.of_types(shapely.get_type_id(src3d), 3, 6))  # lines, points
    found.update((int(rest[k]), why) for k, why in coordinates.bad_geometries(src3d[rest]).items())
    return found


def _solid_faces(given: FlatFaces | None, src3d: np.ndarray) -> solids.Faces:
    """The faces of the batch's solids (those of `src3d`, and those held as their faces
    alone): as the connector hands them, else read from GEOS, once for the check of their
    positions, footprints, measures and CRS84."""
    return solids.Faces.of(src3d) if given is None else solids.Faces(*given)


def _unbuilt(given: Solids, to_crs84: ToCrs84 | None) -> tuple[Solids, np.ndarray]:
    """The solids, and which are held as their faces alone (`Solids.faces`): where every 3D
    geometry is so and is taken to CRS84 (its WKB then written from the faces' arrays), they
    stay so; else they are built, for the paths that read GEOS's geometries."""
    n = len(given.geometry_3d)
    faces = given.faces
    if (
        faces is not None
        and to_crs84 is not None
        and shapely.is_missing(np.asarray(given.geometry_3d, dtype=object)).all()
    ):
        return given, faces.owned(n)
    return given.built(), np.zeros(n, dtype=bool)


def _footprints(
    geoms: np.ndarray,
    src3d: np.ndarray,
    surfaces: SurfaceColumns | None,
    reasons: list[str | None],
    faces: solids.Faces | None,
    outlines: bool,
) -> None:
    """Footprints, in place, for the 3D objects without an explicit one: from their ground
    surfaces or their solid (whose `faces` are read, where the caller has read them);
    `outlines`: traced from the faces' edges (`footprints.footprints`)."""
    missing = np.flatnonzero(shapely.is_missing(geoms))
    if not len(missing):
        return

    def made(shapes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        grounds = None if surfaces is None else surfaces.take(rows)
        taken = None if faces is None else faces.take(rows)
        return footprints.footprints(shapes, grounds, taken, outlines)

    found, failed = _by_record(made, src3d[missing], missing)
    geoms[missing] = found
    for k, why in failed.items():
        reasons[missing[k]] = reasons[missing[k]] or f"no footprint can be made: {why}"


def _repair(geoms: np.ndarray, reasons: list[str | None], notes: list[str | None]) -> np.ndarray:
    """Invalid geometries made valid in place, with a note, or rejected where GEOS cannot; the
    bounds of every geometry."""
    bounds = shapely.bounds(geoms)
    invalid = ~shapely.is_missing(geoms) & ~validity.is_valid(geoms)
    if not invalid.any():
        return bounds
    was = geoms[invalid]  # a copy, taken once
    why = shapely.is_valid_reason(was)
    denoised, noise = _without_noise(was)
    why[noise] = [f"{w}: positions within float noise merged" for w in why[noise]]
    fixed, failed = _by_record(shapely.make_valid, denoised)  # the valid ones as they are
    for k, (i, g, w) in enumerate(zip(np.flatnonzero(invalid), fixed, why, strict=False)):
        if g is None or shapely.is_empty(g):
            w = f"{w} ({failed[k]})" if k in failed else w
            reasons[i] = reasons[i] or f"invalid geometry that cannot be repaired: {w}"
            continue
        if g.geom_type != was[k].geom_type:  # a collapsed line or ring: say what it became
            w = f"{w}: the {was[k].geom_type} became a {g.geom_type}"
        notes[i] = f"{notes[i]}; {w}" if notes[i] else w  # after the connector's repairs
    geoms[invalid] = fixed
    bounds[invalid] = shapely.bounds(fixed)
    return bounds


def _without_noise(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`geoms` (invalid ones) with the positions merged that are one written twice with float
    noise (a ring's last position a few ulps from its first, rounded on a conversion), where
    that makes them valid, and which those are. GEOS's make_valid would keep the noise as a
    sliver or a spike of its own."""
    scale = np.nanmax(np.abs(shapely.bounds(geoms)), axis=1, initial=0.0)
    tolerance = rings.NOISE * np.maximum(1.0, scale)
    merged, _ = _by_record(shapely.remove_repeated_points, geoms, tolerance)  # None: GEOS refused
    noise = shapely.is_valid(merged) & ~shapely.is_empty(merged)
    return np.where(noise, merged, geoms), noise


def _points(
    points: Points, to_crs84: ToCrs84 | None, label: str, reasons: list[str | None]
) -> np.ndarray:
    """`place` for Points: the lon/lat array, NaN where a record has none or is rejected
    for coordinates that are not finite, not on any Earth, or not transformable."""
    xy, present = points.xy, points.present
    bad = present.copy()
    bad[present] = coordinates.out_of_bounds(xy[present])
    if bad.any() or to_crs84 is not None:
        xy = xy.copy()
    for i in np.flatnonzero(bad).tolist():
        reasons[i] = reasons[i] or f"geometry has {coordinates.describe_position(xy[i])}"
        xy[i] = np.nan
    if to_crs84 is not None:
        ok = present & ~bad
        xy[ok] = to_crs84(xy[ok])
        for i in np.flatnonzero(ok & ~np.isfinite(xy).all(axis=1)).tolist():
            reasons[i] = reasons[i] or _untransformable(label)
            xy[i] = np.nan
    return xy


def _outside_lonlat(out: Placed, declared: bool, label: str, reasons: list[str | None]) -> None:
    """Rejects the records whose CRS84 bounds fall outside longitude/latitude. NaN (no
    geometry, or an empty one) is outside no range. The CRS is decided: what falls outside is
    the records' data (or a wrong declaration), rejected with its reason."""
    outside = ((out.bounds[:, :2] < _LONLAT_MIN) | (out.bounds[:, 2:] > _LONLAT_MAX)).any(axis=1)
    if not outside.any():
        return
    if (outside == positioned(out.geometry)).all():
        # not one position is lon/lat: the batch is not in the CRS it is read in, and so
        # are its records without geometry of their own (a Building made of BuildingParts)
        outside = np.ones(out.bounds.shape[0], dtype=np.bool_)
    why = (
        f"coordinates fall outside longitude/latitude when read as {label}; the declared "
        "CRS or axis order is wrong (--crs fixes it)"
        if declared
        else "coordinates fall outside longitude/latitude, which the source's format means "
        "when no CRS is declared; pass --crs with the CRS they are in (e.g. --crs EPSG:25832)"
    )
    for i in np.flatnonzero(outside):
        reasons[i] = reasons[i] or why


@dataclass
class Placer:
    """Places the batches of one ingest run; its CRS overrides what the source declares."""

    source: str
    source_format: str
    crs: str | None = None
    """`--crs`: the CRS the coordinates are in, whatever the source declares."""
    axis_order: AxisOrder | None = None
    """Overrides the connector's reading of the coordinates' axis order (`--axis-order`)."""
    path: str | None = None
    """The file (or address) read, named when the source is refused."""
    crss: dict[str, pyproj.CRS] = field(default_factory=dict, init=False)
    """The CRSs the source's coordinates were read in (one, bar a source that declares several),
    by definition: what the heights of `geometry_3d` refer to (`crs.crs_3d`)."""
    _ahead: crs84.MovedAhead | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.crs is not None:
            try:
                crslib.resolve(self.crs)
            except ConfigurationError as e:
                raise ConfigurationError(f"--crs: {e}") from None

    def ahead(self, positions: Ahead | None) -> None:
        """The positions the read will place (`Connector.ahead`) taken to CRS84 beside it,
        before its first batch (`crs84.ahead`)."""
        self._ahead = crs84.ahead(positions, self.crs, self.axis_order)

    def source_crs(
        self, batch: SourceBatch, surfaces: SurfaceColumns | None
    ) -> tuple[pyproj.CRS | None, bool]:
        """The CRS of the batch's coordinates, and whether the source declares it (else its
        format defines it). Refuses the whole source where neither names a CRS pyproj knows
        and there are coordinates to place (`surfaces`: the batch's, as columns): one
        decision for the source, never a guess."""
        declared = self.crs or batch.crs
        try:
            if declared is not None:
                return crslib.resolve(declared), True
            if batch.default_crs is not None:
                return crslib.resolve(batch.default_crs), False
            why = (
                f"no CRS is declared, and {self.source_format} coordinates without one are not "
                "longitude/latitude"
            )
        except ConfigurationError as e:
            why = str(e)
        if not _has_coordinates(batch, surfaces):
            return None, False
        raise UnknownCRS(
            f"{self.path or f'source {self.source!r}'}: {why}; pass --crs with the CRS the "
            "coordinates are in (e.g. --crs EPSG:25832), or crs: in its catalog entry"
        )

    def place(
        self, batch: SourceBatch, reasons: list[str | None], notes: list[str | None]
    ) -> Placed:
        """2D CRS84 geometries, 3D ones where the source has Z, the source CRS label, and for
        3D objects their measures and semantic surfaces."""
        surfaces = _columns(batch.solids)
        crs, declared = self.source_crs(batch, surfaces)
        if crs is None:  # nothing to place
            n = len(batch)
            return Placed(np.full(n, None, object), None, None, np.full((n, 4), np.nan))
        self.crss.setdefault(crs.srs, crs)
        label = crslib.label(crs)
        axis = self.axis_order or batch.axis_order
        to_crs84 = None if crslib.is_lonlat(crs, axis) else crslib.to_crs84(crs, axis)
        if isinstance(batch.geometries, Points):
            xy = _points(batch.geometries, to_crs84, label, reasons)
            out = Placed(Points(xy), None, label, np.hstack([xy, xy]))
        else:
            out = self._shapes(batch, surfaces, crs, to_crs84, label, reasons, notes)
        _outside_lonlat(out, declared, label, reasons)
        return out

    def _shapes(
        self,
        batch: SourceBatch,
        surfaces: SurfaceColumns | None,
        crs: pyproj.CRS,
        to_crs84: ToCrs84 | None,
        label: str,
        reasons: list[str | None],
        notes: list[str | None],
    ) -> Placed:
        """`place` for shapely geometries: footprints of 3D objects, measures, CRS84, repairs.

        Coordinates that are not finite or not on any Earth are rejected first, before GEOS
        or PROJ sees them; a geometry GEOS still refuses is rejected on its own."""
        objects3d = batch.solids is not None
        geoms = np.array(batch.geometries, dtype=object)  # a copy: records are rejected in it
        unbuilt = np.zeros(len(geoms), dtype=bool)
        src3d, flat, outlines = geoms, None, False
        if batch.solids is not None:
            given, unbuilt = _unbuilt(batch.solids, to_crs84)
            src3d, flat = np.array(given.geometry_3d, dtype=object), given.faces
            # traced outlines are the same areas as GEOS's unions, their rings started and
            # turned otherwise: for connectors that hand their faces on and allow it
            outlines = flat is not None and given.outlines
        faces3d = _solid_faces(flat, src3d) if objects3d else None
        unplaceable = _unplaceable(geoms, src3d, surfaces, faces3d)
        for i, why in unplaceable.items():
            reasons[i] = reasons[i] or f"geometry has {why}"
            geoms[i] = src3d[i] = None
            unbuilt[i] = False
        if surfaces is not None and unplaceable:
            surfaces = surfaces.dropped(list(unplaceable))
        axis = self.axis_order or batch.axis_order
        has_z = shapely.has_z(src3d) | unbuilt  # faces alone: a connector's, with Z
        geoms3d = np.full(len(geoms), None, object)
        geoms3d[has_z] = src3d[has_z]
        solid_faces, types3d = None, None  # those of the placeable solids with Z, and their types
        if faces3d is not None:  # those of the placeable solids
            placeable = np.flatnonzero(~shapely.is_missing(src3d) | unbuilt)
            faces3d = faces3d.take(placeable, renumber=False)
            solid_faces = faces3d.take(np.flatnonzero(has_z), renumber=False)
            types3d = solids.kinds(geoms3d, solid_faces)  # once, for CRS84 and the measures
        # the solids go to CRS84 on a thread while their footprints are traced and measured
        begun = (
            None
            if to_crs84 is None
            else crs84.begin(to_crs84, geoms3d, has_z, solid_faces, types3d, self._ahead)
        )
        if objects3d:
            _footprints(geoms, src3d, surfaces, reasons, faces3d, outlines)
        measures = None
        if solid_faces is not None and types3d is not None:  # 3D objects; a point or line
            beside = crs84.beside(begun)  # the solids measured on the thread, after CRS84
            measures = measure(crs, axis, geoms, geoms3d, surfaces, solid_faces, types3d, beside)
        placed3d: np.ndarray | pa.Array = geoms3d
        if to_crs84 is not None:
            geoms, placed3d = crs84.to_crs84(
                to_crs84, geoms, geoms3d, has_z, measures, begun, _untransformable(label), reasons
            )
        elif measures is not None and measures.surface_polygons is None:  # faces of the solids
            assert solid_faces is not None and measures.surface_parts is not None
            measures.surface_polygons = solid_faces.polygons(
                measures.surface_parts, solid_faces.coords
            )
        if shapely.has_z(geoms).any():
            geoms = shapely.force_2d(geoms)
        bounds = _repair(geoms, reasons, notes)
        measures = measures and measures.finish()
        return Placed(geoms, placed3d if has_z.any() else None, label, bounds, measures)
