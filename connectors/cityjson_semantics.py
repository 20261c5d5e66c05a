"""The semantic surfaces of a batch's CityJSON geometries: each polygon's semantic type.

A geometry's `semantics.values` index its `semantics.surfaces`, one value per polygon (None:
none). For a whole batch they are read at once: every value and every surface's type gathered
in one pass each, checked as arrays, each surface noted as the polygon of its geometry it is
(`geo.surfaces.SurfaceColumns`: the pipeline measures and places them as those polygons, and
no polygon is made per surface unless asked for); a batch with anything unusual (a value that
is no index, a surface without a type, polygons the repair dropped) has those geometries read
one by one, which says what is wrong with them.
"""

from __future__ import annotations

from itertools import chain, repeat
from typing import Any

import numpy as np
import shapely
from shapely import GeometryType

from citypipe.connectors import cityjson_values
from citypipe.connectors.base import FlatFaces, make_surface
from citypipe.connectors.cityjson_geometry import Built, Invalid, Job, LiftedValues
from citypipe.connectors.ragged import offsets
from citypipe.geo import wkb_ragged
from citypipe.geo.surfaces import SurfaceColumns

__all__ = ["semantic_surfaces"]


def _indices(flat: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Semantic values (ints or None) as an int64 array, and which are None (0 there);
    OverflowError for a value beyond int64."""
    if None not in flat:
        return np.array(flat, np.int64), np.zeros(len(flat), dtype=bool)
    none = np.fromiter((v is None for v in flat), bool, len(flat))
    return np.array([0 if v is None else v for v in flat], np.int64), none


def _surfaces(count: int, job: Job, kept: np.ndarray | None) -> tuple[list[str], np.ndarray]:
    """The semantic type of each of a geometry's `count` polygons that has a semantic value,
    and which of the polygons each is; `kept` says which of its surfaces the repair left,
    where it dropped some."""
    values, surfaces = _listed(job)
    if kept is not None and len(values) == len(kept):
        values = [v for v, k in zip(values, kept.tolist(), strict=False) if k]
    if len(values) != count:
        raise Invalid(f"semantics for {len(values)} surfaces of a geometry with {count}")
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
        return [kinds[v] for v in values], np.arange(len(values))
    at = [k for k, v in enumerate(values) if v is not None]
    return [kinds[values[k]] for k in at], np.array(at, np.int64)


def semantic_surfaces(
    jobs: list[Job | None], built: Built, reasons: list[str | None]
) -> SurfaceColumns:
    """The semantic surfaces of each built geometry that has semantics (None for the others),
    as columns whose (type, Polygon Z) pairs are made only where asked for; a geometry whose
    semantics do not fit its surfaces is noted in `reasons`."""
    shapes, made = built.shapes, built.made().tolist()
    semantic = [i for i, j in enumerate(jobs) if j is not None and j.values is not None and made[i]]
    at = offsets(_polygon_counts(built, semantic))
    place, types, faces, fits = _together(semantic, jobs, built, at)
    listed = np.zeros(len(jobs), dtype=bool)
    listed[np.asarray(semantic, np.int64)[fits]] = True
    alone: list[tuple[int, list[str], np.ndarray]] = []
    for k in np.flatnonzero(~fits).tolist():
        i = semantic[k]
        job = jobs[i]
        assert job is not None
        try:
            alone.append((k, *_surfaces(int(at[k + 1] - at[k]), job, built.kept[i])))
        except Invalid as e:
            reasons[i] = reasons[i] or str(e)
        else:
            listed[i] = True
    if alone:  # each geometry's surfaces together, geometries in order
        place = np.concatenate([place, *(np.full(len(f), k) for k, _, f in alone)])
        kinds = [types, *(np.array(t, dtype=object) for _, t, _ in alone)]
        types = np.concatenate(kinds)
        faces = np.concatenate([faces, *(f for _, _, f in alone)])
        order = np.argsort(place, kind="stable")
        place, types, faces = place[order], types[order], faces[order]
    rows = np.asarray(semantic, np.int64)[place]
    flat = built.faces  # the closure keeps these arrays, not the whole `built`

    def polygons() -> np.ndarray:
        return _polygons(shapes[semantic], semantic, flat, at)[at[:-1][place] + faces]

    return SurfaceColumns(listed, rows, types, faces, polygons, make_surface)


def _polygon_counts(built: Built, semantic: list[int]) -> np.ndarray:
    """How many polygons each geometry `semantic` has: its faces where they are held only
    as arrays (`Built.faces`), else GEOS's count."""
    shapes = built.shapes[semantic]
    if built.faces is None or not shapely.is_missing(shapes).all():
        return shapely.get_num_geometries(shapes)
    return np.bincount(built.faces.owner, minlength=len(built.shapes))[semantic]


def _polygons(
    shapes: np.ndarray, semantic: list[int], faces: FlatFaces | None, at: np.ndarray
) -> np.ndarray:
    """The polygons of `shapes` (the geometries `semantic`, whose polygons start `at`), in
    order: built from the faces' arrays where the batch has them (GEOS's get_parts copies
    each polygon out of its geometry, several times as long)."""
    if faces is None or not semantic:
        return shapely.get_parts(shapes)
    chosen = np.isin(faces.owner, semantic)
    per_geometry = np.bincount(faces.owner[chosen], minlength=semantic[-1] + 1)[semantic]
    if not np.array_equal(offsets(per_geometry), at):  # not the faces GEOS holds
        return shapely.get_parts(shapes)
    coords, sizes, per_face = wkb_ragged.face_rings(faces.coords, faces.ring, faces.polygon, chosen)
    nesting = (offsets(sizes), offsets(per_face))
    return np.asarray(shapely.from_ragged_array(GeometryType.POLYGON, coords, nesting))


def _listed(job: Job) -> tuple[Any, Any]:
    """A job's semantic values and surfaces, as lists where the lift read them (`LiftedValues`)."""
    if isinstance(job.values, LiftedValues):
        return job.values.lists()
    return job.values, (job.semantics or {}).get("surfaces")


def _gathered(chosen: list[Job]) -> tuple[np.ndarray, ...] | None:
    """How many semantic values each job has, the values (0 where None) and which are None,
    how many semantic surfaces each job lists, and their types (an object array); None where
    a value is not an int or None, or a surface not an object with a text type."""
    both = list(map(_listed, chosen))
    values = [v or [] for v, _ in both]
    flat = list(chain.from_iterable(values))
    listed = [s or [] for _, s in both]
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
    semantic: list[int], jobs: list[Job | None], built: Built, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The surfaces of the geometries `semantic` (whose polygons start `at`) read together:
    for each surface its geometry's place in `semantic`, its type and which polygon it is,
    and which geometries were read so; the others are left to be read one by one: the repair
    dropped some of their polygons, or their values are not each a polygon's index of a typed
    surface (or None)."""
    none = np.zeros(0, np.int64)
    chosen = [j for i in semantic if (j := jobs[i]) is not None]
    compiled = cityjson_values.compiled
    gathered = compiled.semantic_values(chosen) if compiled is not None else None
    if gathered is None and (gathered := _gathered(chosen)) is None:
        return none, np.zeros(0, dtype=object), none, np.zeros(len(semantic), dtype=bool)
    counts, value, empty, per_job, kinds = gathered
    fits = (counts == np.diff(at)) & np.fromiter(
        (built.kept[i] is None for i in semantic), bool, len(semantic)
    )
    job = np.repeat(np.arange(len(chosen)), counts)
    wrong = ~empty & ((value < 0) | (value >= per_job[job]))
    fits &= np.bincount(job[wrong], minlength=len(chosen)) == 0
    take = ~empty & fits[job]
    local = np.arange(len(value)) - np.repeat(offsets(counts)[:-1], counts)
    types = kinds[(value + offsets(per_job)[:-1][job])[take]]
    return job[take], types, local[take], fits
