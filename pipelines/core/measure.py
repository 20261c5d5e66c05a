"""3D objects measured in metres while still in their source CRS: footprint area, volume,
height, and the area, tilt and azimuth of each semantic surface (pipelines/core/solids.py,
orientation.py).

A projected CRS is measured in as it is; geographic coordinates in the UTM zone of the batch's
centre, as areas and angles need metres east and north.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial

import numpy as np
import pyarrow as pa
import pyproj
import shapely

from citypipe.core import orientation, solids
from citypipe.geo import wkb
from citypipe.geo.surfaces import SurfaceColumns

__all__ = ["Beside", "Measures", "floats", "measure", "surface_parts"]


@dataclass
class Measures:
    """The measures of a batch's 3D objects, aligned with its records (NaN where unknown),
    and of their semantic surfaces, one entry per surface."""

    footprint_area: np.ndarray
    volume: np.ndarray
    height: np.ndarray
    surface_owner: np.ndarray | None = None
    """The record each surface bounds; None when the batch has no semantic surfaces."""
    surface_types: Sequence[str] | np.ndarray = field(default_factory=list)
    surface_polygons: np.ndarray | pa.Array | None = field(
        default_factory=lambda: np.empty(0, dtype=object)
    )
    """In the source CRS, until the caller takes them to CRS84: as shapely polygons, or their
    WKB where it is written from the arrays they are built of (`pipelines/core/crs84.py`);
    None until then where every surface is a face of its record's 3D geometry
    (`surface_parts`): they are placed with those faces."""
    surface_area: np.ndarray | None = None
    surface_tilt: np.ndarray | None = None
    surface_azimuth: np.ndarray | None = None
    surface_parts: np.ndarray | None = None
    """Which of `shapely.get_parts` of the 3D geometries each surface is, where every surface
    is one of their faces (`surface_parts`): their CRS84 polygons are then those faces'."""
    pending: Callable[[], object] | None = field(default=None, repr=False)
    """The solids' measures made beside (`measure`'s `beside`), until `finish`."""

    def finish(self) -> Measures:
        """These measures whole: once those made beside are (their error raised here)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending()
        return self

    def surface_wkb_of(self, rows: slice | np.ndarray) -> pa.Array:
        """The 3D WKB of the surfaces `rows` (a slice or their indices)."""
        assert self.surface_polygons is not None  # placed by then
        return wkb.to_wkb_3d(self.surface_polygons, rows)


def floats(values: np.ndarray) -> list[float | None]:
    """`values` as Python floats, None where NaN: converted at once, as a numpy scalar taken
    and tested per object costs about 1 us, and the NaN found by numpy, not tested one by one
    in Python (Den Haag's 16,209 surface areas: 0.44 -> 0.16 ms)."""
    out: list[float | None] = values.tolist()
    for i in np.flatnonzero(np.isnan(values)).tolist():
        out[i] = None
    return out


def _metres(
    crs: pyproj.CRS, axis_order: str, geometries: np.ndarray
) -> Callable[[np.ndarray], np.ndarray] | None:
    """A `shapely.transform` function from `crs` to metres east and north: the CRS itself where
    it is projected, else the UTM zone of the geometries' centre; None where that centre is not
    on the Earth (coordinates that are not what the CRS says: the range check rejects them)."""
    projected, swap = _horizontal(crs.srs, axis_order)
    tr = None
    if projected and not swap:
        return _as_given
    if not projected:
        x0, y0, x1, y1 = shapely.total_bounds(geometries)
        lon, lat = ((y0 + y1) / 2, (x0 + x1) / 2) if swap else ((x0 + x1) / 2, (y0 + y1) / 2)
        zone = _utm_zone(lon, lat)
        if zone is None:
            return None
        tr = _to_utm(crs.srs, zone)

    def apply(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        x, y = (coords[:, 1], coords[:, 0]) if swap else (coords[:, 0], coords[:, 1])
        out[:, 0], out[:, 1] = tr.transform(x, y) if tr else (x, y)
        return out

    return apply


@lru_cache(maxsize=64)
def _horizontal(srs: str, axis_order: str) -> tuple[bool, bool]:
    """Whether the horizontal part of the CRS `srs` is projected, and whether its coordinates
    come northing first: asked once a CRS, as pyproj makes the objects that answer on every
    ask (0.5 ms a batch for a compound CRS's parts)."""
    crs = pyproj.CRS.from_user_input(srs)
    h = crs.sub_crs_list[0] if crs.is_compound else crs
    swap = axis_order == "authority" and h.axis_info[0].direction in ("north", "south")
    return h.is_projected, swap


def _as_given(coords: np.ndarray) -> np.ndarray:
    """Coordinates already in metres east and north (`_metres` of a projected CRS whose axes
    are in that order): geometries are measured as they are, not copied."""
    return coords


def _in_metres(
    to_metres: Callable[[np.ndarray], np.ndarray], geometries: np.ndarray, z: bool
) -> np.ndarray:
    """`geometries` in metres east and north: themselves where they are already."""
    if to_metres is _as_given:
        return geometries
    return shapely.transform(geometries, to_metres, include_z=z)


def _utm_zone(lon: float, lat: float) -> int | None:
    """The EPSG code of the WGS 84 / UTM zone whose area of use holds (lon, lat): zones are
    6 degrees of longitude from 180 W, north (326zz) up to 84 N, south (327zz) down to 80 S.
    Arithmetic, as the zones are defined: the EPSG database's query for it costs 50 ms a batch.
    None where the point is on no zone (or not on the Earth)."""
    if not (-180 <= lon <= 180 and -80 <= lat <= 84):  # also False for NaN
        return None
    zone = int((lon + 180) // 6) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


@lru_cache(maxsize=64)
def _to_utm(srs: str, zone: int) -> pyproj.Transformer:
    """The transformer from a geographic CRS (its horizontal part) to a UTM zone, made once."""
    crs = pyproj.CRS.from_user_input(srs)
    h = crs.sub_crs_list[0] if crs.is_compound else crs
    return pyproj.Transformer.from_crs(h, pyproj.CRS.from_epsg(zone), always_xy=True)


def surface_parts(
    surfaces: SurfaceColumns, faces: solids.Faces, kinds: np.ndarray
) -> np.ndarray | None:
    """Which of the parts of the geometries whose `faces` these are (`kinds`: their
    `solids.kinds`) each semantic surface is (in order), from its face; None unless every
    geometry is polygons only (their parts are then their faces) and every surface is one of
    them (none has the face -1)."""
    if not solids.of_types(kinds, -1, 3, 6).all() or (surfaces.face < 0).any():
        return None
    if (kinds[surfaces.owner] == -1).any():
        return None
    return faces.starts(len(kinds))[surfaces.owner] + surfaces.face


def measure(
    crs: pyproj.CRS,
    axis_order: str,
    footprints: np.ndarray,
    geometries_3d: np.ndarray,
    surfaces: SurfaceColumns | None,
    faces: solids.Faces,
    kinds: np.ndarray,
    beside: Beside | None = None,
) -> Measures | None:
    """The measures of 2D footprints, 3D geometries and their semantic surfaces (None: none
    known) in `crs`; None where no metric CRS is found for them.
    Where every surface is a face of its 3D geometry, the surfaces are measured from the
    faces of the solid (`surface_parts`).
    `faces` are those of `geometries_3d` (`Solids.faces`, or read once from GEOS): volumes and
    heights use them, their positions taken to metres where the CRS is not in metres (the
    solids are not built again there only to be read); `kinds` their `solids.kinds`.
    `beside`: where given, and the CRS is in metres as it is, the solids' volumes, heights
    and surfaces' orientations are made by it (a thread beside the caller's: the newell
    kernel lets go of the GIL), the caller's `Measures.finish` waiting for them."""
    to_metres = _metres(crs, axis_order, footprints)
    if to_metres is None:
        return None
    footprint = _in_metres(to_metres, footprints, False)
    n = len(geometries_3d)
    out = Measures(
        footprint_area=np.where(shapely.is_missing(footprint), np.nan, shapely.area(footprint)),
        volume=np.full(n, np.nan),
        height=np.full(n, np.nan),
    )
    polygons = None
    if surfaces is not None:
        out.surface_owner, out.surface_types = surfaces.owner, surfaces.types
        out.surface_parts = surface_parts(surfaces, faces, kinds)
        # the caller takes them to CRS84 (in place of these) while the solids are measured
        polygons = None if out.surface_parts is not None else surfaces.polygons()
        out.surface_polygons = polygons
    if beside is None or to_metres is not _as_given:
        _solids(out, to_metres, geometries_3d, surfaces, faces, kinds, polygons)
    else:  # the rows as they are now: the caller places them meanwhile
        given = geometries_3d.copy()
        out.pending = beside(
            partial(_solids, out, to_metres, given, surfaces, faces, kinds, polygons)
        )
    return out


Beside = Callable[[Callable[[], None]], Callable[[], object]]
"""Work handed to another thread (`measure`'s `beside`): what waits for it to be done."""


def _solids(
    out: Measures,
    to_metres: Callable[[np.ndarray], np.ndarray],
    geometries_3d: np.ndarray,
    surfaces: SurfaceColumns | None,
    faces: solids.Faces,
    kinds: np.ndarray,
    polygons: np.ndarray | None,
) -> None:
    """The volumes and heights of the 3D geometries (their `faces`), and the area, tilt and
    azimuth of their semantic surfaces (`polygons`, in the source CRS, where they are not
    faces of the solids: `Measures.surface_parts`), into `out`."""
    metric = faces if to_metres is _as_given else faces._replace(coords=to_metres(faces.coords))
    volume, face_vectors, extents = solids.volumes_and_faces(geometries_3d, metric)
    out.volume = volume
    out.height = solids.heights(geometries_3d, faces, extents, kinds)  # Z: the same in metres
    if surfaces is None:
        return
    if polygons is None:
        vectors = face_vectors[out.surface_parts]
    else:
        vectors = orientation.area_vectors(_in_metres(to_metres, polygons, True))
    out.surface_area, out.surface_tilt, out.surface_azimuth = orientation.orientations(
        vectors, surfaces.named("Roof")
    )
