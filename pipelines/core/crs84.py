"""A batch's placed geometries taken to OGC:CRS84: footprints, 3D geometry and semantic surfaces,
every position in one PROJ call.

Footprints, solids and surfaces share their corners, so their positions are gathered into one
array and each distinct position is transformed once (`transform.ToCrs84.distinct`). Solids whose
faces the pipeline already holds as flat arrays (`solids.Faces`: handed on by the connector,
or read once for the measures) are written as WKB from those arrays, each corner read at its
moved position (pipelines/geo/wkb_ragged.py: no moved copy of every corner is made), and
their semantic surfaces cut out of it: GEOS neither copies coordinates out of them nor
builds and writes them again.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pyarrow as pa
import shapely
from shapely import GeometryType

from citypipe.connectors import coordinates
from citypipe.connectors.ragged import offsets
from citypipe.core.measure import Measures
from citypipe.core.solids import Faces, kinds
from citypipe.geo import wkb_ragged
from citypipe.geo.transform import ToCrs84

__all__ = ["ToCrs84", "to_crs84"]


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
    if faces is not None and not (kinds(geoms3d, faces)[has_z] == GeometryType.MULTIPOLYGON).all():
        faces = None  # a solid that is no multipolygon of its faces (CityGML's Polygon, lines)
    parts = None if measures is None else measures.surface_parts
    groups = [geoms[~flat_z], geoms[flat_z]]
    rows = [np.flatnonzero(~flat_z), np.flatnonzero(flat_z)]
    if faces is None:
        groups.append(solids)
    if measures is not None and parts is None:
        groups.append(measures.surface_polygons)
    read: list[tuple[np.ndarray, np.ndarray | None]] = [
        shapely.get_coordinates(g, include_z=k > 0, return_index=True) for k, g in enumerate(groups)
    ]
    if faces is not None:
        read.insert(2, (faces.coords, None))  # each position's owner read where it is lost
    rows.append(np.arange(len(geoms3d)) if faces is not None else np.flatnonzero(has_z))
    # each group's rows of the distinct positions, which alone are moved
    moved, codes = transform.distinct(*(c for c, _ in read))
    at = np.cumsum([0] + [len(c) for c, _ in read])
    of = [codes[a:b] for a, b in pairwise(at)]
    lost = _lost(moved, of[:3], [owner for _, owner in read[:3]], rows, faces)
    out = geoms.copy()
    out[~flat_z] = _set(groups[0], moved, of[0], read[0][0])
    out[flat_z] = _set(groups[1], moved, of[1], read[1][0])
    placed: np.ndarray | wkb_ragged.Solids = geoms3d
    if faces is None:
        geoms3d[has_z] = _set(groups[2], moved, of[2], read[2][0])
    else:
        placed = _solids(geoms3d, has_z, faces, moved, of[2])
    if measures is not None:  # surfaces that are faces of the solids came with them
        measures.surface_polygons = (
            _surfaces(geoms3d, parts, faces, placed, moved, of[2])
            if parts is not None
            else _set(groups[-1], moved, of[-1], read[-1][0])
        )
    for i in lost:
        reasons[i] = reasons[i] or untransformable
        out[i] = geoms3d[i] = None
    # WKB of the records rejected here too: rejects are not written
    return out, placed.wkb if isinstance(placed, wkb_ragged.Solids) else placed


def _solids(
    geoms3d: np.ndarray, has_z: np.ndarray, faces: Faces, moved: np.ndarray, codes: np.ndarray
) -> np.ndarray | wkb_ragged.Solids:
    """The 3D geometries in CRS84 from their `faces`, each corner at `moved[codes]`: their
    WKB written from the arrays (`wkb_ragged`, null for the rows without), or in place as
    shapely geometries where GEOS is to write it."""
    flat = (faces.ring, faces.polygon, faces.owner)
    written = wkb_ragged.solids_z(moved, codes, faces.coords[:, 2], flat, has_z)
    if written is not None:
        return written
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
    moved: np.ndarray,
    codes: list[np.ndarray],
    owners: list[np.ndarray | None],
    rows: list[np.ndarray],
    faces: Faces | None,
) -> set[int]:
    """The records with a position PROJ could not take to CRS84 (not finite, or beyond any
    Earth): of each group, its positions' rows of `moved` (`codes`), owned by `owners`,
    which are rows of the group (`rows`: the record of each); None for the `faces`'
    positions, whose owners are read through their rings and faces for those lost alone (a
    gather over every position otherwise)."""
    bad = coordinates.out_of_bounds(moved)
    if not bad.any():
        return set()
    lost = set()
    for code, owner, row in zip(codes, owners, rows, strict=True):
        at = bad[code]
        if owner is None:
            assert faces is not None
            lost.update(row[faces.owner[faces.polygon[faces.ring[at]]]].tolist())
        else:
            lost.update(row[owner[at]].tolist())
    return lost


def _surfaces(
    geoms3d: np.ndarray,
    surface_parts: np.ndarray,
    faces: Faces | None,
    placed: np.ndarray | wkb_ragged.Solids,
    moved: np.ndarray,
    codes: np.ndarray,
) -> np.ndarray | pa.Array:
    """The semantic surfaces that are faces of the solids, in CRS84: cut out of the solids'
    WKB where it was written from the faces' arrays, else made from those arrays where the
    caller holds them (`Faces.polygons`), else the solids' parts."""
    if isinstance(placed, wkb_ragged.Solids):
        return placed.faces(surface_parts)
    if faces is not None:
        return faces.polygons(surface_parts, _corners(moved, codes, faces.coords))
    return shapely.get_parts(geoms3d)[surface_parts]
