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
they bring in is held to a budget (connectors/gml_xlinks.py): an xlink bomb refuses the document.
Rings open or closed only within float noise are closed, and polygons with fewer than three
distinct positions dropped (connectors/rings.py), noted in the record's `repairs`; an object
is rejected for that only when none of its geometry is left. Coordinates that are not finite
numbers, a bad srsDimension, a curve of one position reject their object, with the reason.

CRS: the object's own srsName (its gml:boundedBy envelope, else its first geometry), else its
parent's, else the CityModel envelope's, else the one srsName the document declares anywhere
(Lyon's versioning example declares it on one object only). Nothing else is assumed: without
one, or with a locally defined one (#local-CRS-1), the pipeline refuses the source.

Streaming: iterparse hands over one CityModel member at a time; its elements are kept only
until their batch is written (they are the rejects' text, built only when asked for), and
leave the document once the caller has moved past that batch (`_release`); once the last
member is walked, what the members hold is freed while in the cache (`gml_freeing.hollow`),
their elements left empty for the records that locate by them. DTDs and entities
are refused. A large file is walked in a second process while this one builds, harmonises and
writes the batch before (citygml_process), with the same batches; where its members stand
alone (no xlink or annotation reaches out of one), by ranges of members, one process each
(citygml_ranges).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, BinaryIO, TypeVar

from lxml import etree

from citypipe.connectors import documents, gml_freeing
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.citygml_header import (
    GML,
    Header,
    WrapperError,
    model_header,
    model_members,
    own_members,
    parsed_model,
    read_header,
    syntax_error,
)
from citypipe.connectors.citygml_objects import ObjectReader
from citypipe.connectors.citygml_process import SPLIT_BYTES, can_split, read_in_child
from citypipe.connectors.citygml_ranges import read_in_ranges
from citypipe.connectors.citygml_records import Document
from citypipe.connectors.gml_xlinks import XlinkBudgetError
from citypipe.geo.errors import DataError

__all__ = ["CityGMLConnector"]

T = TypeVar("T")

BATCH_SIZE = 2000
"""Records per batch (a top-level object and its parts are never split)."""

_DECLARATION = re.compile(
    rb"""xmlns(?::([\w.-]+))?\s*=\s*["']http://www\.opengis\.net/citygml/([123]\.0["'])?"""
)
"""A prefix (group 1; none: the default namespace) bound to CityGML's core (group 2 set) or
to one of its modules (`building/2.0`)."""
_CITY_MODEL = re.compile(rb"<(?:([\w.-]+):)?CityModel[\s>/]")
_FIRST_MEMBER = re.compile(
    rb"<(?:[\w.-]+:)?(?:member|featureMember)\s*>\s*<(?:([\w.-]+):)?[\w.-]+[\s>/]"
)


def _wrapped_model(text: bytes) -> bytes | None:
    """The prefix (b"": none) of the first CityModel element below the root of the XML
    `text` (from its root on: `documents.xml_root`), None where there is none in it: a
    CityModel that a WFS answer's wfs:member or an export's envelope wraps."""
    m = _CITY_MODEL.search(text, 1)
    return None if m is None else m.group(1) or b""


def _city_object_first(text: bytes, bound: set[bytes]) -> bool:
    """Whether the first member of the feature collection `text` holds an object of a CityGML
    module (its prefix among those `bound` to one in the text)."""
    m = _FIRST_MEMBER.search(text)
    return m is not None and (m.group(1) or b"") in bound


class CityGMLConnector(FileConnector):
    name = "citygml"
    known_options = frozenset({"split_bytes", "batch_size", "huge_tree"})
    title = "CityGML"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        root = documents.xml_root(head)
        if not root:
            return 0.0
        declared = [(m.group(1) or b"", m.group(2)) for m in _DECLARATION.finditer(root[2])]
        core = {prefix for prefix, is_core in declared if is_core}
        if root[1] == b"CityModel":
            return 0.95 if (root[0] or b"") in core else 0.0
        # a wrapped CityModel (a WFS answer's member), or a WFS answer's city objects: a WFS
        # answer's connector reads the one as a feature of no geometry, the other without the
        # surfaces their solids refer to, so this one is surer
        wrapped = _wrapped_model(root[2])
        if wrapped is not None:
            return 0.95 if wrapped in core else 0.0
        if root[1] != b"FeatureCollection":
            return 0.0
        return 0.95 if _city_object_first(root[2], {prefix for prefix, _ in declared}) else 0.0

    _parsed: Any = None
    """The document parsed whole for its header (`parsed_model`), until the read takes it."""

    @cached_property
    def header(self) -> Header:
        """What the document says before its first member: read once for inspect and read;
        from the whole document where the read parses it whole in this process, which it
        then reads (`_members`)."""
        if self._splits():
            return read_header(self.path)
        try:
            with self.open_input() as f:
                parsed = parsed_model(
                    f, huge_tree=bool(self.options.get("huge_tree")), blanks=False
                )
        except etree.XMLSyntaxError as e:
            raise syntax_error(self.path, e) from e
        if parsed is None:
            return read_header(self.path)
        self._parsed = parsed
        return model_header(self.path, parsed)

    def inspect(self) -> SourceInfo:
        header = self.header
        return SourceInfo(format="CityGML", version=header.version, crs=header.srs_name)

    def read(self) -> Iterator[SourceBatch]:
        """The batches, read for a large file where a second core helps by ranges of members,
        one process each but for this one's first on two cores (citygml_ranges), or where its
        members do not stand alone in a second process (citygml_process); the option
        `split_bytes` sets the size and forces it (0: never)."""
        # a wrapped CityModel is read in this process: the ranges are the root CityModel's
        if not self.header.depth and self._splits():
            gml_id = f"{{{GML[self.header.version]}}}id"
            released = lambda: self._released  # the walk's count, in the process walking
            return read_in_ranges(
                self.path, self._read, released, gml_id,
                lambda: read_in_child(self.path, self._read, released, gml_id),
            )  # fmt: skip
        return self._read(ObjectReader.flush)

    def _splits(self) -> bool:
        """Whether the file is read by several processes: where it has `split_bytes` or more
        (0: never), else `SPLIT_BYTES` where a second process may help (`can_split`, asked of
        a file that large alone: it reads the load, 17 us a call)."""
        option = self.options.get("split_bytes")  # a string where given on a command line
        size = SPLIT_BYTES if option is None else int(option)
        return (
            bool(size) and self.path.stat().st_size >= size and (option is not None or can_split())
        )

    def _read(
        self,
        flush: Callable[[ObjectReader], Iterator[T]],
        source: BinaryIO | None = None,
    ) -> Iterator[T]:
        """What `flush` makes of each batch the reader completes, in document order; `source`
        reads a document other than the file (a range of its members: citygml_ranges).
        Parsed without the whitespace between elements (fewer nodes to make, walk and free):
        the records' XML is made from the file read again (`Document`)."""
        batch_size = int(self.options.get("batch_size", BATCH_SIZE))
        self._released = 0
        document = None if source is not None else Document(self.open_input, self.header.depth)
        reader = ObjectReader(self.path, self.header, batch_size, document)
        stale = 0  # the CityModel's first children: members of written batches
        last = model = None  # the CityModel they are of (a wrapper may hold several)
        try:
            for model, member in self._members(source):
                reader.member(member)
                if reader.full:
                    yield from flush(reader)
                    self._released += stale
                    stale = _release(model, member, stale if model is last else 0)
                    last = model
        except etree.XMLSyntaxError as e:
            raise syntax_error(self.path, e) from e
        except XlinkBudgetError as e:
            raise XlinkBudgetError(f"{self.path}: {e}") from e
        except WrapperError as e:
            raise DataError(f"{self.path}: {e}") from e
        except RecursionError as e:  # possible with huge_tree, which allows 2048 levels
            raise DataError(f"{self.path}: elements nested too deep to read") from e
        if model is not None:  # every member walked: what they hold freed while in the cache
            gml_freeing.hollow(model, 0)
        yield from flush(reader)

    def _members(self, source: BinaryIO | None) -> Iterator[tuple[Any, Any]]:
        """`model_members` of `source`, else of the file: the members of the document the
        header was read from where it parsed it whole (once: a second read parses it again)."""
        parsed, self._parsed = self._parsed, None
        if parsed is not None and source is None:
            yield from own_members(parsed)
            return
        with self.open_input() if source is None else source as f:
            yield from model_members(
                f, huge_tree=bool(self.options.get("huge_tree")), blanks=False,
                depth=self.header.depth,
            )  # fmt: skip


def _release(model: Any, member: Any, stale: int) -> int:
    """Detach the members of the batch before the one just handed over (written, and no longer
    held by the caller, who holds the last one only), and count the last one's: it goes next.

    Members are detached a batch late, and never one by one: lxml frees a subtree nothing in
    Python points to at the cost of a walk, but one still referenced (by a batch's records)
    it moves to a document of its own, reconciling every namespace of every element, which
    cost as much as parsing it (PLATEAU: 14 ms of a parse of 5 ms)."""
    handed = model.index(member) + 1
    gml_freeing.remove(model, stale)  # freed by a thread where they can be
    return handed - stale
