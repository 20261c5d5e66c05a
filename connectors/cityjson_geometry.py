"""CityJSON geometry to shapely, a batch at a time: boundaries checked, repaired and built in bulk.

The rings of all objects of a batch become one flat index array, checked at once (nesting,
index range), repaired at once (connectors/rings.py: a last vertex within float noise of the
first becomes it, surfaces with fewer than three distinct vertices are dropped, and the object
keeps the rest) and handed to shapely's ragged-array constructor, so no Python runs per vertex.
Polygons are not even built: a batch's surfaces and solids are handed on as the flat arrays of
their faces (`Built.faces`, which the pipeline places), built as shapely geometries only where
something reads GEOS's (`Built.shaped`). Solids become the faces of their outer shells;
semantic surfaces are paired with the polygons that are left after the repair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import shapely
from shapely import GeometryType
from shapely.errors import GEOSException

from citypipe.connectors import cityjson_values, rings
from citypipe.connectors.base import FlatFaces
from citypipe.connectors.cityjson_values import Vertices
from citypipe.connectors.ragged import offsets

__all__ = [
    "Built",
    "Invalid",
    "Job",
    "build_shapes",
    "geometry_job",
]

_SOLIDS = {"Solid", "MultiSolid", "CompositeSolid"}
_SURFACES = {"MultiSurface", "CompositeSurface"}


class Invalid(Exception):
    """What makes a CityObject unreadable, said in its message; the object goes to rejects."""


@dataclass(frozen=True, eq=False)  # each kind is one object: told apart by identity
class _Kind:
    """How one family of CityJSON geometry types becomes a shapely multi-geometry."""

    shape: GeometryType
    levels: tuple[str, ...]
    """What the nested lists of a geometry's boundaries hold, outermost first."""
    min_vertices: int


_POLYGONS = _Kind(GeometryType.MULTIPOLYGON, ("surface", "ring", "vertex"), 0)
"""(A ring too short for a polygon is dropped by the repair, not its object.)"""
_LINES = _Kind(GeometryType.MULTILINESTRING, ("line", "vertex"), 2)
_POINTS = _Kind(GeometryType.MULTIPOINT, ("vertex",), 1)


@runtime_checkable
class LiftedValues(Protocol):
    """A job's semantic values as the lift read them from the document's bytes, left in its
    arrays (cityjson_walk.SemanticValues)."""

    def lists(self) -> tuple[list[Any], Any]:
        """The values and the semantics' surfaces, as the job would hold them parsed."""


class Job(NamedTuple):
    """One geometry of one object: nested index lists into its batch's vertex pool. A tuple, so
    that the compiled walk makes one without a Python-level __init__ (a dataclass's cost 0.3 us
    a job)."""

    kind: _Kind
    parts: list[Any]
    base: int
    """Where the vertices it indexes start in the pool (its feature's, its placed template's)."""
    limit: int
    """How many vertices it may index from `base`."""
    values: list[Any] | LiftedValues | None = None
    """Semantic value per surface (polygon kinds), aligned with the polygons built."""
    semantics: Mapping[str, Any] | None = None
    """The semantics the values index (None where the lift read the values)."""


def _faces(g: Mapping[str, Any]) -> tuple[list[Any], Any]:
    """The surfaces of a surface or solid geometry (outer shells only) and their semantic values."""
    b, t = g["boundaries"], g["type"]
    values = (g.get("semantics") or {}).get("values")
    if t in _SURFACES:
        return b, values
    if t == "Solid":
        return (b[0] if b else []), (values[0] if values else None)
    faces = [s[0] if s else [] for s in b]  # MultiSolid, CompositeSolid: shells per solid
    if values:
        values = chain.from_iterable(
            v[0] if v else [None] * len(f) for f, v in zip(faces, values, strict=False)
        )
    return list(chain.from_iterable(faces)), None if values is None else list(values)


def geometry_job(g: Mapping[str, Any], base: int, limit: int) -> Job:
    """The job for a geometry object; Invalid when its type or nesting is not CityJSON's."""
    t = g.get("type")
    if not isinstance(g.get("boundaries"), list):
        raise Invalid(f"a {t} without boundaries")
    if t == "MultiPoint":
        return Job(_POINTS, g["boundaries"], base, limit)
    if t == "MultiLineString":
        return Job(_LINES, g["boundaries"], base, limit)
    if type(t) is not str or (t not in _SURFACES and t not in _SOLIDS):
        raise Invalid(f"unknown geometry type {t!r}")
    try:
        faces, values = _faces(g)
    except (TypeError, IndexError, KeyError, AttributeError) as e:
        raise Invalid(f"{t} boundaries or semantics nested wrongly ({e})") from e
    if values is not None and type(values) is not list:
        raise Invalid(f"{t} semantics values that are not an array")
    return Job(_POLYGONS, faces, base, limit, values, g.get("semantics") if values else None)


class Built(NamedTuple):
    """The geometries built for a list of jobs, aligned with them."""

    shapes: np.ndarray
    """Shapely geometries, None where a job has none or its polygons are held only in `faces`
    (a batch of polygon jobs built together: GEOS need not build them, nor free them)."""
    errors: list[str | None]
    repairs: np.ndarray
    """What the repair did to each (n, 4): `rings.repair` counts summed over its polygons."""
    kept: list[np.ndarray | None]
    """Which of a polygon job's surfaces the repair left (None: all of them)."""
    faces: FlatFaces | None = None
    """The polygons of `shapes` as the arrays they were built from, owned by the jobs; None
    where some were built apart (a faulty job among them)."""

    def made(self) -> np.ndarray:
        """Which jobs have a geometry: a shapely one, or their polygons in `faces`."""
        made = ~shapely.is_missing(self.shapes)
        return made if self.faces is None else made | self.faces.owned(len(made))

    def shaped(self) -> Built:
        """These geometries with those held only as their polygons' arrays (`faces`) built as
        shapely MultiPolygons."""
        if self.faces is None:
            return self
        owned = self.faces.owned(len(self.shapes))
        if not owned.any():  # none held so (a batch's footprints without LoD0)
            return self
        shapes = self.shapes.copy()
        shapes[owned] = self.faces.multipolygons(len(shapes))[owned]
        return self._replace(shapes=shapes)

    @classmethod
    def empty(cls, n: int) -> Built:
        none: list[Any] = [None] * n
        return cls(np.full(n, None, dtype=object), none, np.zeros((n, 4), np.int64), none.copy())

    def put(self, at: list[int], built: Built) -> None:
        """Rows `at` (in order) are `built`'s, their geometries built as shapely ones."""
        built = built.shaped()
        if len(at) == len(self.errors):  # every row: `at` is 0, 1, ... (a batch of one kind)
            self.shapes[:], self.repairs[:] = built.shapes, built.repairs
            self.errors[:], self.kept[:] = built.errors, built.kept
            return
        self.shapes[at], self.repairs[at] = built.shapes, built.repairs
        for i, k in enumerate(at):
            self.errors[k], self.kept[k] = built.errors[i], built.kept[i]


def _one_by_one(kind: _Kind, jobs: list[Job], pool: Vertices) -> Built:
    """Each job built alone, so that only the faulty ones fail."""
    out = Built.empty(len(jobs))
    for i, job in enumerate(jobs):
        out.put([i], _build(kind, [job], pool))
    return out


def _build(kind: _Kind, jobs: list[Job], pool: Vertices) -> Built:
    """Shapely geometries for `jobs` (all of `kind`), built together, and an error per job.

    The counts per nesting level and one flat index array come from C-level iteration over
    the lists; ring sizes and index ranges are checked on the arrays. Jobs failing a check are
    left out of the build, as are jobs using a vertex that is not a position (`pool.problems`);
    where shapely refuses a batch, its jobs are built one by one. Polygon rings are repaired
    before they are built (`_repair`).
    """
    n = len(jobs)
    out = Built.empty(n)
    errors = out.errors
    try:
        counts, idx = _flatten(kind, jobs)
    except (TypeError, ValueError, OverflowError) as e:
        if n > 1:
            return _one_by_one(kind, jobs, pool)
        errors[0] = f"boundaries nested wrongly: {e}"
        return out
    _check_nesting(kind, counts, errors)
    rows = _check_vertices(jobs, idx, counts, pool, errors)
    if any(errors):
        good = [i for i, e in enumerate(errors) if e is None]
        if good:
            out.put(good, _build(kind, [jobs[i] for i in good], pool))
        return out
    return _construct(kind, jobs, pool, rows, counts, out)


def _flatten(kind: _Kind, jobs: list[Job]) -> tuple[list[np.ndarray], np.ndarray]:
    """How many elements each list of each nesting level holds, and the flat vertex indices;
    TypeError, ValueError or OverflowError where the lists are not nested as `kind` says."""
    compiled = cityjson_values.compiled
    if compiled is not None and (flat := compiled.flatten(jobs, len(kind.levels))) is not None:
        return flat
    counts, level = [], [j.parts for j in jobs]
    for _ in kind.levels:
        counts.append(np.fromiter(map(len, level), np.int64, len(level)))
        level = list(chain.from_iterable(level))
    idx = np.array(level) if level else np.zeros(0, np.int64)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise TypeError("vertex indices that are not integers")
    return counts, idx


def _job_of(counts: list[np.ndarray], level: int, at: np.ndarray | None = None) -> np.ndarray:
    """The job of the elements `at` of nesting level `level` (0: the jobs; None: of every one),
    found through the counts of the levels above: only those a check asks for, where it asks
    (not every vertex's: a batch's 108,813 in Delft)."""
    if at is None:
        owner = np.arange(len(counts[0]))
        for c in counts[:level]:
            owner = np.repeat(owner, c)
        return owner
    for c in reversed(counts[:level]):
        at = np.searchsorted(np.cumsum(c), at, side="right")
    return at


def _check_nesting(kind: _Kind, counts: list[np.ndarray], errors: list[str | None]) -> None:
    """Note in `errors` the jobs with an empty list or too few vertices."""
    containers = ("geometry", *kind.levels[:-1])
    for k, (c, container) in enumerate(zip(counts, containers, strict=False)):
        last = k == len(counts) - 1
        wrong = np.flatnonzero(c < kind.min_vertices if last else c == 0)
        if not len(wrong):  # the common case: no owner to look up (a pass over each level)
            continue
        for at, j in zip(wrong.tolist(), _job_of(counts, k, wrong).tolist(), strict=True):
            errors[j] = errors[j] or (
                f"a {container} with {c[at]} vertices (at least {kind.min_vertices} needed)"
                if last
                else f"a {container} without any {kind.levels[k]}"
            )


def _check_vertices(
    jobs: list[Job],
    idx: np.ndarray,
    counts: list[np.ndarray],
    pool: Vertices,
    errors: list[str | None],
) -> np.ndarray:
    """Note in `errors` the jobs indexing beyond their vertices or a vertex that is not a
    position (`counts`: the nesting, which tells each vertex's job); the pool row of each
    vertex."""
    limit = np.fromiter(map(attrgetter("limit"), jobs), np.int64, len(jobs))
    vertex = len(counts)  # the nesting level of the vertices
    # every index within the fewest vertices a job has (the common case) needs no look per job
    if len(idx) and not (0 <= idx.min() and idx.max() < limit.min()):
        near = np.flatnonzero((idx < 0) | (idx >= limit.min()))
        owner = _job_of(counts, vertex, near)
        beyond = (idx[near] < 0) | (idx[near] >= limit[owner])
        for at, k in zip(near[beyond].tolist(), owner[beyond].tolist(), strict=True):
            errors[k] = (
                errors[k] or f"vertex index {idx[at]} out of range (there are {limit[k]} vertices)"
            )
    base = np.fromiter(map(attrgetter("base"), jobs), np.int64, len(jobs))
    if base.min() != base.max():  # several pools (a stream's lines, placed templates)
        rows = idx + base[_job_of(counts, vertex)]
    else:  # one: a document's vertices index the pool from its start, as they are
        rows = idx + base[0] if base[0] else idx
    if pool.problems:
        bad = np.flatnonzero(np.isin(rows, np.fromiter(pool.problems, np.int64)))
        for v, k in zip(bad.tolist(), _job_of(counts, vertex, bad).tolist(), strict=True):
            errors[k] = errors[k] or pool.problems.get(int(rows[v]))
    return rows


def _construct(
    kind: _Kind,
    jobs: list[Job],
    pool: Vertices,
    rows: np.ndarray,
    counts: list[np.ndarray],
    out: Built,
) -> Built:
    """The geometries of checked jobs from their positions (pool `rows`) and nesting (`counts`)."""
    errors = out.errors
    if kind is _POLYGONS:
        faces, counts = _rings(pool, rows, counts, out)
        if _rings_whole(counts[2]):  # GEOS would build them all: held as arrays
            return out._replace(faces=faces)
        coords = faces.coords
    else:
        coords = pool.xyz[rows]
    try:
        out.shapes[:] = shapely.from_ragged_array(
            kind.shape, coords, tuple(map(offsets, reversed(counts)))
        )
    except (GEOSException, ValueError) as e:
        if len(jobs) > 1:
            return _one_by_one(kind, jobs, pool)
        errors[0] = f"geometry cannot be built: {e}"
        return out
    if kind is _POLYGONS:
        out.shapes[counts[0] == 0] = None  # the repair dropped every surface
        return out._replace(faces=faces)
    return out


def _rings_whole(sizes: np.ndarray) -> bool:
    """Whether every ring has the four positions or more a closed ring needs (or none): the
    polygons GEOS builds without a word (their positions are positions: the jobs using a vertex
    that is none, `Vertices.problems`, are not built)."""
    return not ((sizes > 0) & (sizes < 4)).any()


def _rings(
    pool: Vertices, rows: np.ndarray, counts: list[np.ndarray], out: Built
) -> tuple[FlatFaces, list[np.ndarray]]:
    """The polygons of polygon jobs, their positions (pool `rows`) repaired (`_repair`) and
    closed (`_closed`), and their nesting: in one compiled pass over the rings where the
    positions are finite (cityjson_rings.pxi), else in numpy's."""
    compiled = cityjson_values.compiled
    done = None
    if compiled is not None:
        xyz = np.ascontiguousarray(pool.xyz, np.float64)
        per_job, per_surface, sizes = counts
        done = compiled.close_rings(xyz, rows, per_job, per_surface, sizes, rings.NOISE)
    if done is None:
        coords, counts = _repair(pool.xyz[rows], counts, out)
        coords, counts[2] = _closed(coords, counts[2])
        return _flat_faces(coords, counts), counts
    coords, left, rings_left, sizes, repairs, polygon_kept, whose = done
    out.repairs[:] = repairs
    _note_kept(counts[0], left, polygon_kept, out)
    return FlatFaces(coords, *whose), [left, rings_left, sizes]


def _note_kept(per_job: np.ndarray, left: np.ndarray, polygon_kept: np.ndarray, out: Built) -> None:
    """Which of its surfaces the repair left, for each job (`per_job` surfaces) it left fewer
    (`left`); `polygon_kept` per surface of all jobs."""
    ends = np.cumsum(per_job)
    for j in np.flatnonzero(left < per_job).tolist():
        out.kept[j] = polygon_kept[ends[j] - per_job[j] : ends[j]]


def _closed(coords: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each ring whose last position is not its first closed by it (as shapely would close it
    on building the ring), so that the arrays are what GEOS holds."""
    ends = np.cumsum(sizes)
    starts = ends - sizes
    some = np.flatnonzero(sizes > 0)
    first, last = coords[starts[some]], coords[ends[some] - 1]
    same = (first == last) | (np.isnan(first) & np.isnan(last))
    opened = some[~same.all(axis=1)]
    if not len(opened):
        return coords, sizes
    closed = sizes.copy()
    closed[opened] += 1
    ends = np.cumsum(closed)
    source = np.arange(ends[-1]) - np.repeat(ends - closed - starts, closed)
    source[ends[opened] - 1] = starts[opened]  # the first position again
    return coords[source], closed


def _flat_faces(coords: np.ndarray, counts: list[np.ndarray]) -> FlatFaces:
    """The polygons built from `coords` and their nesting (`counts`), as flat arrays."""
    per_job, per_surface, sizes = counts
    return FlatFaces(
        coords,
        np.repeat(np.arange(len(sizes)), sizes),
        np.repeat(np.arange(len(per_surface)), per_surface),
        np.repeat(np.arange(len(per_job)), per_job),
    )


def _repair(
    coords: np.ndarray, counts: list[np.ndarray], out: Built
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Repair the rings of polygon jobs (CityJSON closes rings by definition: a last vertex
    within float noise of the first becomes it); the positions and counts of what is left.
    Each job's repairs go to `out`, and which of its surfaces are left where some are gone.
    """
    per_job, per_surface, sizes = counts
    n = len(per_job)
    job_of = np.repeat(np.arange(n), per_job)
    fix = rings.repair(coords, sizes, per_surface, implicit_closure=True)
    out.repairs[:] = rings.totals(fix.counts, job_of, n)
    coords = fix.coords
    if not fix.dropped:
        return coords, counts
    surface_of = np.repeat(np.arange(len(per_surface)), per_surface)
    left = np.bincount(job_of[fix.polygon_kept], minlength=n)
    _note_kept(per_job, left, fix.polygon_kept, out)
    rings_left = np.bincount(surface_of[fix.ring_kept], minlength=len(per_surface))
    return coords[np.repeat(fix.ring_kept, sizes)], [
        left,
        rings_left[fix.polygon_kept],
        sizes[fix.ring_kept],
    ]


def build_shapes(jobs: list[Job | None], pool: Vertices) -> Built:
    """Geometries aligned with `jobs` (None stays None), each kind built in bulk."""
    out = Built.empty(len(jobs))
    faces: FlatFaces | None = FlatFaces(np.zeros((0, 3)), *[np.zeros(0, np.int64)] * 3)
    of_kind: dict[_Kind, tuple[list[int], list[Job]]] = {
        kind: ([], []) for kind in (_POLYGONS, _LINES, _POINTS)
    }
    for i, job in enumerate(jobs):
        if job is not None:
            at, chosen = of_kind[job.kind]
            at.append(i)
            chosen.append(job)
    for kind, (at, chosen) in of_kind.items():
        if not at:
            continue
        built = _build(kind, chosen, pool)
        if kind is _POLYGONS:
            f = built.faces
            faces = None if f is None else f._replace(owner=np.asarray(at)[f.owner])
            built = built._replace(faces=None)  # held as those arrays, not built
        out.put(at, built)
    return out._replace(faces=faces)
