"""A batch's placed geometries taken to OGC:CRS84: footprints, 3D geometry and semantic surfaces,
every position in one PROJ call.

Footprints, solids and surfaces share their corners, so their positions are gathered into one
array and each distinct position is transformed once (`crs.to_crs84`). Solids whose faces the
pipeline already holds as flat arrays (`solids.Faces`: handed on by the connector, or read
once for the measures) are written as WKB from those arrays at the new positions
(pipelines/geo/wkb_ragged.py), and their semantic surfaces from the same faces: GEOS neither
copies coordinates out of them nor builds and writes them again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import shapely
from shapely import GeometryType

from citypipe.connectors import coordinates
from citypipe.connectors.ragged import offsets
from citypipe.core.measure import Measures
from citypipe.core.solids import Faces
from citypipe.geo import wkb_ragged

__all__ = ["to_crs84"]

ToCrs84 = Callable[[np.ndarray], np.ndarray]


def to_crs84(
    transform: ToCrs84,
    geoms: np.ndarray,
    geoms3d: np.ndarray,
    has_z: np.ndarray,
    measures: Measures | None,
    faces: Faces | None,
    untransformable: str,
    reasons: list[str | None],
) -> tuple[np.ndarray, pa.Array | None]:
    """The 2D geometries in CRS84, and the 3D ones there: written as WKB from the faces'
    arrays where the caller holds them (`wkb_ragged`: GEOS need not build them, nor write
    them again), else taken there in place, as are the semantic surfaces.
    `faces` are those of `geometries_3d[has_z]` (owned by their rows of `geoms3d`) where the
    caller holds them. A record whose coordinates PROJ cannot transform is rejected with the
    reason `untransformable`."""
    flat_z = shapely.has_z(geoms)
    solids = geoms3d[has_z]
    if faces is not None and not (shapely.get_type_id(solids) == GeometryType.MULTIPOLYGON).all():
        faces = None  # a solid that is no multipolygon of its faces (CityGML's Polygon, lines)
    parts = None if measures is None else measures.surface_parts
    groups = [geoms[~flat_z], geoms[flat_z]]
    rows = [np.flatnonzero(~flat_z), np.flatnonzero(flat_z)]
    if faces is None:
        groups.append(solids)
    if measures is not None and parts is None:
        groups.append(measures.surface_polygons)
    read = [
        shapely.get_coordinates(g, include_z=k > 0, return_index=True) for k, g in enumerate(groups)
    ]
    if faces is not None:
        read.insert(2, (faces.coords, faces.owner[faces.polygon[faces.ring]]))
    rows.append(np.arange(len(geoms3d)) if faces is not None else np.flatnonzero(has_z))
    xy = transform(np.concatenate([c[:, :2] for c, _ in read]))
    lost = _lost(xy, [owner for _, owner in read[:3]], rows)
    moved, at = [], 0
    for c, _ in read:
        moved.append(np.column_stack([xy[at : at + len(c)], c[:, 2:]]))
        at += len(c)
    out = geoms.copy()
    out[~flat_z], out[flat_z] = _set(groups[0], moved[0]), _set(groups[1], moved[1])
    placed: np.ndarray | pa.Array = geoms3d
    nesting = None
    if faces is None:
        geoms3d[has_z] = _set(groups[2], moved[2])
    else:
        placed, nesting = _solids(geoms3d, has_z, faces, moved[2])
    if measures is not None:  # surfaces that are faces of the solids came with them
        measures.surface_polygons = (
            _surfaces(geoms3d, parts, faces, moved[2], placed, nesting)
            if parts is not None
            else _set(groups[-1], moved[-1])
        )
    for i in lost:
        reasons[i] = reasons[i] or untransformable
        out[i] = geoms3d[i] = None
    return out, placed  # WKB of the records rejected here too: rejects are not written


def _solids(
    geoms3d: np.ndarray, has_z: np.ndarray, faces: Faces, coords: np.ndarray
) -> tuple[np.ndarray | pa.Array, tuple[np.ndarray, ...] | None]:
    """The 3D geometries in CRS84 from their `faces` at `coords`: their WKB, written from the
    arrays (`wkb_ragged`, null for the rows without) with the offsets it was written from, or
    in place as shapely geometries where GEOS is to write it (no offsets)."""
    everything = np.ones(len(faces.owner), dtype=bool)
    ragged, nesting = faces.ragged(everything, coords, len(geoms3d))
    written = wkb_ragged.polygons_z(ragged, nesting, has_z)
    if written is not None:
        return written, nesting
    of_solids = (*nesting[:2], offsets(np.diff(nesting[2])[has_z]))
    geoms3d[has_z] = shapely.from_ragged_array(GeometryType.MULTIPOLYGON, ragged, of_solids)
    return geoms3d, None


def _set(geometries: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Copies of `geometries` at `coords` (their coordinates' rows, as read)."""
    moved = np.array(geometries, dtype=object)
    shapely.set_coordinates(moved, coords)
    return moved


def _lost(xy: np.ndarray, owners: list[np.ndarray], rows: list[np.ndarray]) -> set[int]:
    """The records with a position PROJ could not take to CRS84 (not finite, or beyond any
    Earth), in the first groups of `xy`: each group's positions owned by `owners`, which are
    rows of the group (`rows`: the record of each)."""
    bad = np.flatnonzero(coordinates.out_of_bounds(xy))
    if not len(bad):
        return set()
    lost, at = set(), 0
    for owner, row in zip(owners, rows, strict=True):
        here = bad[(bad >= at) & (bad < at + len(owner))] - at
        lost.update(row[owner[here]].tolist())
        at += len(owner)
    return lost


def _surfaces(
    geoms3d: np.ndarray,
    surface_parts: np.ndarray,
    faces: Faces | None,
    coords: np.ndarray,
    placed: np.ndarray | pa.Array,
    nesting: tuple[np.ndarray, ...] | None,
) -> np.ndarray | pa.Array:
    """The semantic surfaces that are faces of the solids, in CRS84: cut out of the solids'
    WKB where it was written from the faces' arrays (`nesting`: their offsets), else made
    from those arrays where the caller holds them (`Faces.polygons`), else the solids' parts."""
    if nesting is not None:
        return wkb_ragged.parts_z(placed, nesting, surface_parts)
    if faces is not None:
        return faces.polygons(surface_parts, coords)
    return shapely.get_parts(geoms3d)[surface_parts]
