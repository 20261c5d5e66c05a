"""3D objects measured in metres while still in their source CRS: footprint area, volume,
height, and the area, tilt and azimuth of each semantic surface (pipelines/core/solids.py).

A projected CRS is measured in as it is; geographic coordinates in the UTM zone of the batch's
centre, as areas and angles need metres east and north.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyproj
import shapely

from citypipe.connectors.base import Surface
from citypipe.core import solids

__all__ = ["Measures", "measure"]


@dataclass
class Measures:
    """The measures of a batch's 3D objects, aligned with its records (NaN where unknown),
    and of their semantic surfaces, one entry per surface."""

    footprint_area: np.ndarray
    volume: np.ndarray
    height: np.ndarray
    surface_owner: np.ndarray | None = None
    """The record each surface bounds; None when the batch has no semantic surfaces."""
    surface_types: list[str] = field(default_factory=list)
    surface_polygons: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    """In the source CRS, until the caller takes them to CRS84."""
    surface_area: np.ndarray | None = None
    surface_tilt: np.ndarray | None = None
    surface_azimuth: np.ndarray | None = None

    def height_at(self, i: int) -> float | None:
        """Height of record i from its 3D geometry (top minus bottom), where it has one."""
        h = self.height[i]
        return None if np.isnan(h) else float(h)


def _same(coords: np.ndarray) -> np.ndarray:
    """A projected CRS read east, north: measured in as it is (no transform, no copy)."""
    return coords


def _metres(
    crs: pyproj.CRS, axis_order: str, geometries: np.ndarray
) -> Callable[[np.ndarray], np.ndarray] | None:
    """A `shapely.transform` function from `crs` to metres east and north: the CRS itself where
    it is projected (`_same` where its axes are east, north), else the UTM zone of the
    geometries' centre; None where that centre is not on the Earth (coordinates that are not
    what the CRS says: the range check rejects them)."""
    h = crs.sub_crs_list[0] if crs.is_compound else crs
    swap = axis_order == "authority" and h.axis_info[0].direction in ("north", "south")
    tr = None
    if h.is_projected and not swap:
        return _same
    if not h.is_projected:
        x0, y0, x1, y1 = shapely.total_bounds(geometries)
        lon, lat = ((y0 + y1) / 2, (x0 + x1) / 2) if swap else ((x0 + x1) / 2, (y0 + y1) / 2)
        if not np.isfinite([lon, lat]).all():  # no geometry left to measure
            return None
        zone = pyproj.database.query_utm_crs_info(
            datum_name="WGS 84", area_of_interest=pyproj.aoi.AreaOfInterest(lon, lat, lon, lat)
        )
        if not zone:
            return None
        tr = pyproj.Transformer.from_crs(h, pyproj.CRS.from_epsg(zone[0].code), always_xy=True)

    def apply(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        x, y = (coords[:, 1], coords[:, 0]) if swap else (coords[:, 0], coords[:, 1])
        out[:, 0], out[:, 1] = tr.transform(x, y) if tr else (x, y)
        return out

    return apply


def _in_metres(
    geometries: np.ndarray, to_metres: Callable[[np.ndarray], np.ndarray], include_z: bool = False
) -> np.ndarray:
    return (
        geometries
        if to_metres is _same
        else shapely.transform(geometries, to_metres, include_z=include_z)
    )


def measure(
    crs: pyproj.CRS,
    axis_order: str,
    footprints: np.ndarray,
    geometries_3d: np.ndarray,
    surfaces: Sequence[list[Surface] | None] | None,
) -> Measures | None:
    """The measures of 2D footprints, 3D geometries and per-record semantic surfaces (lists of
    (type, polygon) or None) in `crs`; None where no metric CRS is found for them."""
    to_metres = _metres(crs, axis_order, footprints)
    if to_metres is None:
        return None
    footprint = _in_metres(footprints, to_metres)
    solid = _in_metres(geometries_3d, to_metres, include_z=True)
    out = Measures(
        footprint_area=np.where(shapely.is_missing(footprint), np.nan, shapely.area(footprint)),
        volume=solids.volumes(solid),
        height=solids.heights(solid),
    )
    if surfaces is None:
        return out
    owners = [(i, t, p) for i, surf in enumerate(surfaces) for t, p in surf or ()]
    out.surface_owner = np.array([o[0] for o in owners], dtype=np.int64)
    out.surface_types = [o[1] for o in owners]
    out.surface_polygons = np.array([o[2] for o in owners], dtype=object)
    metric = _in_metres(out.surface_polygons, to_metres, include_z=True)
    out.surface_area, out.surface_tilt, out.surface_azimuth = solids.surface_measures(
        metric, out.surface_types
    )
    return out
