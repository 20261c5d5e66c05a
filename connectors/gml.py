"""GML 2, 3.1.1 and 3.2 geometry (CityGML, WFS responses): surfaces, curves and points of one
batch.

A `GeometryReader` walks the GML geometry elements of the objects of a batch: curves and points
become coordinate arrays at once, polygons only collect their coordinate text (gml_polygons
builds them all when the batch is complete). Surfaces are handed around as polygon handles and
xlinks between them resolved within the batch, to a budget (gml_xlinks). A gml:Curve is one
line, its segments joined; arcs, in curves and in rings, are linearised (gml_arcs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from citypipe.connectors import gml_arcs, gml_polygons
from citypipe.connectors.gml_compiled import compiled
from citypipe.connectors.gml_polygons import Built, xyz
from citypipe.connectors.gml_xlinks import XLINK_HREF, Ref, Xlinks, flip, href_ref

__all__ = [
    "GML_NAMESPACES",
    "GeometryError",
    "GeometryReader",
    "Parts",
    "local_name",
    "srs_dimension",
]

GML_NAMESPACES = ("http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2")

_CURVES = ("LineString", "LineStringSegment", "LinearRing")
_SEGMENTS = ("LineString", "LineStringSegment")
"""What the curve members of a gml:Ring may be (inline, or as the segments of a gml:Curve)."""
_COLLECTIONS = (
    "MultiCurve",
    "MultiLineString",
    "CompositeCurve",
    "OrientableCurve",
    "MultiPoint",
    "MultiGeometry",
    "GeometryCollection",
)


class GeometryError(ValueError):
    """A geometry that cannot be read; the message says why."""


@dataclass(slots=True, init=False)
class Parts:
    """What one geometry property holds: polygon handles, curves and points (arrays of x, y, z).

    Made once per geometry, so by a plain __init__ (not a factory call per list)."""

    polygons: list[Ref]
    lines: list[np.ndarray]
    points: list[np.ndarray]

    def __init__(self, polygons: list[Ref] | None = None) -> None:
        self.polygons = [] if polygons is None else polygons
        self.lines, self.points = [], []


_MEMBERS = (
    "CompositeSurface", "Shell", "MultiSurface", "MultiPolygon", "CompositeSolid", "MultiSolid",
)  # fmt: skip
_NAMED: dict[str, dict[str, Any]] = {}
"""The tags a GeometryReader looks for, by its GML namespace: made by the first reader."""


class GeometryReader:
    """Reads the GML geometries of one batch; `build` turns their polygons into shapely.

    `ids` maps gml:id -> (record, handles) for every surface read, so that xlinks can be
    resolved and appearance targets found; `record` is the record being read, set by the caller.
    """

    def __init__(self, gml_ns: str, dimension: int = 3) -> None:
        self.dimension = dimension
        self._gml_ns = gml_ns
        self._walk: Any = None  # gml_walk's, made at its first read
        self.record = 0
        self.srs_name: str | None = None
        self.ids: dict[str, tuple[int, list[Ref]]] = {}
        self._texts: list[str] = []  # one per ring
        self._dims: list[int] = []  # srsDimension of each ring
        self._blank: list[int] = []  # rings without positions
        self._ring_counts: list[int] = []  # rings of each polygon
        self._sizes: list[int] = []  # characters of coordinate text of each polygon
        self._xlinks = Xlinks(self.ids, self._sizes)
        named = _NAMED.get(gml_ns)  # the tags below, made once a namespace (13 us a reader)
        if named is not None:
            vars(self).update(named)
            return
        before = len(vars(self))

        def t(local: str) -> str:
            return f"{{{gml_ns}}}{local}"

        self._id = t("id")
        # plain functions, not bound methods: those would make a reference cycle
        cls = GeometryReader
        handlers: dict[str, Callable[[GeometryReader, Any, list[Ref]], None]] = {
            **dict.fromkeys(("Polygon", "PolygonPatch", "Triangle", "Rectangle"), cls._patch),
            **dict.fromkeys(
                ("Surface", "TriangulatedSurface", "Tin", "PolyhedralSurface"), cls._patches
            ),
            **dict.fromkeys(_MEMBERS, cls._members),
            "OrientableSurface": cls._orientable,
            "Solid": cls._solid,
        }
        self._surfaces = {t(k): v for k, v in handlers.items()}
        self._curves = {t(n) for n in _CURVES}
        self._points = {t("Point")}
        self._collections = {t(n) for n in _COLLECTIONS}
        self._ring_tags = {
            t(n) for n in ("exterior", "interior", "outerBoundaryIs", "innerBoundaryIs")
        }
        self._exterior = t("exterior")
        self._ring, self._curve, self._linear_ring = t("Ring"), t("Curve"), t("LinearRing")
        self._segments = {t(n) for n in _SEGMENTS}
        self._arcs = {t(n): n for n in gml_arcs.ARCS}
        self._polygon_tag = t("Polygon")
        self._pos_list, self._pos, self._coordinates = t("posList"), t("pos"), t("coordinates")
        self._coord, self._xyz = t("coord"), (t("X"), t("Y"), t("Z"))
        _NAMED[gml_ns] = dict(list(vars(self).items())[before:])  # read alone, never written

    # -- coordinates --------------------------------------------------------------------------

    def text(self, elem) -> tuple[str, int]:
        """The positions of a LinearRing, LineString or Point as text (empty if it has none),
        and their srsDimension."""
        if not len(elem):
            return "", self.dimension
        first = elem[0]
        tag = first.tag
        if tag == self._pos_list:
            text = first.text or ""
        elif tag == self._pos:
            if len(elem) == 1:  # a Point
                text = first.text or ""
            else:
                text = " ".join(p.text or "" for p in elem.iterchildren(self._pos))
            # a pos is one position: two or three values are its dimension where no
            # srsDimension is given (GDAL writes a 3D point's pos so under a 2D CRS, and
            # reads it so)
            if first.get("srsDimension") is None:
                size = len((first.text or "").split())
                return text, size if size in (2, 3) else self.dimension
        elif tag == self._coordinates:
            text, size = _tuples(first)
            return text, size or self.dimension
        elif tag == self._coord:
            return _coords(elem.iterchildren(self._coord), self._xyz, self.dimension)
        else:
            raise GeometryError(
                f"{local_name(elem.tag)} without posList, pos, coordinates or coord"
            )
        dim = first.get("srsDimension")
        return text, srs_dimension(dim) if dim else self.dimension

    def _ring_text(self, ring) -> tuple[str, int]:
        """A LinearRing's positions; a Ring's are those of its curve members, one after the
        other (where one ends the next begins: the repeated position changes no shape)."""
        if ring.tag != self._ring:
            return self.text(ring)
        parts = [self._segment_text(segment) for segment in self._ring_segments(ring)]
        dims = {dim for _, dim in parts}
        if len(dims) > 1:
            raise GeometryError("a Ring whose curve members differ in srsDimension")
        return " ".join(text for text, _ in parts), dims.pop() if dims else self.dimension

    def _segment_text(self, segment) -> tuple[str, int]:
        """A linear segment's positions as text; an arc's, linearised, written as text."""
        if segment.tag in self._segments:
            return self.text(segment)
        positions = self._arc(segment)
        dim = 2 if np.isnan(positions[:, 2]).all() else 3
        return " ".join(map(repr, positions[:, :dim].ravel().tolist())), dim

    def _ring_segments(self, ring) -> Iterator[Any]:
        """The LineStrings, LineStringSegments and arcs a Ring's curve members hold, in order."""
        for member in ring:
            if member.get(XLINK_HREF) is not None:
                raise GeometryError("xlink:href in a Ring (only surfaces are resolved)")
            for curve in member:
                if curve.tag in self._segments:
                    yield curve
                elif curve.tag == self._curve:
                    yield from self._curve_segments(curve)
                else:
                    raise GeometryError(f"a Ring with a {local_name(curve.tag)} member")

    def _curve_segments(self, curve) -> Iterator[Any]:
        """The segments of a gml:Curve: linear ones and arcs."""
        for segment in chain.from_iterable(curve):
            if segment.tag not in self._segments and segment.tag not in self._arcs:
                raise GeometryError(f"a Curve with a {local_name(segment.tag)} segment")
            yield segment

    def _arc(self, segment) -> np.ndarray:
        """An arc segment's positions, linearised (gml_arcs)."""
        kind = self._arcs[segment.tag]
        try:
            if kind.endswith("ByCenterPoint"):
                text, dim = self.text(segment)
                values = np.fromstring(text, sep=" ") if text.strip() else np.empty(0)
                if values.size % dim or not np.isfinite(values).all():
                    raise GeometryError(f"{kind} has a centre that is not {dim} numbers")
                return gml_arcs.linearise(kind, xyz(values.reshape(-1, dim)), segment)
            return gml_arcs.linearise(kind, self.coordinates(segment))
        except gml_arcs.ArcError as e:
            raise GeometryError(str(e)) from e

    def curve(self, elem) -> np.ndarray:
        """A gml:Curve's segments as one line: where a segment ends the next begins."""
        lines = [
            self._arc(s) if s.tag in self._arcs else self.coordinates(s)
            for s in self._curve_segments(elem)
        ]
        if not lines:
            raise GeometryError("Curve without segments")
        return np.concatenate([lines[0], *(line[1:] for line in lines[1:])])

    def coordinates(self, elem) -> np.ndarray:
        """The positions of a LineString or Point as an (n, 3) array (z NaN if 2D): at least
        two for a curve, one for a point, every coordinate a finite number."""
        text, dim = self.text(elem)
        name = local_name(elem.tag)
        if not text or text.isspace():
            raise GeometryError(f"{name} without positions")
        try:
            values = np.fromstring(text, sep=" ")
        except ValueError as e:
            raise GeometryError(f"{name} has coordinates that are not numbers") from e
        if values.size % dim:
            raise GeometryError(
                f"{name} has {values.size} coordinate values, not a multiple of srsDimension {dim}"
            )
        if not np.isfinite(values).all():
            raise GeometryError(f"{name} has coordinates that are not finite (nan, inf, 1e309)")
        positions = values.size // dim
        if (positions != 1) if elem.tag in self._points else (positions < 2):
            raise GeometryError(f"{name} with {positions} position{'' if positions == 1 else 's'}")
        return xyz(values.reshape(-1, dim))

    # -- surfaces -----------------------------------------------------------------------------

    def read(self, elem) -> Parts:
        """The geometry `elem` (a GML geometry element) holds."""
        parts = Parts()
        if compiled is not None and compiled.read(self, elem, parts.polygons):
            return parts
        if not elem.keys():  # most: neither srsName nor srsDimension (nor a gml:id)
            handler = self._surfaces.get(elem.tag)
            if handler is not None:
                handler(self, elem, parts.polygons)
            else:
                self._any(elem, parts)
            return parts
        srs = elem.get("srsName")
        if srs and self.srs_name is None:
            self.srs_name = srs
        dimension = self.dimension
        dim = elem.get("srsDimension")
        if dim:
            self.dimension = srs_dimension(dim)
        try:
            self._any(elem, parts)
        finally:
            self.dimension = dimension
        return parts

    def _any(self, elem, parts: Parts) -> None:
        tag = elem.tag
        if tag in self._surfaces:
            self._surface(elem, parts.polygons)
        elif tag in self._curves:
            parts.lines.append(self.coordinates(elem))
        elif tag == self._curve:
            parts.lines.append(self.curve(elem))
        elif tag in self._points:
            parts.points.append(self.coordinates(elem))
        elif tag in self._collections:  # members of multi / composite curves, points, collections
            for member in elem:
                if member.get(XLINK_HREF) is not None:
                    raise GeometryError(
                        f"xlink:href in a {local_name(tag)} (only surfaces are resolved)"
                    )
                for child in member:
                    self._any(child, parts)
        else:
            ns = tag[1:].partition("}")[0]
            other = f" of {ns}, not this document's {self._gml_ns}" if ns in GML_NAMESPACES else ""
            raise GeometryError(f"unsupported geometry {local_name(tag)}{other}")

    def _surface(self, elem, out: list[Ref]) -> None:
        handler = self._surfaces.get(elem.tag)
        if handler is None:
            raise GeometryError(f"unsupported surface {local_name(elem.tag)}")
        start = len(out)
        handler(self, elem, out)
        gid = elem.get(self._id)
        if gid is not None:
            self.ids[gid] = (self.record, out[start:])

    def _polygon(self, elem) -> int:
        """Collect a Polygon, PolygonPatch or Triangle's rings; its handle."""
        texts, dims = self._texts, self._dims
        first_ring, size = len(texts), 0
        linear, pos_list, ring_tags = self._linear_ring, self._pos_list, self._ring_tags
        for boundary in elem:
            if boundary.tag not in ring_tags or not len(boundary):
                continue
            ring = boundary[0]
            first = ring[0] if ring.tag == linear and len(ring) else None
            if first is not None and first.tag == pos_list:  # nearly every ring: a posList
                text = first.text or ""
                dim_text = first.get("srsDimension")  # a dict look-up for what files write
                dim = (
                    (_DIMENSIONS.get(dim_text) or srs_dimension(dim_text))
                    if dim_text
                    else self.dimension
                )
            else:
                text, dim = self._ring_text(ring)
            if not text or text.isspace():
                self._blank.append(len(texts))
            texts.append(text)
            dims.append(dim)
            size += len(text)
        if len(texts) == first_ring:
            raise GeometryError(f"{local_name(elem.tag)} without an exterior ring")
        counts = self._ring_counts
        counts.append(len(texts) - first_ring)
        self._sizes.append(size)
        return len(counts) - 1

    def _patch(self, elem, out: list[Ref]) -> None:
        out.append(self._polygon(elem))

    def _patches(self, elem, out: list[Ref]) -> None:
        for patches in elem:
            for patch in patches:
                self._surface(patch, out)

    def _members(self, elem, out: list[Ref]) -> None:
        """surfaceMember(s) / solidMember(s) of a composite, multi-geometry or shell."""
        polygon, ids, gml_id = self._polygon_tag, self.ids, self._id
        for member in elem:
            if member.keys():  # an xlink:href (a member without attributes is the common case)
                href = member.get(XLINK_HREF)
                if href is not None:
                    out.append(href.removeprefix("#"))  # as href_ref
                    if not len(member):
                        continue
            for child in member:
                if child.tag == polygon:  # most members: skip the dispatch
                    handle = self._polygon(child)
                    out.append(handle)
                    gid = child.get(gml_id)
                    if gid is not None:
                        ids[gid] = (self.record, [handle])
                else:
                    self._surface(child, out)

    def _orientable(self, elem, out: list[Ref]) -> None:
        own: list[Ref] = []
        self._members(elem, own)  # its baseSurface is a member as far as reading goes
        out.extend(flip(own) if elem.get("orientation") == "-" else own)

    def _solid(self, elem, out: list[Ref]) -> None:
        """The faces of the exterior shell; interior shells (cavities) are not part of the mass."""
        for boundary in elem:
            if boundary.tag == self._exterior:
                href = boundary.get(XLINK_HREF)
                if href is not None:
                    out.append(href_ref(href))
                for shell in boundary:
                    self._surface(shell, out)

    # -- xlinks and building ------------------------------------------------------------------

    def resolve(self, refs: list[Ref]) -> tuple[list[int], list[str]]:
        """Polygon handles for `refs`, and the ids that are defined nowhere read so far.

        Raises XlinkBudgetError when xlinks bring in more than the budget allows."""
        if compiled is not None:  # the same loop in C
            return compiled.resolve(self._xlinks, refs)
        return self._xlinks.resolve(refs)

    def build(self) -> Built:
        """Every polygon read, rings repaired, as shapely Polygons with Z."""
        return gml_polygons.build(*self.rings())

    def rings(self) -> tuple[list[str], list[int], list[int], list[int]]:
        """What `build` builds from: each ring's coordinate text and srsDimension, the rings
        without positions, each polygon's ring count (handed to another process as they are)."""
        return self._texts, self._dims, self._blank, self._ring_counts


_DIMENSIONS = {"2": 2, "3": 3, "4": 4}


def srs_dimension(text: str) -> int:
    """An srsDimension attribute's value."""
    dim = _DIMENSIONS.get(text)  # as nearly every file writes it: once per ring
    if dim is not None:
        return dim
    if text.strip() not in _DIMENSIONS:
        raise GeometryError(f"srsDimension {text!r} is not 2, 3 or 4")
    return int(text)


def _tuples(elem) -> tuple[str, int]:
    """GML 2's gml:coordinates as positions separated by blanks: its tuple, coordinate and
    decimal separators (`ts`, `cs`, `decimal`; by default blank, comma, point) replaced; and
    the values of its first tuple (0 where it has none), which are its dimension: GML 2 has no
    srsDimension, a tuple of three is a 3D position whatever the CRS."""
    text = elem.text or ""
    cs, ts = elem.get("cs") or ",", elem.get("ts") or " "
    first = text.split(None if ts.isspace() else ts, 1)[:1]
    size = len(first[0].split(None if cs.isspace() else cs)) if first else 0
    for separator, by in ((cs, " "), (ts, " "), (elem.get("decimal") or ".", ".")):
        if separator != by:
            text = text.replace(separator, by)
    return text, size


def _coords(coords: Iterator[Any], tags: tuple[str, str, str], dimension: int) -> tuple[str, int]:
    """GML 2's gml:coord elements (X, an optional Y and Z each) as positions separated by
    blanks, and their dimension (`dimension` where there are none)."""
    values = [[v for tag in tags if (v := (c.findtext(tag) or "").strip())] for c in coords]
    sizes = {len(v) for v in values}
    if min(sizes, default=2) < 2:
        raise GeometryError("a coord without X and Y")
    if len(sizes) > 1:
        raise GeometryError(f"coord elements of {' and '.join(map(str, sorted(sizes)))} values")
    return " ".join(" ".join(v) for v in values), sizes.pop() if sizes else dimension


def local_name(tag: str) -> str:
    """An element's or attribute's name without its namespace."""
    return tag.rpartition("}")[2]
