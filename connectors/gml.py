"""GML 3.1.1 / 3.2 geometry as CityGML writes it, read into shapely geometries with Z.

A city model holds many thousands of polygons (solids are shells of polygons, reliefs are
triangles), so a `GeometryReader` only collects their coordinate text while a batch is read,
then parses all of it in one Arrow call (several times faster than numpy's text parsing) and
builds the polygons in a few vectorised shapely calls, after `rings.repair` has closed the
rings that are open or closed only within float noise and dropped the polygons (and interior
rings) with fewer than three distinct positions. Surfaces are handed around as
polygon handles (`Ref`): an int indexes the reader's polygons (`~i`: the same polygon turned
over, for OrientableSurface orientation="-"); a str is an xlink:href not yet resolved ("-"
prefix: turned over). Hrefs are resolved against the gml:ids read in the same batch only:
nothing is ever fetched.

xlinks let a few bytes stand for much geometry: surfaces that each reference the one before
twice double at every level (a 16 KB document would become gigabytes). What xlinks bring in is
therefore held to what the batch holds (`XLINK_BUDGET` polygons and coordinate text per
polygon and character read, `XLINK_DEPTH` xlinks followed in a chain); past that the document
is refused (`XlinkBudgetError`). Real models stay far below: each surface of Munich's and NRW's
solids is referenced once, so xlinks bring in as much as the document holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from citypipe.connectors import rings
from citypipe.geo.errors import DataError

__all__ = [
    "GML_NAMESPACES",
    "XLINK_HREF",
    "Built",
    "GeometryError",
    "GeometryReader",
    "Parts",
    "Ref",
    "XlinkBudgetError",
    "multipolygons",
    "oriented",
    "srs_dimension",
]

GML_NAMESPACES = ("http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2")
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

Ref = int | str

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"

_CURVES = ("LineString", "LineStringSegment", "LinearRing")
_SEGMENTS = ("LineString", "LineStringSegment")
"""What the curve members of a gml:Ring may be (inline, or as the segments of a gml:Curve)."""
_COLLECTIONS = (
    "MultiCurve",
    "CompositeCurve",
    "Curve",
    "OrientableCurve",
    "MultiPoint",
    "MultiGeometry",
    "GeometryCollection",
)


XLINK_BUDGET = 16
"""Polygons, and characters of coordinate text, xlinks may bring in per polygon and character
the batch has read so far (beyond `XLINK_FLOOR`): 8 times what every real model at hand needs
(their solids reference each of their surfaces once)."""
XLINK_FLOOR = (10_000, 1_000_000)
"""Polygons and characters xlinks may bring in whatever the batch holds."""
XLINK_DEPTH = 16
"""xlinks followed in one chain (one that references one that references ...): real models
follow one or two."""


class GeometryError(ValueError):
    """A geometry that cannot be read; the message says why."""


class XlinkBudgetError(DataError):
    """xlinks that would bring in more than `XLINK_BUDGET` allows: the document is refused."""


@dataclass(slots=True)
class Parts:
    """What one geometry property holds: polygon handles, curves and points (arrays of x, y, z)."""

    polygons: list[Ref] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)


class Built(NamedTuple):
    """The polygons of a batch, by handle, and what became of them."""

    polygons: np.ndarray
    """shapely Polygons (with Z where the rings have it); None where a polygon cannot be built
    (its reason is in `reasons`) or was dropped by the repair (`repairs` column 3)."""
    reasons: dict[int, str]
    """Why the polygons that cannot be built cannot: {handle: reason}."""
    repairs: np.ndarray
    """What was repaired in each polygon (n, 4): `rings.repair` counts."""


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
        self._texts: list[str] = []  # one per ring
        self._dims: list[int] = []  # srsDimension of each ring
        self._blank: list[int] = []  # rings without positions
        self._ring_counts: list[int] = []  # rings of each polygon
        self._sizes: list[int] = []  # characters of coordinate text of each polygon
        self._chars = 0  # of all polygons
        self._brought = [0, 0]  # polygons and characters xlinks brought in (`XLINK_BUDGET`)

        def t(local: str) -> str:
            return f"{{{gml_ns}}}{local}"

        self._id = t("id")
        # plain functions, not bound methods: those would make a reference cycle
        handlers: dict[str, Callable[[GeometryReader, Any, list[Ref]], None]] = {
            "Polygon": GeometryReader._patch,
            "PolygonPatch": GeometryReader._patch,
            "Triangle": GeometryReader._patch,
            "Rectangle": GeometryReader._patch,
            "Surface": GeometryReader._patches,
            "TriangulatedSurface": GeometryReader._patches,
            "Tin": GeometryReader._patches,
            "PolyhedralSurface": GeometryReader._patches,
            "OrientableSurface": GeometryReader._orientable,
            "CompositeSurface": GeometryReader._members,
            "Shell": GeometryReader._members,
            "MultiSurface": GeometryReader._members,
            "Solid": GeometryReader._solid,
            "CompositeSolid": GeometryReader._members,
            "MultiSolid": GeometryReader._members,
        }
        self._surfaces = {t(k): v for k, v in handlers.items()}
        self._curves = {t(n) for n in _CURVES}
        self._points = {t("Point")}
        self._collections = {t(n) for n in _COLLECTIONS}
        self._ring_tags = {
            t(n) for n in ("exterior", "interior", "outerBoundaryIs", "innerBoundaryIs")
        }
        self._exterior = t("exterior")
        self._ring, self._curve = t("Ring"), t("Curve")
        self._segments = {t(n) for n in _SEGMENTS}
        self._polygon_tag = t("Polygon")
        self._pos_list, self._pos, self._coordinates = t("posList"), t("pos"), t("coordinates")

    # -- coordinates --------------------------------------------------------------------------

    def _text(self, elem) -> tuple[str, int]:
        """The positions of a LinearRing, LineString or Point as text (empty if it has none),
        and their srsDimension."""
        if not len(elem):
            return "", self.dimension
        first = elem[0]
        tag = first.tag
        if tag == self._pos_list:
            text = first.text or ""
        elif tag == self._pos:
            text = " ".join(p.text or "" for p in elem.iterchildren(self._pos))
        elif tag == self._coordinates:
            text = (first.text or "").replace(",", " ")
        else:
            raise GeometryError(f"{_local(elem.tag)} without posList, pos or coordinates")
        dim = first.get("srsDimension")
        return text, srs_dimension(dim) if dim else self.dimension

    def _ring_text(self, ring) -> tuple[str, int]:
        """A LinearRing's positions; a Ring's are those of its curve members, one after the
        other (where one ends the next begins: the repeated position changes no shape)."""
        if ring.tag != self._ring:
            return self._text(ring)
        parts = [self._text(segment) for segment in self._ring_segments(ring)]
        dims = {dim for _, dim in parts}
        if len(dims) > 1:
            raise GeometryError("a Ring whose curve members differ in srsDimension")
        return " ".join(text for text, _ in parts), dims.pop() if dims else self.dimension

    def _ring_segments(self, ring) -> Iterator[Any]:
        """The LineStrings and LineStringSegments a Ring's curve members hold, in order."""
        for member in ring:
            if member.get(XLINK_HREF) is not None:
                raise GeometryError("xlink:href in a Ring (only surfaces are resolved)")
            for curve in member:
                if curve.tag in self._segments:
                    yield curve
                elif curve.tag == self._curve:
                    for segment in chain.from_iterable(curve):
                        if segment.tag not in self._segments:
                            raise GeometryError(f"a Ring with a {_local(segment.tag)} segment")
                        yield segment
                else:
                    raise GeometryError(f"a Ring with a {_local(curve.tag)} member")

    def coordinates(self, elem) -> np.ndarray:
        """The positions of a LineString or Point as an (n, 3) array (z NaN if 2D): at least
        two for a curve, one for a point, every coordinate a finite number."""
        text, dim = self._text(elem)
        name = _local(elem.tag)
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
        return _xyz(values.reshape(-1, dim))

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
        handler(self, elem, out)
        gid = elem.get(self._id)
        if gid is not None:
            self.ids[gid] = (self.record, out[start:])

    def _polygon(self, elem) -> int:
        """Collect a Polygon, PolygonPatch or Triangle's rings; its handle."""
        count = size = 0
        for boundary in elem:
            if boundary.tag in self._ring_tags and len(boundary):
                text, dim = self._ring_text(boundary[0])
                if not text or text.isspace():
                    self._blank.append(len(self._texts))
                self._texts.append(text)
                self._dims.append(dim)
                count += 1
                size += len(text)
        if not count:
            raise GeometryError(f"{_local(elem.tag)} without an exterior ring")
        self._ring_counts.append(count)
        self._sizes.append(size)
        self._chars += size
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

    def resolve(self, refs: list[Ref]) -> tuple[list[int], list[str]]:
        """Polygon handles for `refs`, and the ids that are defined nowhere read so far.

        Raises XlinkBudgetError when xlinks bring in more than the budget allows."""
        out: list[int] = []
        missing: list[str] = []
        ids, sizes = self.ids, self._sizes
        polygons = chars = 0
        for r in refs:
            if type(r) is int:
                out.append(r)
                continue
            reverse = r.startswith("-")
            key = r[1:] if reverse else r
            target = ids.get(key)
            if target is not None:
                found = target[1]
                if len(found) == 1 and type(found[0]) is int:  # a polygon: the common case
                    h = found[0]
                    out.append(~h if reverse else h)
                    polygons += 1
                    chars += sizes[~h if h < 0 else h]
                    continue
            self._follow(key, reverse, frozenset(), out, missing)
        if polygons:
            self._charge(polygons, chars)
        return out, missing

    def _follow(
        self, key: str, reverse: bool, seen: frozenset[str], out: list[int], missing: list[str]
    ) -> None:
        """Add the handles the surface with gml:id `key` stands for (turned over if `reverse`),
        following its xlinks (`seen`: the chain followed so far, which a cycle would repeat)."""
        target = self.ids.get(key)
        if target is None or key in seen:
            missing.append(key)
            return
        if len(seen) >= XLINK_DEPTH:
            raise XlinkBudgetError(
                f"xlinks chained more than {XLINK_DEPTH} deep (at {key!r}: a surface referencing "
                "a surface that references another ...): refused as a possible xlink bomb"
            )
        seen = seen | {key}
        sizes = self._sizes
        polygons = chars = 0
        for h in target[1]:
            if type(h) is int:
                out.append(~h if reverse else h)
                polygons += 1
                chars += sizes[~h if h < 0 else h]
            elif h.startswith("-"):
                self._follow(h[1:], not reverse, seen, out, missing)
            else:
                self._follow(h, reverse, seen, out, missing)
        self._charge(polygons, chars)

    def _charge(self, polygons: int, chars: int) -> None:
        """Count what xlinks brought in; refuse past the budget."""
        brought = self._brought
        brought[0] += polygons
        brought[1] += chars
        held = len(self._ring_counts), self._chars
        if (
            brought[0] > XLINK_BUDGET * held[0] + XLINK_FLOOR[0]
            or brought[1] > XLINK_BUDGET * held[1] + XLINK_FLOOR[1]
        ):
            raise XlinkBudgetError(
                f"xlinks bring in over {brought[0]} polygons ({brought[1]} characters of "
                f"coordinates) where the document holds {held[0]} ({held[1]}) so far: more "
                f"than {XLINK_BUDGET} times what it holds, refused as a possible xlink bomb"
            )

    # -- building -----------------------------------------------------------------------------

    def build(self) -> Built:
        """Every polygon read, rings repaired, as shapely Polygons with Z."""
        n = len(self._ring_counts)
        if not n:
            return Built(np.empty(0, dtype=object), {}, np.zeros((0, 4), dtype=np.int64))
        tokens = pc.ascii_split_whitespace(pc.ascii_trim_whitespace(pa.array(self._texts)))
        flat_tokens, sizes = tokens.flatten(), np.diff(tokens.offsets.to_numpy())
        if self._blank:  # a blank text splits into one empty token
            blank = np.asarray(self._blank, dtype=np.int64)
            keep = np.ones(len(flat_tokens), dtype=bool)
            keep[tokens.offsets.to_numpy()[blank]] = False
            flat_tokens, sizes[blank] = flat_tokens.filter(pa.array(keep)), 0
        dims = np.asarray(self._dims, dtype=np.int64)
        values, numbers, finite = _floats(flat_tokens, sizes)
        positions = sizes // dims
        coords = _coordinates(values, sizes, dims)
        counts = np.asarray(self._ring_counts, dtype=np.int64)
        fix = rings.repair(coords, positions, counts)
        coords = fix.coords
        owner = np.repeat(np.arange(n), counts)
        reasons: dict[int, str] = {}
        for mask, reason in (  # the first that applies is the polygon's reason
            (~numbers, "a ring with coordinates that are not numbers"),
            (~finite, "a ring with coordinates that are not finite (nan, inf, 1e309)"),
            (sizes % dims != 0, "a ring whose coordinate count is not a multiple of srsDimension"),
        ):
            for ring in np.flatnonzero(mask).tolist():
                reasons.setdefault(int(owner[ring]), reason)
        good = fix.polygon_kept.copy()
        good[list(reasons)] = False
        flat = np.zeros(n, dtype=bool)  # a 2D ring makes a 2D polygon (NaN heights would not
        flat[owner[dims < 3]] = True  # compare equal, and shapely would close rings again)
        kept_rings = np.bincount(owner[fix.ring_kept], minlength=n)
        polygons = np.full(n, None, dtype=object)
        for chosen, columns in ((good & ~flat, 3), (good & flat, 2)):
            if chosen.any():
                use = chosen[owner] & fix.ring_kept
                linear = shapely.linearrings(  # closes the rings left open
                    coords[np.repeat(use, positions), :columns],
                    indices=np.repeat(np.arange(use.sum()), positions[use]),
                )
                own = np.repeat(np.arange(chosen.sum()), kept_rings[chosen])
                polygons[chosen] = shapely.polygons(linear, indices=own)
        return Built(polygons, reasons, fix.counts)


def _floats(tokens: pa.Array, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numbers, and per ring whether all of its tokens were numbers and all finite (not
    nan, inf or beyond the float range). Bad values are 0, so the ring repair can run on them."""
    every = np.ones(len(sizes), dtype=bool)
    try:
        values, numbers = pc.cast(tokens, pa.float64()).to_numpy(zero_copy_only=False), every
    except pa.ArrowInvalid:
        numeric = pc.match_substring_regex(tokens, _NUMBER)
        values = pc.cast(pc.if_else(numeric, tokens, "0"), pa.float64()).to_numpy()
        numbers = ~_any_per_ring(~numeric.to_numpy(zero_copy_only=False), sizes)
    bad = ~np.isfinite(values)
    if not bad.any():
        return values, numbers, every
    return np.where(bad, 0.0, values), numbers, ~_any_per_ring(bad, sizes)


def _any_per_ring(mask: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per ring, whether `mask` holds for any of its values."""
    ring = np.repeat(np.arange(len(sizes)), sizes)
    return np.bincount(ring[mask], minlength=len(sizes)).astype(bool)


def _coordinates(values: np.ndarray, sizes: np.ndarray, dims: np.ndarray) -> np.ndarray:
    """(n, 3) positions of all rings: in one reshape when all are 3D, ring by ring otherwise."""
    if (dims == 3).all() and not (sizes % 3).any():
        return values.reshape(-1, 3)
    starts = np.cumsum(sizes) - sizes
    return np.concatenate(
        [
            _xyz(values[s : s + n - n % d].reshape(-1, d))
            for s, n, d in zip(starts.tolist(), sizes.tolist(), dims.tolist(), strict=False)
        ]
    )


def srs_dimension(text: str) -> int:
    """An srsDimension attribute's value."""
    if text.strip() not in ("2", "3", "4"):
        raise GeometryError(f"srsDimension {text!r} is not 2, 3 or 4")
    return int(text)


def _xyz(positions: np.ndarray) -> np.ndarray:
    """Positions as x, y, z: the first three ordinates, z NaN for 2D."""
    if positions.shape[1] >= 3:
        return positions[:, :3]
    return np.column_stack([positions, np.full(len(positions), np.nan)])


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
