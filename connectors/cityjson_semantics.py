"""The semantic surfaces of a batch's CityJSON geometries: each polygon's semantic type.

A geometry's `semantics.values` index its `semantics.surfaces`, one value per polygon (None:
none). For a whole batch they are read at once: every value and every surface's type gathered
in one pass each, checked as arrays, and each surface paired with its polygon; a batch with
anything unusual (a value that is no index, a surface without a type, polygons the repair
dropped) has those geometries read one by one, which says what is wrong with them.
"""

from __future__ import annotations

from functools import partial
from itertools import chain, repeat
from typing import NamedTuple

import numpy as np
import shapely
from shapely import GeometryType

from citypipe.connectors import cityjson_values
from citypipe.connectors.base import FlatFaces, Surface
from citypipe.connectors.cityjson_geometry import Built, Invalid, Job
from citypipe.connectors.ragged import offsets
from citypipe.geo import wkb_ragged

__all__ = ["Semantics", "semantic_surfaces"]


def _indices(flat: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Semantic values (ints or None) as an int64 array, and which are None (0 there);
    OverflowError for a value beyond int64."""
    if None not in flat:
        return np.array(flat, np.int64), np.zeros(len(flat), dtype=bool)
    none = np.fromiter((v is None for v in flat), bool, len(flat))
    return np.array([0 if v is None else v for v in flat], np.int64), none


def _surfaces(
    polygons: np.ndarray, job: Job, kept: np.ndarray | None
) -> tuple[list[Surface], np.ndarray]:
    """(semantic type, Polygon Z) for each of a geometry's `polygons` that has a semantic value,
    and which of the polygons each is; `kept` says which of its surfaces the repair left, where
    it dropped some."""
    assert job.values is not None and job.semantics is not None
    values, surfaces = job.values, job.semantics.get("surfaces")
    if kept is not None and len(values) == len(kept):
        values = [v for v, k in zip(values, kept.tolist(), strict=False) if k]
    if len(values) != len(polygons):
        raise Invalid(f"semantics for {len(values)} surfaces of a geometry with {len(polygons)}")
    if surfaces and type(surfaces) is not list:
        raise Invalid("semantic surfaces that are not an array")
    kinds = [s.get("type") if isinstance(s, dict) else None for s in surfaces or ()]
    if not all(isinstance(k, str) for k in kinds):
        raise Invalid("a semantic surface without a type")
    used = [v for v in values if v is not None]
    if used and not (
        all(type(v) is int for v in used) and 0 <= min(used) and max(used) < len(kinds)
    ):
        raise Invalid(
            f"semantics values that are not indices of its {len(kinds)} semantic surfaces"
        )
    if len(used) == len(values):
        return list(map(Surface, [kinds[v] for v in values], polygons)), np.arange(len(values))
    at = [k for k, v in enumerate(values) if v is not None]
    return [Surface(kinds[values[k]], polygons[k]) for k in at], np.array(at, np.int64)


class Semantics(NamedTuple):
    """The semantic surfaces of a batch's geometries, aligned with them (None where a geometry
    has none), and which of its geometry's polygons each surface is (`Solids.surface_faces`)."""

    surfaces: list[list[Surface] | None]
    faces: list[np.ndarray | None]


def semantic_surfaces(jobs: list[Job | None], built: Built, reasons: list[str | None]) -> Semantics:
    """(semantic type, Polygon Z) pairs for each built geometry that has semantics (None for the
    others); a geometry whose semantics do not fit its surfaces is noted in `reasons`."""
    shapes = built.shapes
    out = Semantics([None] * len(jobs), [None] * len(jobs))
    semantic = [
        i
        for i, j in enumerate(jobs)
        if j is not None and j.values is not None and shapes[i] is not None
    ]
    polygons, at = _polygons(shapes[semantic], semantic, built.faces)
    alone = _together(semantic, jobs, built, polygons, at, out)
    for k in alone:
        i = semantic[k]
        job = jobs[i]
        assert job is not None
        try:
            out.surfaces[i], out.faces[i] = _surfaces(
                polygons[at[k] : at[k + 1]], job, built.kept[i]
            )
        except Invalid as e:
            reasons[i] = reasons[i] or str(e)
    return out


def _polygons(
    shapes: np.ndarray, semantic: list[int], faces: FlatFaces | None
) -> tuple[np.ndarray, np.ndarray]:
    """The polygons of `shapes` (the geometries `semantic`), in order, and where each
    geometry's start: built from the faces' arrays where the batch has them (GEOS's get_parts
    copies each polygon out of its geometry, several times as long)."""
    at = offsets(shapely.get_num_geometries(shapes))
    if faces is None or not semantic:
        return shapely.get_parts(shapes), at
    chosen = np.isin(faces.owner, semantic)
    per_geometry = np.bincount(faces.owner[chosen], minlength=semantic[-1] + 1)[semantic]
    if not np.array_equal(offsets(per_geometry), at):  # not the faces GEOS holds
        return shapely.get_parts(shapes), at
    coords, sizes, per_face = wkb_ragged.face_rings(faces.coords, faces.ring, faces.polygon, chosen)
    nesting = (offsets(sizes), offsets(per_face))
    return np.asarray(shapely.from_ragged_array(GeometryType.POLYGON, coords, nesting)), at


def _gathered(chosen: list[Job]) -> tuple[np.ndarray, ...] | None:
    """How many semantic values each job has, the values (0 where None) and which are None,
    how many semantic surfaces each job lists, and their types (an object array); None where
    a value is not an int or None, or a surface not an object with a text type."""
    values = [j.values or [] for j in chosen]
    flat = list(chain.from_iterable(values))
    listed = [(j.semantics or {}).get("surfaces") or [] for j in chosen]
    try:
        kinds = list(map(dict.get, chain.from_iterable(listed), repeat("type")))
    except TypeError:  # a surface that is no object
        return None
    if not set(map(type, flat)) <= {int, type(None)} or not set(map(type, kinds)) <= {str}:
        return None
    try:
        value, none = _indices(flat)
    except OverflowError:
        return None
    counts = np.fromiter(map(len, values), np.int64, len(values))
    per_job = np.fromiter(map(len, listed), np.int64, len(listed))
    return counts, value, none, per_job, np.array(kinds, dtype=object)


def _together(
    semantic: list[int],
    jobs: list[Job | None],
    built: Built,
    polygons: np.ndarray,
    at: np.ndarray,
    out: Semantics,
) -> list[int]:
    """The surfaces of the geometries `semantic` (their `polygons`, `at` where each starts)
    read together into `out`; which of them (positions in `semantic`) are left to be read one
    by one: the repair dropped some of their polygons, or their values are not each a
    polygon's index of a typed surface (or None)."""
    chosen = [j for i in semantic if (j := jobs[i]) is not None]
    compiled = cityjson_values.compiled
    gathered = compiled.semantic_values(chosen) if compiled is not None else None
    if gathered is None and (gathered := _gathered(chosen)) is None:
        return list(range(len(semantic)))
    counts, value, none, per_job, kinds = gathered
    fits = (counts == np.diff(at)) & np.fromiter(
        (built.kept[i] is None for i in semantic), bool, len(semantic)
    )
    job = np.repeat(np.arange(len(chosen)), counts)
    wrong = ~none & ((value < 0) | (value >= per_job[job]))
    fits &= np.bincount(job[wrong], minlength=len(chosen)) == 0
    take = ~none & fits[job]
    local = np.arange(len(value)) - np.repeat(offsets(counts)[:-1], counts)
    types = kinds[(value + offsets(per_job)[:-1][job])[take]]
    shapes = polygons[(at[:-1][job] + local)[take]]
    pairs = zip(types.tolist(), shapes, strict=True)  # Surfaces made in C, no call per surface
    surfaces = list(map(partial(tuple.__new__, Surface), pairs))
    faces = local[take]
    ends = np.cumsum(np.bincount(job[take], minlength=len(chosen)))
    for k in np.flatnonzero(fits).tolist():
        start, end = int(ends[k - 1]) if k else 0, int(ends[k])
        out.surfaces[semantic[k]], out.faces[semantic[k]] = surfaces[start:end], faces[start:end]
    return np.flatnonzero(~fits).tolist()
