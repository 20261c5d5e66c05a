"""GML 3.1.1 / 3.2 geometry as CityGML writes it, read into shapely geometries with Z.

A city model holds many thousands of polygons (solids are shells of polygons, reliefs are
triangles), so a `GeometryReader` only collects their coordinate arrays while a batch is read
and builds them in a few vectorised shapely calls at the end. Surfaces are handed around as
polygon handles (`Ref`): an int indexes the reader's polygons (`~i`: the same polygon turned
over, for OrientableSurface orientation="-"); a str is an xlink:href not yet resolved ("-"
prefix: turned over). Hrefs are resolved against the gml:ids read in the same batch only:
nothing is ever fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import shapely

__all__ = [
    "GML_NAMESPACES",
    "XLINK_HREF",
    "GeometryError",
    "GeometryReader",
    "Parts",
    "Ref",
    "multipolygons",
    "oriented",
]

GML_NAMESPACES = ("http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2")
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

Ref = int | str

_CURVES = ("LineString", "LineStringSegment", "LinearRing")
_COLLECTIONS = (
    "MultiCurve",
    "CompositeCurve",
    "Curve",
    "OrientableCurve",
    "MultiPoint",
    "MultiGeometry",
    "GeometryCollection",
)


class GeometryError(ValueError):
    """A geometry that cannot be read; the message says why."""


@dataclass(slots=True)
class Parts:
    """What one geometry property holds: polygon handles, curves and points (arrays of x, y, z)."""

    polygons: list[Ref] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)


def _href_ref(href: str) -> str:
    """An unresolved reference: the id after '#' ('#' is optional, as Munich's tiles write it)."""
    return href.removeprefix("#")


def _flip(refs: list[Ref]) -> list[Ref]:
    return [~r if type(r) is int else (r[1:] if r.startswith("-") else "-" + r) for r in refs]


class GeometryReader:
    """Reads the GML geometries of one batch; `build` turns their polygons into shapely.

    `ids` maps gml:id -> (record, handles) for every surface read, so that xlinks can be
    resolved and appearance targets found; `record` is the record being read, set by the caller.
    """

    def __init__(self, gml_ns: str, dimension: int = 3) -> None:
        self.dimension = dimension
        self.record = 0
        self.srs_name: str | None = None
        self.ids: dict[str, tuple[int, list[Ref]]] = {}
        self._rings: list[np.ndarray] = []
        self._ring_counts: list[int] = []

        def t(local: str) -> str:
            return f"{{{gml_ns}}}{local}"

        self._id = t("id")
        handlers: dict[str, Callable[[object, list[Ref]], None]] = {
            "Polygon": self._patch,
            "PolygonPatch": self._patch,
            "Triangle": self._patch,
            "Rectangle": self._patch,
            "Surface": self._patches,
            "TriangulatedSurface": self._patches,
            "Tin": self._patches,
            "PolyhedralSurface": self._patches,
            "OrientableSurface": self._orientable,
            "CompositeSurface": self._members,
            "Shell": self._members,
            "MultiSurface": self._members,
            "Solid": self._solid,
            "CompositeSolid": self._members,
            "MultiSolid": self._members,
        }
        self._surfaces = {t(k): v for k, v in handlers.items()}
        self._curves = {t(n) for n in _CURVES}
        self._points = {t("Point")}
        self._collections = {t(n) for n in _COLLECTIONS}
        self.geometry_tags = frozenset(
            self._surfaces.keys() | self._curves | self._points | self._collections
        )
        self._ring_tags = {
            t(n) for n in ("exterior", "interior", "outerBoundaryIs", "innerBoundaryIs")
        }
        self._exterior = t("exterior")
        self._polygon_tag = t("Polygon")
        self._pos_list, self._pos, self._coordinates = t("posList"), t("pos"), t("coordinates")

    # -- coordinates --------------------------------------------------------------------------

    def coordinates(self, elem) -> np.ndarray:
        """The positions of a LinearRing, LineString or Point as an (n, 3) array (z NaN if 2D)."""
        first = elem[0] if len(elem) else None
        tag = first.tag if first is not None else None
        dim_attr = None
        if tag == self._pos_list:
            text = first.text or ""
            dim_attr = first.get("srsDimension")
        elif tag == self._pos:
            text = " ".join(p.text or "" for p in elem.iterchildren(self._pos))
            dim_attr = first.get("srsDimension")
        elif tag == self._coordinates:
            text = (first.text or "").replace(",", " ")
        else:
            raise GeometryError(f"{_local(elem.tag)} without posList, pos or coordinates")
        dim = int(dim_attr) if dim_attr else self.dimension
        try:
            values = np.fromstring(text, sep=" ") if text and not text.isspace() else np.empty(0)
        except ValueError as e:
            raise GeometryError(f"{_local(elem.tag)} has coordinates that are not numbers") from e
        if values.size % dim:
            raise GeometryError(
                f"{_local(elem.tag)} has {values.size} coordinate values, not a multiple of "
                f"srsDimension {dim}"
            )
        xyz = values.reshape(-1, dim)
        if dim == 3:
            return xyz
        if dim > 3:
            return xyz[:, :3]
        return np.column_stack([xyz, np.full(len(xyz), np.nan)])

    # -- surfaces -----------------------------------------------------------------------------

    def read(self, elem) -> Parts:
        """The geometry `elem` (a GML geometry element) holds."""
        parts = Parts()
        srs = elem.get("srsName")
        if srs and self.srs_name is None:
            self.srs_name = srs
        dimension = self.dimension
        dim = elem.get("srsDimension")
        if dim:
            self.dimension = int(dim)
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
        elif tag in self._points:
            parts.points.append(self.coordinates(elem))
        elif tag in self._collections:  # members of multi / composite curves, points, collections
            for member in elem:
                if member.get(XLINK_HREF) is not None:
                    raise GeometryError(
                        f"xlink:href in a {_local(tag)} (only surfaces are resolved)"
                    )
                for child in member:
                    self._any(child, parts)
        else:
            raise GeometryError(f"unsupported geometry {_local(tag)}")

    def _surface(self, elem, out: list[Ref]) -> None:
        handler = self._surfaces.get(elem.tag)
        if handler is None:
            raise GeometryError(f"unsupported surface {_local(elem.tag)}")
        start = len(out)
        handler(elem, out)
        gid = elem.get(self._id)
        if gid is not None:
            self.ids[gid] = (self.record, out[start:])

    def _polygon(self, elem) -> int:
        """Read a Polygon, PolygonPatch or Triangle; its handle. The hot path of the reader:
        3D posList rings are read without the general `coordinates`."""
        rings = self._rings
        count = 0
        for boundary in elem:
            if boundary.tag not in self._ring_tags or not len(boundary):
                continue
            ring = boundary[0]
            first = ring[0] if len(ring) else None
            text = first.text if first is not None and first.tag == self._pos_list else None
            dim = first.get("srsDimension") if text else None
            if text and (dim == "3" or (dim is None and self.dimension == 3)) and not text.isspace():
                try:
                    xyz = np.fromstring(text, sep=" ")
                except ValueError as e:
                    raise GeometryError("posList has coordinates that are not numbers") from e
                if xyz.size % 3:
                    xyz = self.coordinates(ring)  # raises with the reason
                xyz = xyz.reshape(-1, 3)
            else:
                xyz = self.coordinates(ring)
            if len(xyz) < 4:
                raise GeometryError(f"a ring with {len(xyz)} positions (at least 4 are needed)")
            rings.append(xyz)
            count += 1
        if not count:
            raise GeometryError(f"{_local(elem.tag)} without an exterior ring")
        self._ring_counts.append(count)
        return len(self._ring_counts) - 1

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
            href = member.get(XLINK_HREF)
            if href is not None:
                out.append(_href_ref(href))
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
        out.extend(_flip(own) if elem.get("orientation") == "-" else own)

    def _solid(self, elem, out: list[Ref]) -> None:
        """The faces of the exterior shell; interior shells (cavities) are not part of the mass."""
        for boundary in elem:
            if boundary.tag == self._exterior:
                href = boundary.get(XLINK_HREF)
                if href is not None:
                    out.append(_href_ref(href))
                for shell in boundary:
                    self._surface(shell, out)

    # -- xlinks -------------------------------------------------------------------------------

    def resolve(
        self, refs: list[Ref], seen: frozenset[str] = frozenset()
    ) -> tuple[list[int], list[str]]:
        """Polygon handles for `refs`, and the ids that are defined nowhere read so far."""
        out: list[int] = []
        missing: list[str] = []
        ids = self.ids
        for r in refs:
            if type(r) is int:
                out.append(r)
                continue
            reverse = r.startswith("-")
            key = r[1:] if reverse else r
            target = ids.get(key)
            if target is None or key in seen:
                missing.append(key)
                continue
            found = target[1]
            if len(found) == 1 and type(found[0]) is int:  # a polygon: the common case
                out.append(~found[0] if reverse else found[0])
                continue
            handles, lost = self.resolve(found, seen | {key})
            out.extend([~h for h in handles] if reverse else handles)
            missing.extend(lost)
        return out, missing

    # -- building -----------------------------------------------------------------------------

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        """Every polygon read, as shapely Polygons with Z, and which have a ring not closed."""
        if not self._rings:
            return np.empty(0, dtype=object), np.zeros(0, dtype=bool)
        lengths = np.fromiter(map(len, self._rings), dtype=np.int64, count=len(self._rings))
        coords = np.concatenate(self._rings)
        ends = np.cumsum(lengths) - 1
        first, last = coords[ends - lengths + 1], coords[ends]
        open_ring = ~((first == last) | (np.isnan(first) & np.isnan(last))).all(axis=1)
        rings = shapely.linearrings(coords, indices=np.repeat(np.arange(len(lengths)), lengths))
        counts = np.asarray(self._ring_counts, dtype=np.int64)
        owner = np.repeat(np.arange(len(counts)), counts)
        polygons = shapely.polygons(rings, indices=owner)
        not_closed = np.zeros(len(counts), dtype=bool)
        not_closed[owner[open_ring]] = True
        return polygons, not_closed


def multipolygons(polygons: np.ndarray, handles: list[list[int]]) -> np.ndarray:
    """One MultiPolygon Z per list of handles (None for an empty list), in one shapely call."""
    counts = np.fromiter(map(len, handles), dtype=np.int64, count=len(handles))
    out = np.full(len(handles), None, dtype=object)
    if not counts.sum():
        return out
    flat = np.fromiter(chain.from_iterable(handles), dtype=np.int64, count=int(counts.sum()))
    parts = oriented(polygons, flat)
    shapely.multipolygons(parts, indices=np.repeat(np.arange(len(handles)), counts), out=out)
    return out


def oriented(polygons: np.ndarray, handles: np.ndarray) -> np.ndarray:
    """The polygons for `handles`, turned over where the handle says so (~i)."""
    turned = handles < 0
    parts = polygons[np.where(turned, ~handles, handles)]
    if turned.any():
        parts[turned] = shapely.reverse(parts[turned])
    return parts


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]
