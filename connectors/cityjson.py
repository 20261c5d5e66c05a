"""CityJSON 1.0 / 1.1 / 2.0 documents and CityJSONSeq streams: one record per CityObject.

A CityJSON document is one JSON object whose CityObjects index one shared, quantised vertex
list, so it is parsed whole with orjson (the least any reader pays) and its vertices are
dequantised once with numpy. A CityJSONSeq stream (a CityJSON header line with `transform`
and the CRS, then one CityJSONFeature per line, each with its own vertices) is read line by
line in bounded memory. Which of the two a file is shows in its content, not in its name.

Geometry is built a batch at a time: the rings of all objects become one flat index array,
checked at once (nesting, index range), repaired at once (connectors/rings.py: a last vertex
within float noise of the first becomes it, surfaces with fewer than three distinct vertices
are dropped, and the object keeps the rest) and handed to shapely's ragged-array constructor,
so no Python runs per vertex. A record carries its richest LoD as `geometry_3d` (solids as
the faces of their outer shells), that geometry's semantic surfaces, and a 2D footprint only
where the source has a LoD0 geometry: the pipeline derives the rest. Vertices are x, y, z in
the `referenceSystem` as written; without one the file declares no CRS and none is guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any, NamedTuple

import numpy as np
import orjson
import shapely
from shapely import GeometryType
from shapely.errors import GEOSException

from citypipe.connectors import cityjson_values, coordinates, rings
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.cityjson_values import Vertices
from citypipe.geo.errors import DataError, NotFeatureData

__all__ = ["CityJSONConnector"]

VERSIONS = ("1.0", "1.1", "2.0")
BATCH_OBJECTS = 4000
"""CityObjects per batch: enough for shapely's bulk constructors to pay off, few enough that a
batch's geometries stay small beside the document itself."""

_SKIP = b"\xef\xbb\xbf \t\r\n"
_BOM = b"\xef\xbb\xbf"
_CITYJSON = re.compile(rb'"type"\s*:\s*"CityJSON(?:Feature)?"|"CityObjects"\s*:\s*\{')
_GEOJSON = re.compile(rb'"type"\s*:\s*"Feature(?:Collection)?"')
_EXTENSION = re.compile(rb'"type"\s*:\s*"CityJSONExtension"')
_NAMED = re.compile(rb"City(?:JSON|Objects)")
_VERSION = re.compile(r"(\d+\.\d+)(?:\.\d+)?")
_OWN_NAME = {"address"}
"""CityObject members kept in properties under their own name; the others (parents, children,
geographicalExtent, extension members) under "cityjson:" and theirs."""
_NOT_MEMBERS = {"type", "attributes", "geometry"}
_SOLIDS = {"Solid", "MultiSolid", "CompositeSolid"}
_SURFACES = {"MultiSurface", "CompositeSurface"}


class _Invalid(Exception):
    """What makes a CityObject unreadable, said in its message; the object goes to rejects."""


@dataclass(frozen=True)
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


@dataclass
class _Job:
    """One geometry of one object: nested index lists into its batch's vertex pool."""

    kind: _Kind
    parts: list[Any]
    base: int
    """Where the vertices it indexes start in the pool (its feature's, its placed template's)."""
    limit: int
    """How many vertices it may index from `base`."""
    values: list[Any] | None = None
    """Semantic value per surface (polygon kinds), aligned with the polygons built."""
    semantics: Mapping[str, Any] | None = None


def _lod_key(lod: Any) -> tuple[int, ...]:
    """LoDs in order: 1 < 1.2 < 1.3 < 2 < 2.2; what is not an LoD sorts first."""
    try:
        return tuple(int(p) for p in str(lod).split("."))
    except ValueError:
        return (-1,)


def _lod_text(lod: Any) -> str | None:
    return None if lod is None else str(lod)


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


def _job(g: Mapping[str, Any], base: int, limit: int) -> _Job:
    """The job for a geometry object; _Invalid when its type or nesting is not CityJSON's."""
    t = g.get("type")
    if not isinstance(g.get("boundaries"), list):
        raise _Invalid(f"a {t} without boundaries")
    if t == "MultiPoint":
        return _Job(_POINTS, g["boundaries"], base, limit)
    if t == "MultiLineString":
        return _Job(_LINES, g["boundaries"], base, limit)
    if t not in _SURFACES and t not in _SOLIDS:
        raise _Invalid(f"unknown geometry type {t!r}")
    try:
        faces, values = _faces(g)
    except (TypeError, IndexError, KeyError, AttributeError) as e:
        raise _Invalid(f"{t} boundaries or semantics nested wrongly ({e})") from e
    return _Job(_POLYGONS, faces, base, limit, values, g.get("semantics") if values else None)


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


class _Built(NamedTuple):
    """The geometries built for a list of jobs, aligned with them."""

    shapes: np.ndarray
    errors: list[str | None]
    repairs: np.ndarray
    """What the repair did to each (n, 4): `rings.repair` counts summed over its polygons."""
    kept: list[np.ndarray | None]
    """Which of a polygon job's surfaces the repair left (None: all of them)."""

    @classmethod
    def empty(cls, n: int) -> _Built:
        none: list[Any] = [None] * n
        return cls(np.full(n, None, dtype=object), none, np.zeros((n, 4), np.int64), none.copy())

    def put(self, at: list[int], built: _Built) -> None:
        """Rows `at` are `built`'s."""
        self.shapes[at], self.repairs[at] = built.shapes, built.repairs
        for i, k in enumerate(at):
            self.errors[k], self.kept[k] = built.errors[i], built.kept[i]


def _one_by_one(kind: _Kind, jobs: list[_Job], pool: Vertices) -> _Built:
    """Each job built alone, so that only the faulty ones fail."""
    out = _Built.empty(len(jobs))
    for i, job in enumerate(jobs):
        out.put([i], _build(kind, [job], pool))
    return out


def _build(kind: _Kind, jobs: list[_Job], pool: Vertices) -> _Built:
    """Shapely geometries for `jobs` (all of `kind`), built together, and an error per job.

    The counts per nesting level and one flat index array come from C-level iteration over
    the lists; ring sizes and index ranges are checked on the arrays. Jobs failing a check are
    left out of the build, as are jobs using a vertex that is not a position (`pool.problems`);
    where shapely refuses a batch, its jobs are built one by one. Polygon rings are repaired
    before they are built (`_repair`).
    """
    n = len(jobs)
    out = _Built.empty(n)
    errors = out.errors
    try:
        counts, level = [], [j.parts for j in jobs]
        for _ in kind.levels:
            counts.append(np.fromiter(map(len, level), np.int64, len(level)))
            level = list(chain.from_iterable(level))
        idx = np.array(level) if level else np.zeros(0, np.int64)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise TypeError("vertex indices that are not integers")
    except (TypeError, ValueError, OverflowError) as e:
        if n > 1:
            return _one_by_one(kind, jobs, pool)
        errors[0] = f"boundaries nested wrongly: {e}"
        return out

    owners = [np.arange(n)]  # owners[k]: the job of each element of nesting level k
    for c in counts:
        owners.append(np.repeat(owners[-1], c))
    containers = ("geometry", *kind.levels[:-1])
    for k, (c, owner, container) in enumerate(zip(counts, owners, containers, strict=False)):
        last = k == len(counts) - 1
        for at in np.flatnonzero(c < kind.min_vertices if last else c == 0):
            j = owner[at]
            errors[j] = errors[j] or (
                f"a {container} with {c[at]} vertices (at least {kind.min_vertices} needed)"
                if last
                else f"a {container} without any {kind.levels[k]}"
            )
    limit = np.fromiter((j.limit for j in jobs), np.int64, n)
    vertex_job = owners[-1]
    for at in np.flatnonzero((idx < 0) | (idx >= limit[vertex_job])):
        j = vertex_job[at]
        errors[j] = (
            errors[j] or f"vertex index {idx[at]} out of range (there are {limit[j]} vertices)"
        )
    base = np.fromiter((j.base for j in jobs), np.int64, n)
    rows = idx + base[vertex_job]
    if pool.problems:
        for at in np.flatnonzero(np.isin(rows, np.fromiter(pool.problems, np.int64))).tolist():
            j = vertex_job[at]
            errors[j] = errors[j] or pool.problems.get(int(rows[at]))
    if any(errors):
        good = [i for i, e in enumerate(errors) if e is None]
        if good:
            out.put(good, _build(kind, [jobs[i] for i in good], pool))
        return out

    coords = pool.xyz[rows]
    if kind is _POLYGONS:
        coords, counts = _repair(coords, counts, out)
    try:
        out.shapes[:] = shapely.from_ragged_array(
            kind.shape, coords, tuple(map(_offsets, reversed(counts)))
        )
    except (GEOSException, ValueError) as e:
        if n > 1:
            return _one_by_one(kind, jobs, pool)
        errors[0] = f"geometry cannot be built: {e}"
    out.shapes[[i for i, e in enumerate(errors) if e]] = None
    if kind is _POLYGONS:
        out.shapes[counts[0] == 0] = None  # the repair dropped every surface
    return out


def _repair(
    coords: np.ndarray, counts: list[np.ndarray], out: _Built
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
    ends = np.cumsum(per_job)
    for j in np.flatnonzero(left < per_job).tolist():
        out.kept[j] = fix.polygon_kept[ends[j] - per_job[j] : ends[j]]
    rings_left = np.bincount(surface_of[fix.ring_kept], minlength=len(per_surface))
    return coords[np.repeat(fix.ring_kept, sizes)], [
        left,
        rings_left[fix.polygon_kept],
        sizes[fix.ring_kept],
    ]


def _shapes(jobs: list[_Job | None], pool: Vertices) -> _Built:
    """Geometries aligned with `jobs` (None stays None), each kind built in bulk."""
    out = _Built.empty(len(jobs))
    for kind in (_POLYGONS, _LINES, _POINTS):
        at = [i for i, j in enumerate(jobs) if j is not None and j.kind is kind]
        if at:
            out.put(at, _build(kind, [j for j in jobs if j is not None and j.kind is kind], pool))
    return out


def _surfaces(polygons: np.ndarray, job: _Job, kept: np.ndarray | None) -> list[tuple[str, Any]]:
    """(semantic type, Polygon Z) for each of a geometry's `polygons` that has a semantic value;
    `kept` says which of its surfaces the repair left, where it dropped some."""
    assert job.values is not None and job.semantics is not None
    values, surfaces = job.values, job.semantics.get("surfaces")
    if kept is not None and len(values) == len(kept):
        values = [v for v, k in zip(values, kept.tolist(), strict=False) if k]
    if len(values) != len(polygons):
        raise _Invalid(f"semantics for {len(values)} surfaces of a geometry with {len(polygons)}")
    kinds = [s.get("type") if isinstance(s, dict) else None for s in surfaces or ()]
    if not all(isinstance(k, str) for k in kinds):
        raise _Invalid("a semantic surface without a type")
    used = [v for v in values if v is not None]
    if used and not (
        all(type(v) is int for v in used) and 0 <= min(used) and max(used) < len(kinds)
    ):
        raise _Invalid(
            f"semantics values that are not indices of its {len(kinds)} semantic surfaces"
        )
    return [(kinds[v], p) for v, p in zip(values, polygons, strict=False) if v is not None]


@dataclass
class _Templates:
    """A document's geometry templates; their vertices are real coordinates, never quantised."""

    geometries: list[Any]
    vertices: np.ndarray


def _templates(header: Mapping[str, Any]) -> _Templates | None:
    t = header.get("geometry-templates")
    if not t:
        return None
    if not isinstance(t, dict) or not isinstance(t.get("templates"), list):
        raise _Invalid("geometry-templates without a templates array")
    try:
        shared = cityjson_values.vertices(t.get("vertices-templates") or [])
    except TypeError as e:
        raise _Invalid(f"vertices-templates: {e}") from e
    return _Templates(t["templates"], shared.xyz)


def _properties(obj: Mapping[str, Any], lods: list[str | None]) -> dict[str, Any]:
    """Every attribute under its own name, the address, the object's other members, the LoDs
    it has, and what the record's columns have no room for: appearance references and the
    attributes of semantic surfaces (slope, direction, children ...)."""
    attrs = obj.get("attributes")
    props = dict(attrs) if isinstance(attrs, dict) else {}
    if attrs is not None and not isinstance(attrs, dict):
        props["cityjson:attributes"] = attrs
    for k, v in obj.items():
        if k not in _NOT_MEMBERS:
            props[k if k in _OWN_NAME else f"cityjson:{k}"] = v
    geoms = obj.get("geometry") or ()
    if not lods:
        return props
    props["cityjson:lods"] = lods
    looks = [
        {"lod": lod, **{k: g[k] for k in ("material", "texture") if k in g}}
        for g, lod in zip(geoms, lods, strict=False)
        if "material" in g or "texture" in g
    ]
    if looks:
        props["cityjson:appearance"] = looks
    rich = [
        {"lod": lod, **s}
        for g, lod in zip(geoms, lods, strict=False)
        if isinstance(s := g.get("semantics"), dict)
        and any(type(x) is dict and len(x) > 1 for x in s.get("surfaces") or ())
    ]
    if rich:
        props["cityjson:semantics"] = rich
    return props


class _Row(NamedTuple):
    """One record of a batch, its geometries not yet built."""

    source_id: str | None
    record: Any
    kind: str | None
    props: dict[str, Any]
    error: str | None = None
    lod: str | None = None
    name: Any = None
    height: Any = None
    job: _Job | None = None
    footprint: _Job | None = None


@dataclass
class _Batch:
    """The CityObjects of one batch and the vertex pool their geometries index."""

    templates: _Templates | None
    crs: str | None
    rows: list[_Row] = field(default_factory=list)
    chunks: list[np.ndarray] = field(default_factory=list)
    size: int = 0
    problems: dict[int, str] = field(default_factory=dict)
    """What is wrong with the pool's vertices that are not positions, by pool row."""

    def __len__(self) -> int:
        return len(self.rows)

    def vertices(self, v: Vertices) -> int:
        """Add vertices to the pool; where they start in it."""
        base = self.size
        self.chunks.append(v.xyz)
        self.size += len(v)
        self.problems.update((base + i, why) for i, why in v.problems.items())
        return base

    def fail(self, key: str | None, record: Any, reason: str) -> None:
        """A record rejected as it is: a CityObject ({key: object}) or a stream's line."""
        obj = record.get(key) if isinstance(record, dict) else None
        kind = obj.get("type") if isinstance(obj, dict) else None
        self.rows.append(_Row(key, record, kind if isinstance(kind, str) else None, {}, reason))

    def add(self, key: str, obj: Any, base: int, vertices: Vertices, lenient: bool = False) -> None:
        """A CityObject whose geometries index `vertices`, which start at `base` in the pool;
        `lenient` when its file held numbers JSON does not have (`cityjson_values.loads`)."""
        record = {key: obj}
        if not isinstance(obj, dict):
            return self.fail(key, record, "the CityObject is not a JSON object")
        if lenient and (why := cityjson_values.non_finite(obj)):
            return self.fail(key, record, why)
        try:
            geoms = [self._resolve(g, base, vertices) for g in obj.get("geometry") or ()]
            best = max(geoms, key=lambda g: _lod_key(g[0]), default=None)
            lod0 = next((g for g in geoms if _lod_key(g[0])[0] == 0), None)
            job = None if best is None else _job(*best[1:])
            footprint = job if lod0 is best else None if lod0 is None else _job(*lod0[1:])
        except _Invalid as e:
            return self.fail(key, record, str(e))
        lods = [_lod_text(g[0]) for g in geoms]
        attrs = a if isinstance(a := obj.get("attributes"), dict) else {}
        self.rows.append(
            _Row(
                key,
                record,
                obj.get("type"),
                _properties(obj, lods),
                lod=None if best is None else _lod_text(best[0]),
                name=attrs.get("name"),
                height=attrs.get("measuredHeight"),
                job=job,
                footprint=footprint,
            )
        )

    def _resolve(
        self, g: Any, base: int, vertices: Vertices
    ) -> tuple[Any, Mapping[str, Any], int, int]:
        """(lod, geometry, base, limit); a GeometryInstance becomes its template, placed."""
        if not isinstance(g, dict):
            raise _Invalid("a geometry that is not a JSON object")
        if g.get("type") != "GeometryInstance":
            return g.get("lod"), g, base, len(vertices)
        t = g.get("template")
        if (
            self.templates is None
            or type(t) is not int
            or not 0 <= t < len(self.templates.geometries)
        ):
            raise _Invalid(f"a GeometryInstance of template {t!r}, which the file does not have")
        template = self.templates.geometries[t]
        ref = (g.get("boundaries") or [g.get("referencePoint")])[0]
        if type(ref) is not int or not 0 <= ref < len(vertices):
            raise _Invalid(
                f"a GeometryInstance whose reference point {ref!r} is not a vertex index"
            )
        matrix = g.get("transformationMatrix")
        if not (type(matrix) is list and len(matrix) == 16 and coordinates.numbers_only(matrix)):
            raise _Invalid("a GeometryInstance without a transformationMatrix of 16 numbers")
        if not isinstance(template, dict):
            raise _Invalid(f"template {t} is not a geometry object")
        m = np.array(matrix, np.float64).reshape(4, 4)
        with np.errstate(over="ignore", invalid="ignore"):  # what overflows is a problem below
            placed = self.templates.vertices @ m[:3, :3].T + m[:3, 3] + vertices.xyz[ref]
        problems = {
            i: f"template {t} placed at vertex {ref} has {coordinates.describe_position(placed[i])}"
            for i in np.flatnonzero(coordinates.out_of_bounds(placed)).tolist()
        }
        return template.get("lod"), template, self.vertices(Vertices(placed, problems)), len(placed)

    def source_batch(self) -> SourceBatch:
        ids, records, kinds, props, reasons, lods, names, heights, jobs, footprints = map(
            list, zip(*self.rows, strict=False)
        )
        pool = Vertices(
            np.concatenate([np.zeros((0, 3)), *self.chunks])
            if len(self.chunks) != 1
            else self.chunks[0],
            self.problems,
        )
        built = _shapes(jobs, pool)
        shapes = built.shapes
        separate = [f if f is not j else None for f, j in zip(footprints, jobs, strict=False)]
        footprint = _shapes(separate, pool)
        footprint_shapes = footprint.shapes
        same = [f is not None and f is j for f, j in zip(footprints, jobs, strict=False)]
        footprint_shapes[same] = shapes[same]
        reasons = [
            a or b or c for a, b, c in zip(reasons, built.errors, footprint.errors, strict=False)
        ]
        repairs: list[str | None] = [None] * len(ids)
        counts = built.repairs + footprint.repairs
        for i in np.flatnonzero(counts.any(axis=1)).tolist():
            repairs[i] = rings.describe(counts[i])
            if shapes[i] is None and footprint_shapes[i] is None:
                reasons[i] = reasons[i] or f"no usable geometry left: {repairs[i]}"
        surfaces: list[Any] = [None] * len(ids)
        semantic = [
            i
            for i, j in enumerate(jobs)
            if j is not None and j.values is not None and shapes[i] is not None
        ]
        polygons = shapely.get_parts(shapes[semantic])
        at = _offsets(shapely.get_num_geometries(shapes[semantic]))
        for k, i in enumerate(semantic):
            try:
                surfaces[i] = _surfaces(polygons[at[k] : at[k + 1]], jobs[i], built.kept[i])
            except _Invalid as e:
                reasons[i] = reasons[i] or str(e)
        parents = [p.get("cityjson:parents") for p in props]
        return SourceBatch(
            source_ids=ids,
            geometries=shapely.force_2d(footprint_shapes),
            properties=props,
            records=records,
            crs=self.crs,
            axis_order="xy",
            feature_classes=kinds,
            columns={
                "name": names,
                "height_m": heights,
                "lod": lods,
                "parent_source_id": [p[0] if isinstance(p, list) and p else None for p in parents],
                "geometry_3d": shapes,
                "surfaces": surfaces,
            },
            errors=reasons,
            repairs=repairs,
        )


@dataclass
class _Opened:
    """A file's CityJSON object: the whole document, or a CityJSONSeq stream's header line."""

    header: dict[str, Any]
    version: str
    seq: bool
    lenient: bool = False
    """Whether only Python's parser read the document (`cityjson_values.loads`)."""

    @property
    def crs(self) -> str | None:
        rs = (self.header.get("metadata") or {}).get("referenceSystem")
        return None if rs is None else str(rs)


class CityJSONConnector(FileConnector):
    name = "cityjson"
    title = "CityJSON"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        text = head.lstrip(_SKIP)
        if not text.startswith(b"{") or not _NAMED.search(text):
            return 0.0  # one scan for the names spares other JSON the expressions below
        if _EXTENSION.search(text):
            raise NotFeatureData(
                "a CityJSON Extension (the schema of extra types), not city objects"
            )
        city, geo = _CITYJSON.search(text), _GEOJSON.search(text)
        return 0.95 if city and (geo is None or city.start() < geo.start()) else 0.0

    _opened: _Opened | None = None

    def _open(self) -> _Opened:
        """The document, parsed once for inspect() and read(), or a stream's header line.

        A first line that is a whole JSON object with more lines after it is a stream's header;
        anything else is one document (whose first line is all of it when it is minified).
        """
        if self._opened is None:
            try:
                with open(self.path, "rb") as f:
                    header, lenient = self._first_line(f.readline()), False
                    seq = header is not None and bool(f.read(4096).strip(_SKIP))
                    if header is None:
                        f.seek(0)
                        header, lenient = self._parse(f.read().removeprefix(_BOM))
            except OSError as e:
                raise DataError(f"{self.path}: cannot be read: {e.strerror or e}") from e
            self._opened = self._check(header, seq, lenient)
        return self._opened

    def _parse(self, data: bytes) -> tuple[Any, bool]:
        try:
            return cityjson_values.loads(data)
        except orjson.JSONDecodeError as e:
            raise DataError(
                f"{self.path}: the document is not valid JSON (truncated?): {e.msg} at byte {e.pos}"
            ) from e

    @staticmethod
    def _first_line(line: bytes) -> Any:
        try:
            return orjson.loads(line.removeprefix(_BOM))
        except orjson.JSONDecodeError:
            return None

    def _check(self, header: Any, seq: bool, lenient: bool) -> _Opened:
        kind = header.get("type") if isinstance(header, dict) else None
        if kind == "CityJSONFeature":
            raise DataError(
                f"{self.path}: a CityJSONFeature without the CityJSON header line a CityJSONSeq "
                "starts with (it holds the transform and the CRS)"
            )
        if kind != "CityJSON":
            raise DataError(f"{self.path}: JSON, but not a CityJSON document (type {kind!r})")
        version = header.get("version")
        m = _VERSION.fullmatch(str(version))
        if not m or m.group(1) not in VERSIONS:
            raise DataError(
                f"{self.path}: CityJSON version {version!r} is not one citypipe reads "
                f"({', '.join(VERSIONS)})"
            )
        if not seq and not (
            isinstance(header.get("CityObjects"), dict) and isinstance(header.get("vertices"), list)
        ):
            raise DataError(
                f"{self.path}: a CityJSON document without its CityObjects object or vertices array"
            )
        if why := cityjson_values.transform_problem(header.get("transform")):
            raise DataError(f"{self.path}: {why}")
        return _Opened(header, str(version), seq, lenient)

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """A stream's lines after the header, numbered from 2, blank ones skipped."""
        try:
            with open(self.path, "rb") as f:
                f.readline()
                for number, line in enumerate(f, start=2):
                    if line.strip():
                        yield number, line
        except OSError as e:
            raise DataError(f"{self.path}: cannot be read: {e.strerror or e}") from e

    @staticmethod
    def _feature(number: int, line: bytes) -> tuple[Any, str | None, bool]:
        """A stream line's CityJSONFeature, or why it is not one; and whether only Python's
        parser read it (`cityjson_values.loads`)."""
        try:
            feature, lenient = cityjson_values.loads(line)
        except orjson.JSONDecodeError as e:
            text = line.decode("utf-8", "replace")
            return text, f"line {number} is not valid JSON (truncated?): {e.msg}", False
        if not (isinstance(feature, dict) and feature.get("type") == "CityJSONFeature"):
            return feature, f"line {number} is not a CityJSONFeature", lenient
        if not isinstance(feature.get("CityObjects"), dict):
            why = f"line {number} is a CityJSONFeature without a CityObjects object"
            return feature, why, lenient
        return feature, None, lenient

    def inspect(self) -> SourceInfo:
        opened = self._open()
        if opened.seq:
            features = (self._feature(*line) for line in self._lines())
            objects: Any = chain.from_iterable(
                [None] if why else f["CityObjects"].values() for f, why, _ in features
            )
        else:
            objects = opened.header["CityObjects"].values()
        types = Counter(o.get("type") if isinstance(o, dict) else None for o in objects)
        return SourceInfo(
            format="CityJSONSeq" if opened.seq else "CityJSON",
            version=opened.version,
            crs=opened.crs,
            layers=tuple(f"{t or 'unreadable'}: {n}" for t, n in types.items()),
            count=types.total(),
        )

    def read(self) -> Iterator[SourceBatch]:
        opened = self._open()
        try:
            yield from self._read_seq(opened) if opened.seq else self._read_document(opened)
        finally:
            self._opened = None

    def _shared(self, opened: _Opened) -> tuple[_Templates | None, Vertices]:
        """The templates and the vertices of the document (a stream's header has none)."""
        h = opened.header
        try:
            vertices = cityjson_values.vertices(h.get("vertices") or [], h.get("transform"))
            return _templates(h), vertices
        except (_Invalid, TypeError) as e:
            raise DataError(f"{self.path}: {e}") from e

    def _read_document(self, opened: _Opened) -> Iterator[SourceBatch]:
        templates, vertices = self._shared(opened)
        objects = iter(opened.header["CityObjects"].items())
        while chunk := list(islice(objects, BATCH_OBJECTS)):
            batch = _Batch(templates, opened.crs)
            base = batch.vertices(vertices)
            for key, obj in chunk:
                batch.add(key, obj, base, vertices, opened.lenient)
            yield batch.source_batch()

    def _read_seq(self, opened: _Opened) -> Iterator[SourceBatch]:
        templates, _ = self._shared(opened)
        transform = opened.header.get("transform")
        batch = _Batch(templates, opened.crs)
        for number, line in self._lines():
            self._add_line(batch, number, line, transform)
            if len(batch) >= BATCH_OBJECTS:
                yield batch.source_batch()
                batch = _Batch(templates, opened.crs)
        if len(batch):
            yield batch.source_batch()

    def _add_line(self, batch: _Batch, number: int, line: bytes, transform: Any) -> None:
        """The CityObjects of one CityJSONFeature, with the vertices of their own line."""
        feature, why, lenient = self._feature(number, line)
        if why:
            batch.fail(None, feature, why)
            return
        try:
            vertices = cityjson_values.vertices(feature.get("vertices") or [], transform)
        except TypeError as e:
            for key, obj in feature["CityObjects"].items():
                batch.fail(key, {key: obj}, f"line {number}: {e}")
            return
        base = batch.vertices(vertices)
        for key, obj in feature["CityObjects"].items():
            batch.add(key, obj, base, vertices, lenient)
