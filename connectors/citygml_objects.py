"""CityGML objects read into records: which elements are objects, attributes and geometry.

A CityModel member's object and every CityObject nested in it through a part-of property
(`_CHILDREN`) become records, each holding its parent; thematic surfaces (boundedBy, boundary)
and openings become their object's `surfaces`. Each property element is read by a reader
chosen once per tag: attributes (citygml_attributes), nested objects, geometry (gml). When a
top-level object is read, its records' CRS is settled, the richest LoD chosen and the xlinks
resolved; `flush` hands the batch over (citygml_records).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from citypipe.connectors import citygml_attributes as attributes
from citypipe.connectors import gml
from citypipe.connectors.base import SourceBatch
from citypipe.connectors.citygml_annotations import Annotations
from citypipe.connectors.citygml_choice import choose
from citypipe.connectors.citygml_header import GML, MEMBERS, MODULE, Header, declared_srs_names
from citypipe.connectors.citygml_records import Document, Record, Reparsed, batches
from citypipe.connectors.citygml_values import (
    CITYGML,
    add,
    key_of,
    listed,
    namespace,
    text_of,
    value_of,
)
from citypipe.connectors.gml import (
    GML_NAMESPACES,
    GeometryError,
    GeometryReader,
    Parts,
    local_name,
)
from citypipe.connectors.gml_xlinks import XLINK_HREF, Ref

__all__ = ["ObjectReader"]


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

_Kind = tuple[bool, Callable[..., None], tuple[Any, ...]]
"""How a property is read: (whether by an attribute reader, the reader, its arguments)."""
_GML_PROPERTIES = {"boundedBy": attributes.envelope, "name": attributes.name}
"""The GML properties of an object with readers of their own."""
_KINDS: dict[str, dict[str, _Kind]] = {}
"""Each property tag's kind by the document's GML: classified once a process (`_classify`)."""


class ObjectReader:
    """Turns CityModel members into records, and records into SourceBatches."""

    def __init__(
        self, path: Path, header: Header, batch_size: int, document: Document | None = None
    ) -> None:
        self.path = path
        self.document = document
        """The document parsed again, where a reject asks for its XML (`flush`)."""
        self.header = header
        self.batch_size = batch_size
        self.gml_ns = GML[header.version]
        self.gml_id = f"{{{self.gml_ns}}}id"
        # gml:id in the other GML: the source_id of an object of another CityGML version
        self._foreign_id = next(f"{{{ns}}}id" for ns in GML_NAMESPACES if ns != self.gml_ns)
        self.records: list[Record] = []
        self.objects: dict[str, int] = {}
        self.located: dict[Any, tuple[int, ...]] = {}
        """Where each member the batch's records hold is: its number among the CityModel
        members read, then its place in its nested CityModel, if any (`Reparsed`)."""
        self._members = 0
        self.annotations = Annotations(self.gml_id)
        self.geometry = GeometryReader(self.gml_ns, header.srs_dimension)
        self._kinds = dict(_KINDS.get(self.gml_ns, ()))
        self._document_crs: str | None = header.srs_name
        self._member: Any = None
        self._seen_tags: dict[str, int] = {}

    # -- members ------------------------------------------------------------------------------

    def member(self, member: Any) -> None:
        """Read the document's next CityModel member: objects become records, the rest
        annotates them."""
        self.located[member] = (self._members,)
        self._members += 1
        self._read_member(member)

    def _read_member(self, member: Any) -> None:
        kind = local_name(member.tag)
        self._member, self._seen_tags = member, {}
        for obj in member:
            if self.annotations.read(kind, obj, self.records, self.objects, self.geometry.ids):
                continue
            if local_name(obj.tag) == "CityModel":
                self._nested_model(member, obj)
                continue
            first = len(self.records)
            self._object(obj, None)
            unread = self._unread(obj)
            if unread:  # the only reason: what its geometry would say is beside the point
                for rec in self.records[first:]:
                    rec.errors = [unread]
            self._complete(self.records[first:])

    def _nested_model(self, member: Any, model: Any) -> None:
        """A CityModel held as a member (no CityObject, but written so): its members are read
        as the document's are, not kept as one row of no geometry."""
        seen = self._seen_tags
        at = (*self.located[member], member.index(model))
        for i, inner in enumerate(model):
            if local_name(inner.tag) in MEMBERS:
                self.located[inner] = (*at, i)
                self._read_member(inner)
        self._member, self._seen_tags = member, seen

    def _unread(self, obj: Any) -> str | None:
        """Why an object of another CityGML version than the document's is not read."""
        return _foreign(obj.tag, self.header.version)

    @property
    def full(self) -> bool:
        return len(self.records) >= self.batch_size

    def _object(self, elem: Any, parent: Record | None) -> None:
        compiled = gml.compiled
        if compiled is not None and compiled.read_object(self, elem, parent):
            return
        gid, tag = elem.get(self.gml_id), elem.tag
        nth = self._seen_tags[tag] = self._seen_tags.get(tag, -1) + 1
        locator = (self._member, tag, nth if gid is None else gid)
        sid = gid if gid is not None else elem.get(self._foreign_id)
        rec = Record(locator, sid, local_name(tag), parent, len(self.records))
        self.records.append(rec)
        if gid is not None:
            self.objects[gid] = rec.index
            for key, value in self.annotations.claim(gid):
                rec.properties.setdefault(key, []).append(value)
        reader = self.geometry
        srs, reader.srs_name, reader.record = reader.srs_name, None, rec.index
        self._properties(rec, elem)
        rec.crs = rec.crs or reader.srs_name
        reader.srs_name, reader.record = srs, parent.index if parent else 0

    # -- properties ---------------------------------------------------------------------------

    def _properties(self, rec: Record, elem: Any) -> None:
        compiled = gml.compiled
        if compiled is not None and compiled.properties(self, rec, elem):
            return
        kinds = self._kinds
        for child in elem:
            on_record, read, args = kinds.get(child.tag) or self._classify(child)
            if on_record:
                read(rec, child, *args)
            else:
                read(self, rec, child, *args)

    def _classify(self, elem: Any) -> _Kind:
        """How a property element is read, by its name; remembered per tag, for the process
        but where the document's prefix names it (`_KINDS`).

        The readers are kept as plain functions: bound methods in an attribute would make a
        reference cycle, which nothing frees while ingest pauses the cycle collector.
        """
        tag = elem.tag
        ns, local = namespace(tag), local_name(tag)
        kind: _Kind
        if ns != self.gml_ns and not ns.startswith(CITYGML):  # named by its prefix
            kind = self._kinds[tag] = _plain(key_of(elem))
            return kind
        if ns == self.gml_ns:
            special = _GML_PROPERTIES.get(local)
            kind = _plain(local) if special is None else (True, special, ())
        elif m := _GEOMETRY_PROPERTY.fullmatch(local):
            kind = self._classify_geometry(int(m.group(1)), m.group(2))
        else:
            kind = self._classify_attribute(ns, local)
        self._kinds[tag] = _KINDS.setdefault(self.gml_ns, {})[tag] = kind
        return kind

    @staticmethod
    def _classify_geometry(lod: int, what: str) -> _Kind:
        """lod{n}{what}: a geometry of LoD `lod`."""
        if what.startswith("TerrainIntersection"):
            return (True, attributes.skip, ())
        if what == "ImplicitRepresentation":
            return (False, ObjectReader._implicit, (lod,))
        return (False, ObjectReader._geometry, (lod, _RANK.get(what, 1), what == "FootPrint"))

    @staticmethod
    def _classify_attribute(ns: str, local: str) -> _Kind:
        """A CityGML property that is not lod{n}{geometry}."""
        if local == "tin":
            return (False, ObjectReader._geometry, (None, _RANK["MultiSurface"], False))
        if local in ("boundedBy", "boundary", "opening"):
            return (False, ObjectReader._surfaces, (local,))
        if local == "groupMember":
            return (False, ObjectReader._group_member, ())
        if local in _CHILDREN:
            return (False, ObjectReader._children, (local,))
        if local.startswith("adeOf") and not attributes.is_generic(ns, local):
            return (False, ObjectReader._ade, ())
        return (True, *attributes.reader_for(ns, local))

    # -- nested objects -----------------------------------------------------------------------

    def _ade(self, rec: Record, elem: Any) -> None:
        """3.0 ADE hooks (adeOfAbstractBuilding): the ADE's properties are the object's own,
        as a 2.0 ADE writes them."""
        for ade in elem:
            self._properties(rec, ade)

    def _children(self, rec: Record, elem: Any, key: str) -> None:
        href = elem.get(XLINK_HREF)
        if href is not None:
            add(rec.properties, key, href)
        for obj in elem:
            self._object(obj, rec)

    def _group_member(self, rec: Record, elem: Any, role: str | None = None) -> None:
        """A CityObjectGroup's member: an object (a record of its own, the group its parent) or
        an xlink to one. 1.0 / 2.0 give its role in the group as an attribute; 3.0 wraps member
        and role in a grp:Role, which is no object. The group lists its xlinks (and the members
        that have a role) under `groupMember`, as {"member", "role"} where a role is given."""
        role = elem.get("role", role)
        href = elem.get(XLINK_HREF)
        if href is not None:
            add(rec.properties, "groupMember", href if role is None else _role(href, role))
        for child in elem:
            if local_name(child.tag) != "Role":
                self._object(child, rec)
                if role is not None:
                    add(rec.properties, "groupMember", _role(child.get(self.gml_id), role))
                continue
            name = next((text_of(c) for c in child if local_name(c.tag) == "role"), None)
            for member in child:
                if local_name(member.tag) == "groupMember":
                    self._group_member(rec, member, name)

    # -- geometry -----------------------------------------------------------------------------

    def _read_geometry(self, rec: Record, elem: Any) -> Parts | None:
        """The geometry of a geometry property (inline, or an xlink:href to a surface)."""
        href = elem.get(XLINK_HREF) if elem.keys() else None
        if href is not None:
            return Parts([href.removeprefix("#")])
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
            rec.errors.append(f"{local_name(elem.tag)}: {e}")
            return None

    def _geometry(
        self, rec: Record, elem: Any, lod: int | None, rank: int, footprint: bool
    ) -> None:
        parts = self._read_geometry(rec, elem)
        if parts is not None:
            rec.geometries.append((lod, rank, parts))
            if footprint:
                rec.footprint += parts.polygons

    def _implicit(self, rec: Record, elem: Any, lod: int) -> None:
        """Implicit geometry (a shared prototype placed by a matrix): its reference point is
        the geometry; the rest (matrix, library object) is kept in properties."""
        for point in elem.iter("{*}referencePoint"):
            parts = self._read_geometry(rec, point)
            if parts is not None:
                rec.geometries.append((lod, _RANK["Point"], parts))
        add(rec.properties, local_name(elem.tag), value_of(elem))

    def _surfaces(self, rec: Record, elem: Any, key: str) -> None:
        """boundedBy / boundary (and openings): thematic surfaces become the object's surfaces;
        the attributes of those that have any are listed under `key`."""
        href = elem.get(XLINK_HREF) if elem.keys() else None
        if href is not None:
            add(rec.properties, key, href)
        for surface in elem:
            entry = self._thematic(rec, surface)
            if entry:
                listed(rec.properties, key).append(entry)

    def _thematic(self, rec: Record, surface: Any) -> dict[str, Any]:
        """Read a thematic surface like an object of its own, then hand its geometry to `rec`.

        Its polygons are registered for `rec`, so xlinks into them resolve within the object.
        """
        sid = surface.get(self.gml_id)
        part = Record(rec.locator, sid, local_name(surface.tag), rec, rec.index)
        self._properties(part, surface)
        refs: list[Ref] = []
        for lod, _, parts in part.geometries:
            rec.surfaces.append((part.feature_class, lod or 0, parts.polygons))
            refs += parts.polygons
            if lod == 0 and part.feature_class == "GroundSurface":
                rec.footprint += parts.polygons
        if part.surfaces:  # its openings
            rec.surfaces += part.surfaces
        if part.errors:
            rec.errors += part.errors
        if sid is not None:
            self.geometry.ids[sid] = (rec.index, refs)
        if not part.properties:
            return {}
        return {"type": part.feature_class, **({"gml:id": sid} if sid else {}), **part.properties}

    # -- a top-level object complete ----------------------------------------------------------

    def _complete(self, records: list[Record]) -> None:
        """A top-level object is read: settle CRSs, choose geometries, resolve xlinks."""
        inherited = next((r.crs for r in records if r.crs), None)
        for rec in records:
            rec.crs = rec.crs or (rec.parent.crs if rec.parent else None) or inherited
            if rec.crs is None:
                rec.crs = self._default_crs()
            choose(rec, self.geometry)

    def _default_crs(self) -> str | None:
        """The CityModel's CRS, else the only srsName the document declares (read once)."""
        if self._document_crs is None:
            names = declared_srs_names(self.path)
            self._document_crs = names.pop() if len(names) == 1 else ""
        return self._document_crs or None

    # -- batches ------------------------------------------------------------------------------

    def flush(self) -> Iterator[SourceBatch]:
        """The records read so far, as one SourceBatch per CRS (their XML from `document`);
        then start a new batch."""
        located = self.located
        taken = self.take()
        if taken is not None:
            assert self.document is not None, "a reader that flushes reads a document again"
            elements = partial(Reparsed, self.document, located, gml_id=self.gml_id)
            yield from batches(taken[0], taken[1].build(), elements)

    def take(self) -> tuple[list[Record], GeometryReader] | None:
        """The records read so far and the geometry reader holding their polygons (None: no
        records); the next batch starts."""
        records, geometry = self.records, self.geometry
        if not records:
            return None
        self.records, self.objects, self.located = [], {}, {}
        self.geometry = GeometryReader(self.gml_ns, self.header.srs_dimension)
        return records, geometry


@lru_cache(maxsize=256)
def _foreign(tag: str, version: str) -> str | None:
    """Why an object `tag` of another CityGML version than the document's (`version`) is not
    read: one whose GML differs (3.0 in a 1.0 / 2.0 document, or the reverse), 1.0 and 2.0
    read alike; None for any other. Asked once a tag (a regular expression per object was 2 %
    of the NRW tile's walk)."""
    m = MODULE.fullmatch(namespace(tag))
    if m is None or GML[m.group(1)] == GML[version]:
        return None
    return (
        f"a CityGML {m.group(1)} object ({namespace(tag)}) in a CityGML {version} document: "
        f"its GML {'3.2' if m.group(1) == '3.0' else '3.1.1'} geometry is not read"
    )


def _plain(key: str) -> _Kind:
    """A property read as plain data under `key`."""
    return (True, attributes.property_, (key,))


def _role(member: str | None, role: str) -> dict[str, Any]:
    return {"member": member, "role": role}
