"""Features of any GML application schema as records: properties, id, geometry, CRS.

A feature's child elements are its properties. One whose content is a GML geometry is a
geometry property: the first is the feature's geometry (a Point or LineString built with the
batch's others, gml_simple; any other by the GML reader CityGML uses, gml.py), the others are
properties holding their geometry as WKT in OGC:CRS84, longitude first (a row has one geometry
column; the lake's is in CRS84 too). gml:boundedBy (an envelope) is no geometry. Other
properties keep their local names: an element without children is its text (a measure
`{value, uom}`, an xlink its href, xsi:nil null), one with children a dict of them by local
name (JSON in the lake); a repeated property collects its values in a list. Text is typed per
property over the batch, as CSV columns are: integers, floats and true / false where every
value of the property is one, else text.

A property holding only an xlink:href may name a geometry elsewhere in the response
(wfs_gml_refs): resolved when the batch is flushed (a feature whose geometry comes in a later
batch is handed over with that batch), never fetched.

The id is gml:id (GML 3) or fid (GML 2). The CRS is the geometry's srsName, else the
feature's envelope's, else the collection's, else the one the caller names.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import shapely
from lxml import etree

from citypipe.connectors import rings
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.citygml_values import add, leaf_value, namespace
from citypipe.connectors.csv_values import typed
from citypipe.connectors.gml import (
    GML_NAMESPACES,
    GeometryError,
    GeometryReader,
    Parts,
    local_name,
    srs_dimension,
)
from citypipe.connectors.gml_polygons import Built, oriented
from citypipe.connectors.gml_simple import SimpleGeometries
from citypipe.connectors.gml_xlinks import XLINK_HREF
from citypipe.connectors.wfs_gml_refs import WAIT, GeometryRefs
from citypipe.geo.crs import axis_order, resolve, to_crs84
from citypipe.geo.errors import ConfigurationError
from citypipe.geo.types import AxisOrder

__all__ = ["FeatureReader"]

_NOT_GEOMETRY = frozenset({"Envelope", "Box", "Null", "EnvelopeWithTimePeriod", "X", "Y", "Z"})
"""GML elements named as geometries are (capitalised) that are none: envelopes, and the
ordinates of GML 2's gml:coord."""
_SINGLE = frozenset({"Point", "LineString", "Curve", "LinearRing", "Polygon", "Surface"})
"""Geometry elements that make a single geometry (when they hold one part); the others
(multi geometries, composites) make a multi geometry."""
_NULLS = ("",)
_BOOLEANS = [("true", "false")]
"""xsd:boolean's words (1 and 0 stay integers)."""
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


@dataclass(slots=True, eq=False)
class _Record:
    element: Any
    source_id: str | None
    feature_class: str
    crs: str | None
    properties: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None
    parts: Parts | None = None
    error: str | None = None


class _Elements(Sequence[str]):
    """The features' XML, serialised only when a reject asks for it."""

    def __init__(self, elements: list[Any]) -> None:
        self._elements = elements

    def __len__(self) -> int:
        return len(self._elements)

    def __getitem__(self, i: Any) -> Any:
        return etree.tostring(self._elements[i], encoding="unicode")


class FeatureReader:
    """Reads the features of one response batch by batch.

    `short` is the axis order the response's convention gives a short EPSG:n srsName
    (crs.axis_order); `crs` the CRS of features that name none; `refers` whether the response
    holds references, None where that is not known (GeometryRefs).
    """

    def __init__(self, gml_ns: str, short: AxisOrder, crs: str | None, refers: bool | None) -> None:
        self._gml_ns = gml_ns
        self._short = short
        self._crs = crs
        self._id = f"{{{gml_ns}}}id"
        self._bounded = f"{{{gml_ns}}}boundedBy"
        self._records: list[_Record] = []
        self._geometry = GeometryReader(gml_ns, dimension=2)
        self._simple = SimpleGeometries()
        self._simple_tags = {f"{{{gml_ns}}}Point", f"{{{gml_ns}}}LineString"}
        self._boxes = {f"{{{gml_ns}}}Envelope", f"{{{gml_ns}}}Box"}
        self._kinds: dict[str, tuple[str, bool]] = {}  # tag -> (local name, a GML geometry?)
        self._names: dict[Any, str] = {}  # tag -> local name, of the tags that are names
        self._refs = GeometryRefs(self._id, refers)

    def __len__(self) -> int:
        return len(self._records)

    def feature(self, elem: Any) -> None:
        """Read one feature element."""
        rec = _Record(elem, elem.get(self._id) or elem.get("fid"), local_name(elem.tag), None)
        self._records.append(rec)
        envelope = box = None
        properties, names = rec.properties, self._names
        for prop in elem:
            tag = prop.tag
            if not len(prop) and not prop.attrib:  # most properties: text and nothing else
                name = names.get(tag) or self._kind(tag)[0]  # "" for a comment
                text = prop.text
                value = (text.strip() or None) if text and name else None
                if value is not None:
                    if name in properties:
                        add(properties, name, value)
                    else:
                        properties[name] = value
                continue
            if tag == self._bounded:
                envelope = prop[0].get("srsName") if len(prop) else None
                continue
            if not isinstance(tag, str):
                continue
            if not len(prop):
                href = prop.get(XLINK_HREF)
                if href is not None and len(prop.attrib) == 1:  # perhaps a geometry's
                    self._refs.refer(len(self._records) - 1, prop, href)
                else:
                    add(rec.properties, self._kind(tag)[0], _value(prop))
                continue
            geometry = prop[0] if len(prop) == 1 and self._kind(prop[0].tag)[1] else None
            if geometry is None:
                box = self._property_or_box(rec, prop, box)
                continue
            if rec.kind is None:
                rec.crs = envelope or self._crs
                self._read_geometry(rec, geometry, len(self._records) - 1)
            else:
                add(rec.properties, self._kind(tag)[0], self._wkt(geometry, rec.crs))
        self._box(rec, box, envelope)
        if rec.kind is None:
            rec.crs = envelope or self._crs

    def _property_or_box(self, rec: _Record, prop: Any, box: Any) -> Any:
        """`prop` added to the properties, unless it is the feature's first holding a
        gml:Envelope or Box: that is returned (else `box`), to be its geometry where it has no
        other (`_box`)."""
        if box is None and len(prop) == 1 and prop[0].tag in self._boxes:
            return prop
        add(rec.properties, self._kind(prop.tag)[0], _value(prop))
        return box

    def _box(self, rec: _Record, prop: Any, envelope: str | None) -> None:
        """A property holding a gml:Envelope or Box (None: none): the feature's geometry, the
        polygon of its corners, where it has no other, as GDAL reads it; else a property."""
        if prop is None:
            return
        if rec.kind is not None:
            add(rec.properties, self._kind(prop.tag)[0], _value(prop))
            return
        rec.crs = envelope or self._crs
        try:
            polygon = self._box_polygon(prop[0])
        except GeometryError as e:
            rec.kind = local_name(prop[0].tag)
            rec.error = f"{rec.kind}: {e}"
            return
        self._read_geometry(rec, polygon, len(self._records) - 1)

    def _box_polygon(self, box: Any) -> Any:
        """A gml:Envelope (lowerCorner, upperCorner) or GML 2 gml:Box (two coord or one
        coordinates) as the gml:Polygon of its corners, in its srsName."""
        gml = self._gml_ns
        corners = [box.findtext(f"{{{gml}}}{c}") for c in ("lowerCorner", "upperCorner")]
        if None in corners:
            text, dim = self._geometry.text(box)
        else:
            text, dim = " ".join(c or "" for c in corners), self._geometry.dimension
            given = box.get("srsDimension")
            dim = srs_dimension(given) if given else dim
        values = text.split()
        if len(values) not in (2 * dim, 4, 6):
            raise GeometryError(f"{len(values)} coordinate values, not two corners")
        dim = len(values) // 2
        lo, hi = values[:2], values[dim : dim + 2]
        ring = [lo, [hi[0], lo[1]], hi, [lo[0], hi[1]], lo]
        polygon = etree.Element(f"{{{gml}}}Polygon", nsmap={"gml": gml})
        if box.get("srsName"):
            polygon.set("srsName", box.get("srsName"))
        outer = etree.SubElement(
            etree.SubElement(polygon, f"{{{gml}}}exterior"), f"{{{gml}}}LinearRing"
        )
        etree.SubElement(outer, f"{{{gml}}}posList").text = " ".join(" ".join(p) for p in ring)
        return polygon

    def _kind(self, tag: Any) -> tuple[str, bool]:
        """An element's local name, and whether it is a GML geometry (remembered by tag)."""
        found = self._kinds.get(tag)
        if found is None:
            text = isinstance(tag, str)
            found = self._kinds[tag] = (
                local_name(tag) if text else "",
                text and _is_geometry(tag),
            )
            if text:
                self._names[tag] = found[0]
        return found

    def _read_geometry(self, rec: _Record, geometry: Any, index: int) -> None:
        """`geometry` read as the geometry of `rec`, record `index` of the batch."""
        rec.kind = local_name(geometry.tag)
        reader = self._geometry
        reader.record = index
        reader.srs_name = None
        own = geometry.get("srsName")
        if own:
            rec.crs = own  # a geometry that cannot be read stays with its CRS's records
        srs = own or rec.crs
        reader.dimension = _axes(srs) if srs else 2  # where no srsDimension says otherwise
        try:
            if geometry.tag in self._simple_tags:  # a Point or LineString: built with the batch's
                dim = geometry.get("srsDimension")
                if dim:
                    reader.dimension = srs_dimension(dim)
                text, dim = reader.text(geometry)
                self._simple.add(index, rec.kind == "Point", text, dim)
            else:
                rec.parts = reader.read(geometry)
                own = reader.srs_name
        except GeometryError as e:
            rec.error = f"{rec.kind}: {e}"
            return
        if own:
            rec.crs = own

    def _wkt(self, geometry: Any, crs: str | None) -> str | None:
        """A further geometry property, as WKT in OGC:CRS84 (longitude, latitude, as the
        geometry column holds it); None where it cannot be read or placed."""
        srs = geometry.get("srsName") or crs
        if not srs:
            return None
        reader = GeometryReader(self._gml_ns, dimension=_axes(srs))
        try:
            parts = reader.read(geometry)
            built = reader.build()
            handles, missing = reader.resolve(parts.polygons)
            kept = [h for h in handles if built.polygons[~h if h < 0 else h] is not None]
            shape = _shape(
                local_name(geometry.tag),
                oriented(built.polygons, np.asarray(kept, np.int64)),
                parts,
            )
            to = to_crs84(resolve(srs), axis_order(srs, self._short))
        except (GeometryError, ConfigurationError):
            return None
        if shape is None or missing:
            return None
        placed = shapely.transform(shape, to, include_z=bool(shapely.has_z(shape)))
        return shapely.to_wkt(placed, rounding_precision=-1)

    def _referred(self, final: bool) -> dict[int, int]:
        """The batch's properties that hold an xlink:href, resolved (GeometryRefs): a geometry
        it names is the record's geometry (or a further one, as WKT); one that cannot be had
        rejects the record where it has no other; else the href is a property's value. The
        records whose geometry is not read yet (`WAIT`), without one of their own or named by
        another reference, are returned (index -> index in the next batch), held to the next
        batch with their references (each resolved, and charged, once)."""
        features = (rec.element for rec in self._records)
        found = list(self._refs.resolve(features, lambda t: self._kind(t)[1], final))
        waiting, placed = set(), set()
        for i, _, target in found:
            if target is WAIT:
                waiting.add(i)
            elif target is not None and not isinstance(target, str):
                placed.add(i)
        stay = sorted(i for i in waiting - placed if self._records[i].kind is None)
        held = {i: k for k, i in enumerate(stay)}
        for index, prop, target in found:
            rec, name = self._records[index], self._kind(prop.tag)[0]
            if index in held:
                self._refs.refer(held[index], prop, prop.get(XLINK_HREF))
            elif target is None or target is WAIT or (isinstance(target, str) and rec.kind):
                add(rec.properties, name, _value(prop))
            elif isinstance(target, str):
                rec.kind, rec.error = name, target
            elif rec.kind is None:
                self._read_geometry(rec, target, index)
            else:
                add(rec.properties, name, self._wkt(target, rec.crs))
        return held

    def flush(self, final: bool = True) -> Iterator[SourceBatch]:
        """The features read since the last flush, as one SourceBatch per CRS; where not
        `final` (more of the response follows), those whose referred geometry is not read yet
        stay for the next."""
        held = self._referred(final)
        records, self._records = self._records, [self._records[i] for i in held]
        if len(records) == len(held):
            return
        built = self._geometry.build()
        geometries, repairs = self._shapes(records, built)
        for i, why in self._simple.build(geometries).items():
            records[i].error = f"{records[i].kind}: {why}"
        self._geometry = GeometryReader(self._gml_ns, dimension=2)
        self._simple = SimpleGeometries()
        kept = [i for i in range(len(records)) if i not in held]
        properties = dict(zip(kept, _typed([records[i].properties for i in kept]), strict=True))
        groups: dict[str | None, list[int]] = {}
        for i in kept:
            groups.setdefault(records[i].crs, []).append(i)
        for crs, rows in groups.items():
            yield SourceBatch(
                source_ids=[records[i].source_id for i in rows],
                geometries=geometries[rows],
                properties=[properties[i] for i in rows],
                records=_Elements([records[i].element for i in rows]),
                crs=crs,
                axis_order=axis_order(crs, self._short) if crs else "xy",
                feature_classes=[records[i].feature_class for i in rows],
                errors=[records[i].error for i in rows],
                repairs=[repairs[i] for i in rows],
            )

    def _shapes(self, records: list[_Record], built: Built) -> tuple[np.ndarray, list[str | None]]:
        """Each record's geometry (None without one) and its repair note."""
        out = np.full(len(records), None, dtype=object)
        notes: list[str | None] = [None] * len(records)
        repaired = bool(built.repairs.any())
        for i, rec in enumerate(records):
            if rec.parts is None or rec.error:
                continue
            out[i] = None if repaired else _plain(rec, built)
            if out[i] is not None:
                continue
            handles, missing = self._geometry.resolve(rec.parts.polygons)
            if missing:
                rec.error = f"xlink:href to {', '.join(sorted(set(missing)))}, defined nowhere"
                continue
            used = [~h if h < 0 else h for h in handles]
            why = next((built.reasons[h] for h in used if h in built.reasons), None)
            if why:
                rec.error = why
                continue
            if repaired and used:
                notes[i] = rings.describe(built.repairs[used].sum(axis=0))
            kept = [h for h in handles if built.polygons[~h if h < 0 else h] is not None]
            polygons = oriented(built.polygons, np.asarray(kept, dtype=np.int64))
            out[i] = _shape(rec.kind or "", polygons, rec.parts)
            if out[i] is None:
                rec.error = f"no usable geometry left: {notes[i]}"
        return out, notes


def _plain(rec: _Record, built: Built) -> Any:
    """The polygon of a record whose geometry is one Polygon that needs no xlink and no
    repair (the common case, read without resolving), else None."""
    parts = rec.parts
    if parts is None or len(parts.polygons) != 1 or rec.kind not in _SINGLE:
        return None
    h = parts.polygons[0]
    return built.polygons[h] if type(h) is int and h >= 0 and h not in built.reasons else None


def _shape(kind: str, polygons: np.ndarray, parts: Parts) -> Any:
    """One shapely geometry for what a geometry element held; None when nothing is left."""
    lines = [shapely.linestrings(_plane(c)) for c in parts.lines]
    points = [shapely.points(_plane(c)[0]) for c in parts.points]
    found = [g for g in (list(polygons), lines, points) if g]
    if len(found) != 1:
        return shapely.geometrycollections([g for group in found for g in group]) if found else None
    group = found[0]
    if len(group) == 1 and kind in _SINGLE:
        return group[0]
    if group is lines:
        return shapely.multilinestrings(group)
    if group is points:
        return shapely.multipoints(group)
    return shapely.multipolygons(group)


def _plane(coordinates: np.ndarray) -> np.ndarray:
    """x, y (and z where there is one) of an (n, 3) array whose z is NaN when 2D."""
    return coordinates[:, :2] if np.isnan(coordinates[:, 2]).all() else coordinates


def _value(prop: Any) -> Any:
    """A property's value: a leaf's (text, measure, href), null for xsi:nil, else a dict of its
    children by local name."""
    if prop.get(_XSI_NIL) in ("true", "1"):
        return None
    if not len(prop):
        return leaf_value(prop)
    out: dict[str, Any] = {}
    for child in prop:
        if isinstance(child.tag, str) and not _is_geometry(child.tag):
            add(out, local_name(child.tag), _value(child))
    return out or None  # None: it held geometry only


def _is_geometry(tag: str) -> bool:
    """A GML geometry (inside a nested feature, say): not carried in properties."""
    local = local_name(tag)
    return namespace(tag) in GML_NAMESPACES and local[:1].isupper() and local not in _NOT_GEOMETRY


@lru_cache(maxsize=64)
def _axes(srs: str) -> int:
    """How many ordinates a position in the CRS `srs` has, as pyproj says (2 for an unknown
    CRS: its records are refused for the CRS, not misread)."""
    try:
        return len(resolve(srs).axis_info)
    except ConfigurationError:
        return 2


def _typed(properties: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The properties with text typed per property over the batch (numbers, booleans)."""
    keys: dict[str, None] = {}
    for p in properties:
        keys.update(dict.fromkeys(p))
    for key in keys:
        values = [p.get(key) for p in properties]
        if not all(v is None or type(v) is str for v in values):
            continue
        converted = typed(pa.array(values, pa.string()), _NULLS, _BOOLEANS)
        for p, v in zip(properties, converted, strict=True):
            if key in p:
                p[key] = v
    return properties
