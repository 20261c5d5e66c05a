"""Which way each face of a 3D city object looks: its area, tilt and azimuth, from Newell's
vector (pipelines/core/solids.py holds the faces).

CityGML and CityJSON give faces counter-clockwise seen from outside, so the right-hand (Newell)
normal points out of the object. Roofs whose normal points down were written the other way
round and are flipped; for other faces the source's word is taken. Areas are only meaningful
in metres, so the caller passes faces in a projected CRS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from citypipe.core.solids import Faces

__all__ = ["FLAT_DEG", "area_vectors", "orientations", "surface_measures", "types_with"]

FLAT_DEG = 1.0
"""Faces within this angle of horizontal have no azimuth."""


def area_vectors(polygons: np.ndarray) -> np.ndarray:
    """Newell's vector of each polygon: the normal scaled by twice the area (holes subtracted,
    their rings running the other way). Shape (n, 3); zero for polygons without Z."""
    if len(polygons) == 0:
        return np.zeros((0, 3))
    faces = Faces.of(polygons)
    vectors = faces.area_vectors()
    return np.stack(
        [np.bincount(faces.owner, weights=v, minlength=len(polygons)) for v in vectors.T], axis=1
    )


def surface_measures(
    polygons: np.ndarray, types: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area (m²), tilt (degrees from facing straight up: 0 flat roof, 90 wall, 180 floor) and
    azimuth (compass degrees the face looks to, NaN when flat) of each polygon."""
    return orientations(area_vectors(polygons), types_with(types, "Roof"))


def orientations(
    vectors: np.ndarray, roofs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`surface_measures` of faces given by their Newell vectors (`area_vectors`), `roofs`
    saying which are roofs (`types_with`). Column by column, as `np.linalg.norm(axis=1)`
    (a reduction over rows of three) and `% 360` (fmod, with its sign rules) take 4-5x as
    long, with the same bits: the squares added in norm's order, an angle in (-180, 180]
    below 0 turned by 360, a zero made +0.0 as `%` makes it."""
    flip = np.where(roofs & (vectors[:, 2] < 0), -1.0, 1.0)
    x, y, z = (vectors[:, k] * flip for k in range(3))
    length = np.sqrt((x * x + y * y) + z * z)
    area = length / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        tilt = np.degrees(np.arccos(np.clip(z / length, -1, 1)))
        azimuth = np.degrees(np.arctan2(x, y))
    azimuth = np.where(azimuth < 0, azimuth + 360, azimuth + 0.0)
    flat = (tilt < FLAT_DEG) | (tilt > 180 - FLAT_DEG) | (length == 0)
    azimuth[flat] = np.nan
    return area, tilt, azimuth


def types_with(types: Sequence[str] | np.ndarray, word: str) -> np.ndarray:
    """Which surface `types` name `word` ("Ground", "Roof"): looked up per distinct type, as
    a batch has a few types for many surfaces, each found by one comparison of the array
    (a third of the time of a lookup per surface)."""
    types = np.asarray(types, dtype=object)
    out = np.zeros(len(types), dtype=bool)
    for t in set(types.tolist()):
        if word in t:
            out |= types == t
    return out
