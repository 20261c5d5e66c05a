"""CityJSON objects to records: attributes, LoDs, templates placed, and a batch's geometry built.

A batch gathers CityObjects and the vertex pool their geometries index (a document's shared
vertices, each CityJSONSeq line's own, each placed template's); it picks each object's richest
LoD as its `geometry_3d` and a LoD0 geometry, where there is one, as its footprint, and builds
them all at once (cityjson_geometry). What an object has that the record's columns do not
(other members, appearance, the attributes of semantic surfaces) stays in its properties.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from operator import is_, is_not
from typing import Any, NamedTuple

import numpy as np
import shapely

from citypipe.connectors import cityjson_values, coordinates, rings
from citypipe.connectors.base import Solids, SourceBatch
from citypipe.connectors.cityjson_geometry import (
    Built,
    Invalid,
    Job,
    build_shapes,
    geometry_job,
)
from citypipe.connectors.cityjson_semantics import semantic_surfaces
from citypipe.connectors.cityjson_values import Vertices

__all__ = ["Batch", "Templates", "read_templates"]

_OWN_NAME = {"address"}
"""CityObject members kept in properties under their own name; the others (parents, children,
geographicalExtent, extension members) under "cityjson:" and theirs."""
_NOT_MEMBERS = {"type", "attributes", "geometry"}


def _lod_key(lod: Any) -> tuple[int, ...]:
    """LoDs in order: 1 < 1.2 < 1.3 < 2 < 2.2; what is not an LoD sorts first."""
    try:
        return _lod_order(lod)
    except TypeError:  # unhashable: a list, an object
        return (-1,)


@lru_cache(maxsize=256, typed=True)  # 2 and 2.0 are the LoDs "2" and "2.0"
def _lod_order(lod: Any) -> tuple[int, ...]:
    """`_lod_key` of a hashable LoD, worked out once per file's few LoDs."""
    try:
        return tuple(int(p) for p in str(lod).split("."))
    except ValueError:
        return (-1,)


def _rich(surfaces: Any) -> bool:
    """Whether a semantic surface says more than its type (slope, direction, children ...);
    C-level passes where every surface is an object, as they are."""
    if type(surfaces) is not list:
        return False
    if set(map(type, surfaces)) <= {dict}:
        return max(map(len, surfaces), default=0) > 1
    return any(type(x) is dict and len(x) > 1 for x in surfaces)


def _lod_text(lod: Any) -> str | None:
    return None if lod is None else str(lod)


@dataclass
class Templates:
    """A document's geometry templates; their vertices are real coordinates, never quantised."""

    geometries: list[Any]
    vertices: np.ndarray


def read_templates(header: Mapping[str, Any]) -> Templates | None:
    t = header.get("geometry-templates")
    if not t:
        return None
    if not isinstance(t, dict) or not isinstance(t.get("templates"), list):
        raise Invalid("geometry-templates without a templates array")
    try:
        shared = cityjson_values.vertices(t.get("vertices-templates") or [])
    except TypeError as e:
        raise Invalid(f"vertices-templates: {e}") from e
    return Templates(t["templates"], shared.xyz)


def _repairs(built: Built, footprint: Built, reasons: list[str | None]) -> list[str | None]:
    """What the ring repair did to each record; a record it left without geometry is rejected
    (its reason noted in `reasons`)."""
    repairs: list[str | None] = [None] * len(reasons)
    counts = built.repairs + footprint.repairs
    made = built.made() | footprint.made()
    for i in np.flatnonzero(counts.any(axis=1)).tolist():
        repairs[i] = rings.describe(counts[i])
        if not made[i]:
            reasons[i] = reasons[i] or f"no usable geometry left: {repairs[i]}"
    return repairs


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
        if isinstance(s := g.get("semantics"), dict) and _rich(s.get("surfaces") or ())
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
    job: Job | None = None
    footprint: Job | None = None


@dataclass
class Batch:
    """The CityObjects of one batch and the vertex pool their geometries index."""

    templates: Templates | None
    crs: str | None
    lifted: Any = None
    """The boundaries lifted from the document's bytes that its objects' placeholders index
    (cityjson_lift.Boundaries; read by the compiled walk, which alone sees them)."""
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

    def add_all(
        self, items: Iterable[tuple[str, Any]], base: int, vertices: Vertices, lenient: bool
    ) -> None:
        """`add` each (key, CityObject) of `items`; the compiled walk reads the common ones."""
        compiled = cityjson_values.compiled
        if compiled is not None and not lenient:
            return compiled.add(self, items, base, vertices)
        for key, obj in items:
            self.add(key, obj, base, vertices, lenient)
        return None

    def add(self, key: str, obj: Any, base: int, vertices: Vertices, lenient: bool = False) -> None:
        """A CityObject whose geometries index `vertices`, which start at `base` in the pool;
        `lenient` when its file held numbers JSON does not have (`cityjson_values.loads`)."""
        record = {key: obj}
        if not isinstance(obj, dict):
            return self.fail(key, record, "the CityObject is not a JSON object")
        if lenient and (why := cityjson_values.non_finite(obj)):
            return self.fail(key, record, why)
        try:
            if type(raw := obj.get("geometry") or []) is not list:
                raise Invalid("a geometry member that is not an array")
            geoms = [self._resolve(g, base, vertices) for g in raw]
            best = max(geoms, key=lambda g: _lod_key(g[0]), default=None)
            lod0 = next((g for g in geoms if _lod_key(g[0])[0] == 0), None)
            job = None if best is None else geometry_job(*best[1:])
            footprint = job if lod0 is best else None if lod0 is None else geometry_job(*lod0[1:])
        except Invalid as e:
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
            raise Invalid("a geometry that is not a JSON object")
        if g.get("type") != "GeometryInstance":
            return g.get("lod"), g, base, len(vertices)
        t = g.get("template")
        if (
            self.templates is None
            or type(t) is not int
            or not 0 <= t < len(self.templates.geometries)
        ):
            raise Invalid(f"a GeometryInstance of template {t!r}, which the file does not have")
        template = self.templates.geometries[t]
        ref = (g.get("boundaries") or [g.get("referencePoint")])[0]
        if type(ref) is not int or not 0 <= ref < len(vertices):
            raise Invalid(f"a GeometryInstance whose reference point {ref!r} is not a vertex index")
        matrix = g.get("transformationMatrix")
        if not (type(matrix) is list and len(matrix) == 16 and coordinates.numbers_only(matrix)):
            raise Invalid("a GeometryInstance without a transformationMatrix of 16 numbers")
        if not isinstance(template, dict):
            raise Invalid(f"template {t} is not a geometry object")
        m = np.array(matrix, np.float64).reshape(4, 4)
        with np.errstate(over="ignore", invalid="ignore"):  # what overflows is a problem below
            placed = self.templates.vertices @ m[:3, :3].T + m[:3, 3] + vertices.xyz[ref]
        problems = {
            i: f"template {t} placed at vertex {ref} has {coordinates.describe_position(placed[i])}"
            for i in np.flatnonzero(coordinates.out_of_bounds(placed)).tolist()
        }
        return template.get("lod"), template, self.vertices(Vertices(placed, problems)), len(placed)

    def _pool(self) -> Vertices:
        """The vertices of every object of the batch, as one array."""
        xyz = (
            self.chunks[0]
            if len(self.chunks) == 1
            else np.concatenate([np.zeros((0, 3)), *self.chunks])
        )
        return Vertices(xyz, self.problems)

    def source_batch(self) -> SourceBatch:
        ids, records, kinds, props, reasons, lods, names, heights, jobs, footprints = map(
            list, zip(*self.rows, strict=False)
        )
        pool = self._pool()
        built = build_shapes(jobs, pool)
        separate = [f if f is not j else None for f, j in zip(footprints, jobs, strict=False)]
        footprint = build_shapes(separate, pool)
        footprint_shapes = footprint.shaped().shapes
        # an object's LoD0 alone: its footprint is its geometry (the same job, not None)
        same = np.fromiter(map(is_, footprints, jobs), bool, len(jobs))
        same &= np.fromiter(map(is_not, footprints, repeat(None)), bool, len(jobs))
        if same.any():
            footprint_shapes[same] = built.shaped().shapes[same]
        reasons = [
            a or b or c for a, b, c in zip(reasons, built.errors, footprint.errors, strict=False)
        ]
        repairs = _repairs(built, footprint, reasons)
        surfaces = semantic_surfaces(jobs, built, reasons)
        parents = list(map(dict.get, props, repeat("cityjson:parents")))
        compiled = cityjson_values.compiled
        return SourceBatch(
            source_ids=ids,
            geometries=shapely.force_2d(footprint_shapes),
            properties=props,
            # what was lifted put back where a record is read
            records=records if self.lifted is None else compiled.Records(records, self.lifted),
            crs=self.crs,
            axis_order="xy",
            feature_classes=kinds,
            name=names,
            height_m=heights,
            lod=lods,
            parent_source_id=[p[0] if isinstance(p, list) and p else None for p in parents],
            solids=Solids(built.shapes, surfaces, surfaces.record_faces(), built.faces),
            errors=reasons,
            repairs=repairs,
        )
