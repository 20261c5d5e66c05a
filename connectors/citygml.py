"""CityGML 1.0 and 2.0 (GML 3.1.1) and 3.0 (GML 3.2): one record per CityObject, streamed.

What becomes a record (a row): every object a CityModel member holds (Building, Road,
ReliefFeature, WaterBody, PlantCover, GenericCityObject, ...) and every CityObject nested in it
through a part-of property (`_CHILDREN`: BuildingParts, installations, rooms, 3.0 Storeys and
BuildingUnits, tunnel and bridge parts, Road Sections / Intersections / TrafficSpaces, 2.0
TrafficAreas, TINRelief components), with parent_source_id the gml:id of the object holding it.
Thematic surfaces (boundedBy / boundary: Roof, Wall, Ground ..., 3.0 TrafficArea) and openings
are not rows: they bound their object and become its `surfaces`; their attributes stay in its
properties under the property's name. Appearances, Versions and VersionTransitions are not
rows either: they annotate the objects they point to (`citygml:appearance`, `citygml:versions`,
`citygml:transitions`): objects read before them in the current batch, or still to come; one
in a batch already handed over is out of reach (its batch is written). A 3.0 grp:Role is not
an object either: its groupMember is. Members and objects of every CityGML version are read,
whatever the document's (1.0 and 2.0 alike); an object whose GML is not the document's (3.0 in
a 2.0 document, or the reverse) is rejected naming its namespace, never lost.

Geometry: `geometry_3d` is the richest LoD (the object's own solid / surface / curve geometry,
else its thematic surfaces of that LoD), `surfaces` the thematic surfaces of their richest LoD,
`geometries` the explicit LoD0 footprint (lod0FootPrint, a 3.0 GroundSurface's
lod0MultiSurface) or None. Terrain intersection curves and lower LoDs are not carried.
xlink:href surfaces are resolved inside the document only (never fetched): within the top-level
object, or an object read before it in the same batch; otherwise the object is rejected. What
they bring in is held to a budget (connectors/gml.py): an xlink bomb refuses the document.
Rings open or closed only within float noise are closed, and polygons with fewer than three
distinct positions dropped (connectors/rings.py), noted in the record's `repairs`; an object
is rejected for that only when none of its geometry is left. Coordinates that are not finite
numbers, a bad srsDimension, a curve of one position reject their object, with the reason.

CRS: the object's own srsName (its gml:boundedBy envelope, else its first geometry), else its
parent's, else the CityModel envelope's, else the one srsName the document declares anywhere
(Lyon's versioning example declares it on one object only). Nothing else is assumed: without
one, or with a locally defined one (#local-CRS-1), the pipeline refuses the source.

Streaming: iterparse hands over one CityModel member at a time; its elements are kept only
until their batch is written (they are the rejects' text, built only when asked for) and
detached from the document as reading moves on. DTDs and entities are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from lxml import etree

from citypipe.connectors import documents, rings
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.gml import (
    GML_NAMESPACES,
    GeometryError,
    GeometryReader,
    Parts,
    srs_dimension,
)
from citypipe.connectors.gml_polygons import Built, multipolygons, oriented
from citypipe.connectors.gml_xlinks import XLINK_HREF, Ref, XlinkBudgetError
from citypipe.geo.crs import axis_order
from citypipe.geo.errors import DataError

__all__ = ["CityGMLConnector"]

BATCH_SIZE = 2000
"""Records per batch (a top-level object and its parts are never split)."""

_CITYGML = "http://www.opengis.net/citygml/"
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY")
_CORE = re.compile(r"http://www\.opengis\.net/citygml/([123]\.0)")
_MODULE = re.compile(r"http://www\.opengis\.net/citygml/(?:[a-z]+/)?([123]\.0)")
"""The CityGML version of the core's or a module's namespace (building/2.0)."""
_GML = {"1.0": GML_NAMESPACES[0], "2.0": GML_NAMESPACES[0], "3.0": GML_NAMESPACES[1]}
_PARSER = {"resolve_entities": False, "no_network": True, "load_dtd": False}
_MEMBERS = (
    "cityObjectMember",
    "featureMember",
    "featureMembers",
    "appearanceMember",
    "versionMember",
    "versionTransitionMember",
)

_CHILDREN = frozenset(
    {
        "consistsOfBuildingPart", "buildingPart", "outerBuildingInstallation",
        "interiorBuildingInstallation", "buildingInstallation", "interiorRoom", "buildingRoom",
        "buildingSubdivision", "buildingConstructiveElement", "interiorFurniture",
        "buildingFurniture",
        "consistsOfBridgePart", "bridgePart", "outerBridgeConstruction",
        "outerBridgeInstallation", "interiorBridgeInstallation", "interiorBridgeRoom",
        "bridgeConstructiveElement", "bridgeInstallation", "bridgeRoom", "bridgeFurniture",
        "consistsOfTunnelPart", "tunnelPart", "outerTunnelInstallation",
        "interiorTunnelInstallation", "interiorHollowSpace", "tunnelConstructiveElement",
        "tunnelInstallation", "hollowSpace", "tunnelFurniture",
        "section", "intersection", "trafficSpace", "auxiliaryTrafficSpace", "trafficArea",
        "auxiliaryTrafficArea", "marking", "hole", "clearanceSpace",
        "reliefComponent", "groupMember",
    }
)  # fmt: skip
"""Properties whose inline objects are CityObjects of their own: each becomes a record."""

_GEOMETRY_PROPERTY = re.compile(r"lod([0-4])([A-Z]\w*)")
_RANK = {
    "Solid": 5, "MultiSolid": 5, "MultiSurface": 4, "Geometry": 4, "FootPrint": 3,
    "RoofEdge": 2, "MultiCurve": 1, "Network": 1, "Curve": 1, "MultiPoint": 0, "Point": 0,
}  # fmt: skip
"""Which geometry of one LoD is the object's geometry_3d: a solid before its surfaces, etc."""
_INTEGERS = frozenset(
    {"storeysAboveGround", "storeysBelowGround", "yearOfConstruction", "yearOfDemolition"}
)

_XAL = {
    "CountryName": "country", "CountryNameCode": "country_code",
    "AdministrativeAreaName": "region", "SubAdministrativeAreaName": "subregion",
    "LocalityName": "city", "DependentLocalityName": "district",
    "ThoroughfareName": "street", "ThoroughfareNumber": "number",
    "PostalCodeNumber": "postcode", "PremiseName": "premise", "PremiseNumber": "premise_number",
    "BuildingName": "building",
}  # fmt: skip
"""xAL 2.0 leaf elements -> address keys."""
_XAL3 = {
    "Country": "country", "AdministrativeArea": "region", "SubAdministrativeArea": "subregion",
    "Locality": "city", "SubLocality": "district", "Thoroughfare": "street",
    "PostCode": "postcode", "Premises": "premise", "SubPremises": "subpremise",
}  # fmt: skip
"""xAL 3.0 elements whose NameElement / Number / Identifier children hold an address part."""
_XAL3_NAME_TYPES = {None, "Name", "NameAndType", "NameAndNumber"}


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0]


def _text(elem: Any) -> str | None:
    text = elem.text
    if text is None:
        return None
    text = text.strip()
    return text or None


def _float(text: str) -> float | None:
    """A finite number, else None (nan, inf and 1e309 are not measures)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int64(text: str) -> int | None:
    """An integer that fits a 64-bit column, else None."""
    try:
        value = int(text)
    except ValueError:  # not an integer, or over Python's 4300 digits
        return None
    return value if -(2**63) <= value < 2**63 else None


def _number(text: str | None) -> Any:
    """A measure's value: a float, a list of floats (MeasureOrNullList), else the text."""
    if text is None:
        return None
    value = _float(text)
    if value is not None:
        return value
    values = [_float(v) for v in text.split()]
    return values if values and None not in values else text


def _add(d: dict[str, Any], key: str, value: Any) -> None:
    """Set `key`; a key given again collects its values in a list, in document order."""
    if value is None:
        return
    if key not in d:
        d[key] = value
    elif type(d[key]) is _Values:
        d[key].append(value)
    else:
        d[key] = _Values([d[key], value])


class _Values(list):
    """The values of a repeated element (told apart from a value that is itself a list)."""


_KEYS: dict[tuple[str, str | None], str] = {}


def _key(elem: Any) -> str:
    """A property's name: its local name in CityGML and GML, `prefix:name` in ADEs and others."""
    tag = elem.tag
    key = _KEYS.get((tag, elem.prefix))
    if key is None:
        ns, local = _namespace(tag), _local(tag)
        foreign = not ns.startswith(_CITYGML) and ns not in GML_NAMESPACES and elem.prefix
        key = _KEYS[(tag, elem.prefix)] = f"{elem.prefix}:{local}" if foreign else local
    return key


def _is_geometry(elem: Any) -> bool:
    """GML objects (geometries, envelopes) inside attributes: not carried in properties."""
    return _namespace(elem.tag) in GML_NAMESPACES and _local(elem.tag)[:1].isupper()


def _leaf(elem: Any) -> Any:
    """An element without children: its xlink:href, a measure {value, uom}, or its text."""
    href = elem.get(XLINK_HREF)
    if href is not None:
        return href
    text = _text(elem)
    uom = elem.get("uom")
    if uom is not None:
        return {"value": _number(text), "uom": uom}
    extra = {_local(k): v for k, v in elem.attrib.items() if _local(k) not in ("codeSpace", "id")}
    return {"value": text, **extra} if extra and text is not None else text


def _value(elem: Any) -> Any:
    """Any non-geometric element as plain data: a leaf value or a dict of its children.

    A property that wraps one object (con:height/con:Height, uro:buildingDetails/
    uro:BuildingDetails) is the object's content.
    """
    if not len(elem):
        return _leaf(elem)
    if len(elem) == 1 and _local(elem[0].tag)[:1].isupper():
        return None if _is_geometry(elem[0]) else _value(elem[0])
    out: dict[str, Any] = {}
    for child in elem:
        if not _is_geometry(child):
            _put(out, _key(child), child)
    return out


def _put(d: dict[str, Any], key: str, elem: Any) -> None:
    """Add an element's value under `key`, its code list (codeSpace) under `key:codeSpace`."""
    value = _value(elem)
    if key in _INTEGERS and isinstance(value, str):
        number = _int64(value)
        value = value if number is None else number
    _add(d, key, value)
    code_space = elem.get("codeSpace")
    if code_space is not None:
        _add(d, f"{key}:codeSpace", code_space)


_NUMERIC: dict[str, Any] = {"intattribute": _int64, "doubleattribute": _float}


def _typed(kind: str, value: Any) -> Any:
    """A generic attribute's value as its type says: int, float, {value, uom}, else text."""
    text = _text(value) if value is not None else None
    if text is None or kind == "stringattribute":
        return text
    convert = _NUMERIC.get(kind)
    if convert is not None:
        number = convert(text)
        return text if number is None else number
    if kind == "measureattribute":
        return {"value": _number(text), "uom": value.get("uom")}
    return text


def _generic_attribute(elem: Any) -> tuple[str | None, Any]:
    """gen:stringAttribute name="n"><gen:value> (1.0/2.0) or gen:StringAttribute><gen:name>
    <gen:value> (3.0) -> (name, typed value); a set -> (name, {member name: value})."""
    kind = _local(elem.tag).lower()
    name = elem.get("name")
    if name is not None and len(elem) == 1 and kind != "genericattributeset":
        return name, _typed(kind, elem[0])  # 1.0/2.0: the one child is gen:value
    values, members = [], []
    for child in elem:
        local = _local(child.tag)
        if local == "name":
            name = _text(child)
        elif local == "value":
            values.append(child)
        elif local != "codeSpace":
            members.append(child)
    if kind == "genericattributeset":
        inner = members + [v[0] for v in values if len(v)]  # 1.0/2.0 members, 3.0 values
        return name, dict(_generic_attribute(m) for m in inner)
    return name, _typed(kind, values[0] if values else None)


def _xal_key(leaf: Any) -> str:
    """The address key of an xAL 2.0 or 3.0 element holding text."""
    local = _local(leaf.tag)
    if local in _XAL:
        return _XAL[local]
    base = _XAL3.get(_local(leaf.getparent().tag))
    if base is None:
        return local
    if local == "Number":
        return "number" if base == "street" else f"{base}_number"
    name_type = leaf.get(f"{{{_namespace(leaf.tag)}}}NameType")
    return base if name_type in _XAL3_NAME_TYPES else f"{base}_{name_type}"


def _address(elem: Any) -> dict[str, Any]:
    """A core:Address as {street, number, postcode, city, country, ..., position}."""
    out: dict[str, Any] = {}
    for xal in elem.iter("{*}xalAddress"):
        for leaf in xal.iter():
            text = _text(leaf) if not len(leaf) else None
            if text is not None:
                _add(out, _xal_key(leaf), text)
    for point in elem.iter("{*}multiPoint"):
        positions = [
            _number(_text(p))
            for p in point.iter(f"{{{GML_NAMESPACES[0]}}}pos", f"{{{GML_NAMESPACES[1]}}}pos")
        ]
        srs = next((g.get("srsName") for g in point.iter() if g.get("srsName")), None)
        _add(out, "position", positions[0] if len(positions) == 1 else positions)
        _add(out, "position_srsName", srs)
    return out


def _appearance(elem: Any) -> list[dict[str, Any]]:
    """An app:Appearance as one entry per texture / material: theme, type, image, target ids."""
    theme = next((_text(c) for c in elem if _local(c.tag) == "theme"), None)
    entries = []
    for member in elem:
        if _local(member.tag) not in ("surfaceDataMember", "surfaceData"):
            continue
        for data in member:
            targets = [
                (t.get("uri") or _text(t) or "").removeprefix("#") for t in data.iter("{*}target")
            ]
            entry: dict[str, Any] = {"theme": theme, "type": _local(data.tag), "targets": targets}
            image = next(data.iter("{*}imageURI"), None)
            if image is not None:
                entry["imageURI"] = _text(image)
            entries.append(entry)
    return entries


@dataclass(slots=True, eq=False)
class _Record:
    """One CityObject as read; its geometry as polygon handles until the batch is built."""

    locator: tuple[Any, str, str | int]
    source_id: str | None
    feature_class: str
    parent: _Record | None
    index: int
    properties: dict[str, Any] = field(default_factory=dict)
    crs: str | None = None
    name: str | None = None
    height: float | None = None
    lod: int | None = None
    geometries: list[tuple[int | None, int, Parts]] = field(default_factory=list)
    surfaces: list[tuple[str, int, list[Ref]]] = field(default_factory=list)
    footprint: list[Ref] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # chosen when the top-level object is complete
    polygons: list[int] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    surface_handles: list[tuple[str, list[int]]] = field(default_factory=list)


class _Elements(Sequence[str]):
    """The records' XML, serialised only when a reject asks for it.

    A record is located as (CityModel member, tag, gml:id or n-th element of that tag in the
    member): holding the members alone keeps detaching them from the document cheap (lxml walks
    a detached subtree when something inside it is still referenced).
    """

    def __init__(self, locators: list[tuple[Any, str, str | int]], gml_id: str) -> None:
        self._locators = locators
        self._gml_id = gml_id

    def __len__(self) -> int:
        return len(self._locators)

    def __getitem__(self, i: Any) -> Any:
        member, tag, key = self._locators[i]
        if isinstance(key, int):
            elem = next(islice(member.iter(tag), key, None))
        else:
            elem = next(e for e in member.iter(tag) if e.get(self._gml_id) == key)
        return etree.tostring(elem, encoding="unicode")


@dataclass(frozen=True)
class _Header:
    """What the CityModel says before its first member."""

    version: str
    srs_name: str | None
    srs_dimension: int


class _ObjectReader:
    """Turns CityModel members into records, and records into SourceBatches."""

    def __init__(self, path: Path, header: _Header, batch_size: int) -> None:
        self.path = path
        self.header = header
        self.batch_size = batch_size
        self.gml_ns = _GML[header.version]
        self.gml_id = f"{{{self.gml_ns}}}id"
        # gml:id in the other GML: the source_id of an object of another CityGML version
        self._foreign_id = next(f"{{{ns}}}id" for ns in GML_NAMESPACES if ns != self.gml_ns)
        self.records: list[_Record] = []
        self.objects: dict[str, int] = {}
        self.pending: dict[str, list[tuple[str, Any]]] = {}
        self.geometry = GeometryReader(self.gml_ns, header.srs_dimension)
        self._kinds: dict[str, tuple[Any, ...]] = {}
        self._document_crs: str | None = header.srs_name
        self._member: Any = None
        self._seen_tags: dict[str, int] = {}

    # -- members ------------------------------------------------------------------------------

    def member(self, member: Any) -> None:
        """Read one CityModel member: objects become records, the rest annotates them."""
        kind = _local(member.tag)
        self._member, self._seen_tags = member, {}
        for obj in member:
            if kind == "appearanceMember" or _local(obj.tag) == "Appearance":
                self._global_appearance(obj)
            elif kind == "versionMember":
                self._version(obj)
            elif kind == "versionTransitionMember":
                self._transition(obj)
            else:
                first = len(self.records)
                self._object(obj, None)
                unread = self._unread(obj)
                if unread:  # the only reason: what its geometry would say is beside the point
                    for rec in self.records[first:]:
                        rec.errors = [unread]
                self._complete(self.records[first:])

    def _unread(self, obj: Any) -> str | None:
        """Why an object of another CityGML version than the document's is not read: one whose
        GML differs (3.0 in a 1.0 / 2.0 document, or the reverse). 1.0 and 2.0 read alike."""
        m = _MODULE.fullmatch(_namespace(obj.tag))
        if m is None or _GML[m.group(1)] == self.gml_ns:
            return None
        return (
            f"a CityGML {m.group(1)} object ({_namespace(obj.tag)}) in a CityGML "
            f"{self.header.version} document: its GML {'3.2' if m.group(1) == '3.0' else '3.1.1'}"
            " geometry is not read"
        )

    @property
    def full(self) -> bool:
        return len(self.records) >= self.batch_size

    def _object(self, elem: Any, parent: _Record | None) -> None:
        gid, tag = elem.get(self.gml_id), elem.tag
        nth = self._seen_tags[tag] = self._seen_tags.get(tag, -1) + 1
        locator = (self._member, tag, nth if gid is None else gid)
        sid = gid if gid is not None else elem.get(self._foreign_id)
        rec = _Record(locator, sid, _local(tag), parent, len(self.records))
        self.records.append(rec)
        if gid is not None:
            self.objects[gid] = rec.index
            for key, value in self.pending.pop(gid, ()) if self.pending else ():
                rec.properties.setdefault(key, []).append(value)
        reader = self.geometry
        srs, reader.srs_name, reader.record = reader.srs_name, None, rec.index
        self._properties(rec, elem)
        rec.crs = rec.crs or reader.srs_name
        reader.srs_name, reader.record = srs, parent.index if parent else 0

    def _properties(self, rec: _Record, elem: Any) -> None:
        kinds = self._kinds
        for child in elem:
            kind = kinds.get(child.tag) or self._classify(child)
            kind[0](self, rec, child, *kind[1:])

    def _classify(self, elem: Any) -> tuple[Any, ...]:
        """How a property element is read, by its name; remembered per tag.

        The readers are kept as plain functions: bound methods in an attribute would make a
        reference cycle, which nothing frees while ingest pauses the cycle collector.
        """
        tag = elem.tag
        ns, local = _namespace(tag), _local(tag)
        kind: tuple[Any, ...]
        if ns == self.gml_ns:
            special = {"boundedBy": (_ObjectReader._envelope,), "name": (_ObjectReader._name,)}
            kind = special.get(local, (_ObjectReader._property, local))
        elif not ns.startswith(_CITYGML):
            kind = (_ObjectReader._property, _key(elem))
        elif m := _GEOMETRY_PROPERTY.fullmatch(local):
            lod, what = int(m.group(1)), m.group(2)
            if what.startswith("TerrainIntersection"):
                kind = (_ObjectReader._skip,)
            elif what == "ImplicitRepresentation":
                kind = (_ObjectReader._implicit, lod)
            else:
                kind = (_ObjectReader._geometry, lod, _RANK.get(what, 1), what == "FootPrint")
        else:
            kind = self._classify_attribute(ns, local)
        self._kinds[tag] = kind
        return kind

    def _classify_attribute(self, ns: str, local: str) -> tuple[Any, ...]:
        if local == "tin":
            return (_ObjectReader._geometry, None, _RANK["MultiSurface"], False)
        if local in ("boundedBy", "boundary", "opening"):
            return (_ObjectReader._surfaces, local)
        if local == "groupMember":
            return (_ObjectReader._group_member,)
        if local in _CHILDREN:
            return (_ObjectReader._children, local)
        if local == "genericAttribute" or ns.startswith(_CITYGML + "generics/"):
            return (_ObjectReader._generic, local == "genericAttribute")
        if local.startswith("adeOf"):
            return (_ObjectReader._ade,)
        special = {
            "lod": _ObjectReader._lod,
            "address": _ObjectReader._address,
            "appearance": _ObjectReader._appearance,
            "measuredHeight": _ObjectReader._measured_height,
        }
        if local == "height" and ns.startswith(f"{_CITYGML}construction"):
            return (_ObjectReader._height,)
        return (special[local],) if local in special else (_ObjectReader._property, local)

    # -- attributes ---------------------------------------------------------------------------

    def _property(self, rec: _Record, elem: Any, key: str) -> None:
        _put(rec.properties, key, elem)

    def _skip(self, rec: _Record, elem: Any) -> None:
        """Terrain intersection curves: not part of the object's geometry, not carried."""

    def _name(self, rec: _Record, elem: Any) -> None:
        text = _text(elem)
        rec.name = rec.name or text
        _add(rec.properties, "name", text)

    def _envelope(self, rec: _Record, elem: Any) -> None:
        for envelope in elem:
            rec.crs = rec.crs or envelope.get("srsName")

    def _lod(self, rec: _Record, elem: Any) -> None:
        text = _text(elem)
        number = _int64(text) if text else None
        rec.lod = rec.lod if number is None else number
        _add(rec.properties, "lod", text)

    def _measured_height(self, rec: _Record, elem: Any) -> None:
        value = _leaf(elem)
        _add(rec.properties, "measuredHeight", value)
        if isinstance(value, dict) and isinstance(value.get("value"), float):
            rec.height = value["value"]

    def _height(self, rec: _Record, elem: Any) -> None:
        """con:height (3.0): the first con:Height with a value is the height."""
        value = _value(elem)
        _add(rec.properties, "height", value)
        measure = value.get("value") if isinstance(value, dict) else None
        if (
            rec.height is None
            and isinstance(measure, dict)
            and isinstance(measure.get("value"), float)
        ):
            rec.height = measure["value"]

    def _generic(self, rec: _Record, elem: Any, wrapped: bool) -> None:
        """gen:*Attribute (1.0/2.0) or core:genericAttribute around one (`wrapped`, 3.0)."""
        if wrapped and not len(elem):
            return
        name, value = _generic_attribute(elem[0] if wrapped else elem)
        if name is not None:
            _add(rec.properties, name, value)

    def _address(self, rec: _Record, elem: Any) -> None:
        """The first address is `address`; when there are more, all are in `addresses`."""
        address = _address(elem)
        if "address" not in rec.properties:
            rec.properties["address"] = address
        else:
            rec.properties.setdefault("addresses", [rec.properties["address"]]).append(address)

    def _appearance(self, rec: _Record, elem: Any) -> None:
        for appearance in elem:
            rec.properties.setdefault("citygml:appearance", []).extend(_appearance(appearance))

    def _ade(self, rec: _Record, elem: Any) -> None:
        """3.0 ADE hooks (adeOfAbstractBuilding): the ADE's properties are the object's own,
        as a 2.0 ADE writes them."""
        for ade in elem:
            self._properties(rec, ade)

    def _children(self, rec: _Record, elem: Any, key: str) -> None:
        href = elem.get(XLINK_HREF)
        if href is not None:
            _add(rec.properties, key, href)
        for obj in elem:
            self._object(obj, rec)

    def _group_member(self, rec: _Record, elem: Any, role: str | None = None) -> None:
        """A CityObjectGroup's member: an object (a record of its own, the group its parent) or
        an xlink to one. 1.0 / 2.0 give its role in the group as an attribute; 3.0 wraps member
        and role in a grp:Role, which is no object. The group lists its xlinks (and the members
        that have a role) under `groupMember`, as {"member", "role"} where a role is given."""
        role = elem.get("role", role)
        href = elem.get(XLINK_HREF)
        if href is not None:
            _add(rec.properties, "groupMember", href if role is None else _role(href, role))
        for child in elem:
            if _local(child.tag) != "Role":
                self._object(child, rec)
                if role is not None:
                    _add(rec.properties, "groupMember", _role(child.get(self.gml_id), role))
                continue
            name = next((_text(c) for c in child if _local(c.tag) == "role"), None)
            for member in child:
                if _local(member.tag) == "groupMember":
                    self._group_member(rec, member, name)

    # -- geometry -----------------------------------------------------------------------------

    def _read_geometry(self, rec: _Record, elem: Any) -> Parts | None:
        """The geometry of a geometry property (inline, or an xlink:href to a surface)."""
        href = elem.get(XLINK_HREF)
        if href is not None:
            return Parts(polygons=[href.removeprefix("#")])
        try:
            if len(elem) == 1:
                return self.geometry.read(elem[0])
            parts = Parts()
            for geometry in elem:
                read = self.geometry.read(geometry)
                parts.polygons += read.polygons
                parts.lines += read.lines
                parts.points += read.points
            return parts
        except GeometryError as e:
            rec.errors.append(f"{_local(elem.tag)}: {e}")
            return None

    def _geometry(
        self, rec: _Record, elem: Any, lod: int | None, rank: int, footprint: bool
    ) -> None:
        parts = self._read_geometry(rec, elem)
        if parts is not None:
            rec.geometries.append((lod, rank, parts))
            if footprint:
                rec.footprint += parts.polygons

    def _implicit(self, rec: _Record, elem: Any, lod: int) -> None:
        """Implicit geometry (a shared prototype placed by a matrix): its reference point is
        the geometry; the rest (matrix, library object) is kept in properties."""
        for point in elem.iter("{*}referencePoint"):
            parts = self._read_geometry(rec, point)
            if parts is not None:
                rec.geometries.append((lod, _RANK["Point"], parts))
        _add(rec.properties, _local(elem.tag), _value(elem))

    def _surfaces(self, rec: _Record, elem: Any, key: str) -> None:
        """boundedBy / boundary (and openings): thematic surfaces become the object's surfaces;
        the attributes of those that have any are listed under `key`."""
        href = elem.get(XLINK_HREF)
        if href is not None:
            _add(rec.properties, key, href)
        for surface in elem:
            entry = self._thematic(rec, surface)
            if entry:
                rec.properties.setdefault(key, []).append(entry)

    def _thematic(self, rec: _Record, surface: Any) -> dict[str, Any]:
        """Read a thematic surface like an object of its own, then hand its geometry to `rec`.

        Its polygons are registered for `rec`, so xlinks into them resolve within the object.
        """
        sid = surface.get(self.gml_id)
        part = _Record(rec.locator, sid, _local(surface.tag), rec, rec.index)
        self._properties(part, surface)
        refs: list[Ref] = []
        for lod, _, parts in part.geometries:
            rec.surfaces.append((part.feature_class, lod or 0, parts.polygons))
            refs += parts.polygons
            if lod == 0 and part.feature_class == "GroundSurface":
                rec.footprint += parts.polygons
        rec.surfaces += part.surfaces  # its openings
        rec.errors += part.errors
        if sid is not None:
            self.geometry.ids[sid] = (rec.index, refs)
        if not part.properties:
            return {}
        return {"type": part.feature_class, **({"gml:id": sid} if sid else {}), **part.properties}

    def _complete(self, records: list[_Record]) -> None:
        """A top-level object is read: settle CRSs, choose geometries, resolve xlinks."""
        inherited = next((r.crs for r in records if r.crs), None)
        for rec in records:
            rec.crs = rec.crs or (rec.parent.crs if rec.parent else None) or inherited
            if rec.crs is None:
                rec.crs = self._default_crs()
            self._choose(rec)

    def _choose(self, rec: _Record) -> None:
        """geometry_3d, surfaces and lod of the richest LoD; xlinks resolved."""
        own = [
            (rec.lod if lod is None else lod, rank, parts) for lod, rank, parts in rec.geometries
        ]
        best = max(own, key=lambda g: (g[0] or 0, g[1]), default=None)
        surface_lod = max((lod for _, lod, _ in rec.surfaces), default=None)
        lods = [lod for lod, _, _ in own if lod is not None] + (
            [surface_lod] if surface_lod is not None else []
        )
        rec.lod = max(lods) if lods else rec.lod
        chosen = [(t, refs) for t, lod, refs in rec.surfaces if lod == surface_lod]
        missing: list[str] = []
        if best is not None and (surface_lod is None or (best[0] or 0) >= surface_lod):
            rec.polygons = self._resolve(best[2].polygons, missing)
            rec.lines, rec.points = best[2].lines, best[2].points
        else:
            rec.polygons = self._resolve(list(chain.from_iterable(r for _, r in chosen)), missing)
        rec.surface_handles = [(t, self._resolve(refs, missing)) for t, refs in chosen]
        rec.footprint = self._resolve(rec.footprint, missing)
        if missing:
            shown = ", ".join(repr(m) for m in sorted(set(missing))[:3])
            rec.errors.append(
                f"dangling xlink: {shown} not defined in this object or before it in the document "
                "(xlinks are never fetched)"
            )
        rec.geometries, rec.surfaces = [], []

    def _resolve(self, refs: list[Ref], missing: list[str]) -> list[int]:
        handles, lost = self.geometry.resolve(refs)
        missing += lost
        return handles

    def _default_crs(self) -> str | None:
        """The CityModel's CRS, else the only srsName the document declares (read once)."""
        if self._document_crs is None:
            names = _declared_srs_names(self.path)
            self._document_crs = names.pop() if len(names) == 1 else ""
        return self._document_crs or None

    # -- annotations --------------------------------------------------------------------------

    def _annotate(self, target: str | None, key: str, value: Any) -> None:
        """Attach to the object with gml:id `target`, now or when it is read."""
        if not target:
            return
        target = target.removeprefix("#")
        index = self.objects.get(target)
        if index is None:
            self.pending.setdefault(target, []).append((key, value))
        else:
            self.records[index].properties.setdefault(key, []).append(value)

    def _global_appearance(self, appearance: Any) -> None:
        """A CityModel-level appearance: each entry goes to the objects of the current batch
        owning its targets."""
        for entry in _appearance(appearance):
            owners: dict[int, list[str]] = {}
            for target in entry["targets"]:
                hit = self.geometry.ids.get(target)
                index = hit[0] if hit else self.objects.get(target)
                if index is not None:
                    owners.setdefault(index, []).append(target)
            for index, targets in owners.items():
                props = self.records[index].properties
                props.setdefault("citygml:appearance", []).append({**entry, "targets": targets})

    def _version(self, version: Any) -> None:
        info = {"version": version.get(self.gml_id)}
        for child in version:
            if _local(child.tag) == "versionMember":
                self._annotate(child.get(XLINK_HREF), "citygml:versions", info)
            else:
                _put(info, _key(child), child)

    def _transition(self, transition: Any) -> None:
        info: dict[str, Any] = {}
        for child in transition:
            if _local(child.tag) != "transaction":
                _put(info, _key(child), child)
        for transaction in transition.iter("{*}Transaction"):
            kind = next((_text(c) for c in transaction if _local(c.tag) == "type"), None)
            for ref in transaction:
                role = _local(ref.tag)
                if role in ("oldFeature", "newFeature"):
                    value = {**info, "transaction": kind, "role": role}
                    self._annotate(ref.get(XLINK_HREF), "citygml:transitions", value)

    # -- batches ------------------------------------------------------------------------------

    def flush(self) -> Iterator[SourceBatch]:
        """The records read so far, as one SourceBatch per CRS; then start a new batch."""
        records = self.records
        if not records:
            return
        built = self.geometry.build()
        polygons = built.polygons
        _reject_bad_polygons(records, built.reasons)
        repairs = _repairs(records, built) if built.repairs.any() else [None] * len(records)
        geometry_3d = multipolygons(polygons, [r.polygons for r in records])
        for i, rec in enumerate(records):
            if not rec.polygons and (rec.lines or rec.points):
                geometry_3d[i] = _curves_or_points(rec)
        footprints = multipolygons(polygons, [r.footprint for r in records])
        surfaces = _surfaces(polygons, records)
        groups: dict[str | None, list[int]] = {}
        for i, rec in enumerate(records):
            groups.setdefault(rec.crs, []).append(i)
        self.records, self.objects = [], {}
        self.geometry = GeometryReader(self.gml_ns, self.header.srs_dimension)
        for crs, rows in groups.items():
            yield self._batch(
                [records[i] for i in rows], crs, geometry_3d[rows], footprints[rows],
                [surfaces[i] for i in rows], [repairs[i] for i in rows],
            )  # fmt: skip

    def _batch(
        self,
        records: list[_Record],
        crs: str | None,
        geometry_3d: np.ndarray,
        footprints: np.ndarray,
        surfaces: list[Any],
        repairs: list[str | None],
    ) -> SourceBatch:
        return SourceBatch(
            source_ids=[r.source_id for r in records],
            geometries=footprints,
            properties=[r.properties for r in records],
            records=_Elements([r.locator for r in records], self.gml_id),
            crs=crs,
            axis_order=axis_order(crs) if crs else "xy",
            feature_classes=[r.feature_class for r in records],
            columns={
                "name": [r.name for r in records],
                "height_m": [r.height for r in records],
                "lod": [None if r.lod is None else str(r.lod) for r in records],
                "parent_source_id": [r.parent.source_id if r.parent else None for r in records],
                "geometry_3d": geometry_3d,
                "surfaces": surfaces,
            },
            errors=["; ".join(r.errors) if r.errors else None for r in records],
            repairs=repairs,
        )


def _role(member: str | None, role: str) -> dict[str, Any]:
    return {"member": member, "role": role}


def _curves_or_points(rec: _Record) -> Any:
    if rec.lines:
        return shapely.multilinestrings([shapely.linestrings(c) for c in rec.lines])
    return shapely.multipoints(np.concatenate(rec.points))


def _surfaces(polygons: np.ndarray, records: list[_Record]) -> list[Any]:
    """Each record's (surface type, Polygon Z) list, or None; polygons taken in one call."""
    flat = [h for r in records for _, hs in r.surface_handles for h in hs]
    shapes = iter(oriented(polygons, np.asarray(flat, dtype=np.int64)) if flat else ())
    return [
        [(kind, next(shapes)) for kind, hs in r.surface_handles for _ in hs] or None
        for r in records
    ]


def _handles(rec: _Record) -> Iterator[int]:
    """Every polygon handle a record uses (turned over or not)."""
    return chain(rec.polygons, rec.footprint, *(hs for _, hs in rec.surface_handles))


def _repairs(records: list[_Record], built: Built) -> list[str | None]:
    """Each record's repair note, counting each polygon it uses once. Dropped polygons leave
    its geometry; a record left without any geometry is rejected with the note as reason."""
    kept = built.repairs[:, 3] == 0
    notes: list[str | None] = []
    for rec in records:
        used = list({~h if h < 0 else h for h in _handles(rec)})
        note = rings.describe(built.repairs[used].sum(axis=0)) if used else None
        notes.append(note)
        if note is None or kept[used].all():
            continue
        rec.polygons, rec.footprint = _kept(rec.polygons, kept), _kept(rec.footprint, kept)
        rec.surface_handles = [(t, _kept(hs, kept)) for t, hs in rec.surface_handles]
        if next(_handles(rec), None) is None and not (rec.lines or rec.points):
            rec.errors.append(f"no usable geometry left: {note}")
    return notes


def _kept(handles: list[int], kept: np.ndarray) -> list[int]:
    return [h for h in handles if kept[~h if h < 0 else h]]


def _reject_bad_polygons(records: list[_Record], reasons: dict[int, str]) -> None:
    """Records that use a polygon which could not be built get its reason."""
    if not reasons:
        return
    for rec in records:
        why = next(
            (reasons[i] for h in _handles(rec) if (i := ~h if h < 0 else h) in reasons), None
        )
        if why is not None:
            rec.errors.append(why)


_SRS_NAME = re.compile(rb'srsName\s*=\s*["\']([^"\']+)["\']')


def _declared_srs_names(path: Path) -> set[str]:
    """Every srsName value in the file, by a byte scan (only for documents that need it)."""
    names: set[bytes] = set()
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            block = tail + chunk
            names.update(_SRS_NAME.findall(block))
            tail = block[-256:]
    return {n.decode("utf-8", "replace") for n in names}


_CORE_DECLARATION = re.compile(
    rb"""xmlns(?::([\w.-]+))?\s*=\s*["']http://www\.opengis\.net/citygml/[123]\.0["']"""
)


class CityGMLConnector(FileConnector):
    name = "citygml"
    title = "CityGML"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        root = documents.xml_root(head)
        if not root or root[1] != b"CityModel":
            return 0.0
        prefixes = {m.group(1) for m in _CORE_DECLARATION.finditer(root[2])}
        return 0.95 if root[0] in prefixes else 0.0

    def inspect(self) -> SourceInfo:
        header = self._header()
        return SourceInfo(format="CityGML", version=header.version, crs=header.srs_name)

    def read(self) -> Iterator[SourceBatch]:
        header = self._header()
        reader = _ObjectReader(self.path, header, int(self.options.get("batch_size", BATCH_SIZE)))
        tags = [f"{{*}}{m}" for m in _MEMBERS]  # of any version: none is lost unread
        with open(self.path, "rb") as f:
            context = etree.iterparse(
                f, events=("end",), tag=tags, remove_comments=True, remove_pis=True,
                huge_tree=bool(self.options.get("huge_tree")), **_PARSER,
            )  # fmt: skip
            try:
                for _, member in context:
                    model = member.getparent()
                    if model is None or model.getparent() is not None:
                        continue  # not a member of the CityModel itself
                    reader.member(member)
                    while member.getprevious() is not None:
                        del model[0]  # the members live on in their batch's records until written
                    if reader.full:
                        yield from reader.flush()
            except etree.XMLSyntaxError as e:
                raise self._syntax_error(e) from e
            except XlinkBudgetError as e:
                raise XlinkBudgetError(f"{self.path}: {e}") from e
            except RecursionError as e:  # possible with huge_tree, which allows 2048 levels
                raise DataError(f"{self.path}: elements nested too deep to read") from e
        yield from reader.flush()

    def _header(self) -> _Header:
        """Read up to the first member: the version, the CityModel's CRS; refuse DTDs."""
        root = None
        version, envelope, srs_name, dimension = "", "", None, 3
        with open(self.path, "rb") as f:
            try:
                for event, elem in etree.iterparse(f, events=("start", "end"), **_PARSER):
                    if root is None:
                        root = elem
                        self._refuse_dtd(elem)
                        version = self._version(elem)
                        envelope = f"{{{_GML[version]}}}Envelope"
                    parent = elem.getparent()
                    if event == "start" and parent is root and _local(elem.tag) in _MEMBERS:
                        break
                    if event == "end" and elem.tag == envelope and parent.getparent() is root:
                        srs_name = elem.get("srsName")
                        dims = [elem.get("srsDimension")] + [c.get("srsDimension") for c in elem]
                        dimension = srs_dimension(next((d for d in dims if d), "3"))
            except etree.XMLSyntaxError as e:
                raise self._syntax_error(e) from e
            except GeometryError as e:
                raise DataError(f"{self.path}: the CityModel's envelope: {e}") from e
        if root is None:
            raise DataError(f"{self.path}: empty document")
        return _Header(version, srs_name, dimension)

    def _refuse_dtd(self, root: Any) -> None:
        info = root.getroottree().docinfo
        if info.internalDTD is not None or info.system_url or info.public_id:
            raise self._dtd_refused()

    def _dtd_refused(self) -> DataError:
        return DataError(
            f"{self.path}: DTD/entities are not allowed (the document has a DOCTYPE "
            "declaration; entity expansion is a known attack, citypipe does not read it)"
        )

    def _version(self, root: Any) -> str:
        m = _CORE.fullmatch(_namespace(root.tag))
        if _local(root.tag) != "CityModel" or not m:
            raise DataError(f"{self.path}: not CityGML (the root element is {root.tag})")
        return m.group(1)

    def _syntax_error(self, e: etree.XMLSyntaxError) -> DataError:
        with open(self.path, "rb") as f:
            if _DOCTYPE.search(f.read(1 << 16)):  # libxml2 may stop at an entity bomb first
                return self._dtd_refused()
        hint = (
            " (for text nodes over 10 MB pass the option huge_tree: true)"
            if "huge" in str(e)
            else ""
        )
        return DataError(f"{self.path}: not well-formed XML, line {e.lineno}: {e.msg}{hint}")
