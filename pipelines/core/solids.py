"""Measures of 3D city objects: footprints, surface area, tilt and azimuth, and volumes.

Connectors hand over 3D geometry as polygons with Z (the faces of a solid, the semantic
surfaces); everything here is vectorised over all faces of a batch with numpy. Areas and
volumes are only meaningful in metres, so the caller passes geometries in a projected CRS.

Orientation: CityGML and CityJSON give faces counter-clockwise seen from outside, so the
right-hand (Newell) normal points out of the object. Roofs whose normal points down were
written the other way round and are flipped; for other faces the source's word is taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely

__all__ = ["area_vectors", "footprints", "heights", "polygons_of", "surface_measures", "volumes"]

FLAT_DEG = 1.0
"""Faces within this angle of horizontal have no azimuth."""


def polygons_of(geometry: Any) -> np.ndarray:
    """The polygons of a geometry (its faces), as an array; empty when it has none."""
    if geometry is None or shapely.is_empty(geometry):
        return np.empty(0, dtype=object)
    parts = shapely.get_parts(geometry)
    return parts[shapely.get_type_id(parts) == 3]


def area_vectors(polygons: np.ndarray) -> np.ndarray:
    """Newell's vector of each polygon: the normal scaled by twice the area (holes subtracted,
    their rings running the other way). Shape (n, 3); zero for polygons without Z."""
    out = np.zeros((len(polygons), 3))
    if len(polygons) == 0:
        return out
    rings = shapely.get_rings(polygons, return_index=True)
    coords, ring = shapely.get_coordinates(rings[0], include_z=True, return_index=True)
    coords = np.nan_to_num(coords)
    same = ring[1:] == ring[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    terms = np.column_stack(
        [
            (a[:, 1] - b[:, 1]) * (a[:, 2] + b[:, 2]),
            (a[:, 2] - b[:, 2]) * (a[:, 0] + b[:, 0]),
            (a[:, 0] - b[:, 0]) * (a[:, 1] + b[:, 1]),
        ]
    )
    owner = rings[1][ring[:-1][same]]  # the polygon each edge belongs to
    for k in range(3):
        out[:, k] = np.bincount(owner, weights=terms[:, k], minlength=len(polygons))
    return out


def surface_measures(
    polygons: np.ndarray, types: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area (m²), tilt (degrees from facing straight up: 0 flat roof, 90 wall, 180 floor) and
    azimuth (compass degrees the face looks to, NaN when flat) of each polygon."""
    n = area_vectors(polygons)
    roof_down = np.array(["Roof" in t for t in types], dtype=bool) & (n[:, 2] < 0)
    n[roof_down] *= -1
    length = np.linalg.norm(n, axis=1)
    area = length / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        tilt = np.degrees(np.arccos(np.clip(n[:, 2] / length, -1, 1)))
        azimuth = np.degrees(np.arctan2(n[:, 0], n[:, 1])) % 360
    flat = (tilt < FLAT_DEG) | (tilt > 180 - FLAT_DEG) | (length == 0)
    azimuth[flat] = np.nan
    return area, tilt, azimuth


def heights(geometries: np.ndarray) -> np.ndarray:
    """Top minus bottom of each geometry's Z, NaN where it has none."""
    out = np.full(len(geometries), np.nan)
    coords, owner = shapely.get_coordinates(geometries, include_z=True, return_index=True)
    z = coords[:, 2]
    ok = ~np.isnan(z)
    if ok.any():
        top = np.full(len(geometries), -np.inf)
        bottom = np.full(len(geometries), np.inf)
        np.maximum.at(top, owner[ok], z[ok])
        np.minimum.at(bottom, owner[ok], z[ok])
        has = np.isfinite(top)
        out[has] = top[has] - bottom[has]
    return out


def volumes(geometries: np.ndarray) -> np.ndarray:
    """Volume (m³) of each geometry whose faces close a shell, NaN for the others.

    Divergence theorem: V = Σ N_f · p_f / 6 over the faces f, with N_f the area vector and p_f
    a vertex of f. A shell is closed when every edge is shared by an even number of faces.
    """
    out = np.full(len(geometries), np.nan)
    parts, owner = shapely.get_parts(geometries, return_index=True)
    polygon = shapely.get_type_id(parts) == 3
    faces, owner = parts[polygon], owner[polygon]
    if len(faces) == 0:
        return out
    n = area_vectors(faces)
    first = shapely.get_coordinates(
        shapely.get_point(shapely.get_exterior_ring(faces), 0), include_z=True
    )
    contribution = np.einsum("ij,ij->i", n, np.nan_to_num(first)) / 6
    total = np.bincount(owner, weights=contribution, minlength=len(geometries))
    closed = _closed(faces, owner, len(geometries))
    out[closed] = np.abs(total[closed])
    return out


def _closed(faces: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Which objects' faces share every edge an even number of times (mm precision).

    A position written twice in a row (CityJSON rings that repeat a vertex, a gml:Ring whose
    curves meet) is an edge of no length, shared with no face: it does not open the shell.
    """
    rings = shapely.get_rings(faces, return_index=True)
    coords, ring = shapely.get_coordinates(rings[0], include_z=True, return_index=True)
    key = np.round(np.nan_to_num(coords) * 1000).astype(np.int64)
    step = key[1:] != key[:-1]  # columns, not .any(axis=1): numpy is slow on 3 of them
    same = (ring[1:] == ring[:-1]) & (step[:, 0] | step[:, 1] | step[:, 2])
    a, b = key[:-1][same], key[1:][same]
    obj = owner[rings[1][ring[:-1][same]]]
    less = _less(a, b)[:, None]
    lo, hi = np.where(less, a, b), np.where(less, b, a)
    edges = np.ascontiguousarray(np.column_stack([obj, lo, hi]))
    rows = edges.view(np.dtype((np.void, edges.dtype.itemsize * edges.shape[1]))).ravel()
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    odd = (counts % 2 == 1)[inverse]
    has_faces = np.bincount(owner, minlength=count) > 0
    open_objects = np.bincount(obj[odd], minlength=count) > 0
    return has_faces & ~open_objects


def _less(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise lexicographic a < b for integer coordinate rows."""
    diff = a != b
    first = np.argmax(diff, axis=1)
    rows = np.arange(len(a))
    return diff.any(axis=1) & (a[rows, first] < b[rows, first])


def footprints(geometries: np.ndarray, surfaces: Sequence[Any]) -> np.ndarray:
    """2D footprint of each object: its ground surfaces, else the faces of its 3D geometry that
    look down, else all its faces, projected on the plane; None without any.

    Faces that do not overlap in the plane (a solid's bottom) already form a valid footprint;
    faces that share edges (a surface split in patches) are merged as a coverage, and only
    faces that overlap need a full union.
    """
    out = np.full(len(geometries), None, dtype=object)
    candidates: list[np.ndarray] = []
    owners: list[int] = []
    grounded: list[bool] = []
    for i, (g, surf) in enumerate(zip(geometries, surfaces, strict=False)):
        ground = [p for t, p in surf or () if "Ground" in t]
        faces = np.asarray(ground, dtype=object) if ground else polygons_of(g)
        if len(faces):
            candidates.append(faces)
            owners.append(i)
            grounded.append(bool(ground))
        elif g is not None:
            out[i] = shapely.force_2d(g)
    if not owners:
        return out
    faces = np.concatenate(candidates)
    sizes = np.array([len(c) for c in candidates])
    group = np.repeat(np.arange(len(owners)), sizes)
    down = area_vectors(faces)[:, 2] < 0
    any_down = np.bincount(group, weights=down, minlength=len(owners)) > 0
    keep = np.asarray(grounded)[group] | ~any_down[group] | down
    flat, group = shapely.force_2d(faces[keep]), group[keep]
    sizes = np.bincount(group, minlength=len(owners))
    ends = np.cumsum(sizes)
    merged = shapely.multipolygons(flat, indices=group)
    single = sizes == 1
    merged[single] = flat[ends[single] - 1]
    for k in np.flatnonzero(~shapely.is_valid(merged)):  # faces that share edges or overlap
        parts = flat[ends[k] - sizes[k] : ends[k]]
        try:
            joined = shapely.coverage_union_all(parts)
        except shapely.errors.GEOSException:
            joined = None
        if joined is None or not shapely.is_valid(joined):
            joined = shapely.union_all(shapely.make_valid(parts))
        merged[k] = joined
    out[np.asarray(owners)] = merged
    return out
