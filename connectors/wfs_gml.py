"""WFS GetFeature responses in GML (WFS 1.0 / GML 2, WFS 1.1 / GML 3.1.1, WFS 2.0 / GML 3.2):
one reader for saved files and for the pages a WFS harvest fetches.

A FeatureCollection's members are gml:featureMember, gml:featureMembers and wfs:member
(and GDAL's ogr:featureMember), also those of the collections WFS 2.0 nests in a member or
in wfs:additionalObjects, and of join tuples; each feature is a record (wfs_gml_features).
The response is streamed: members are read as they end and dropped once their batch is handed
over.

Axis order (crs.axis_order, the one rule CityGML follows too): URN and OGC URI srsNames follow
the CRS. The short EPSG:n follows the response's convention: WFS 1.0 / GML 2 write x/y
(longitude first, GeoServer's "WFS 1.0.0 provides geographic coordinates in east/north"),
WFS 1.1 and 2.0 the CRS's own order whatever the spelling (MapServer writes EPSG:4326 latitude
first under the short label in WFS 1.1.0; the OGC's reading since the WFS 1.1.1 corrigendum,
which GeoServer's WFS 1.1.0 does not follow for the short form: `--axis-order xy` for those).
The convention is the caller's WFS version where it knows it, else the response's: GML 3.2, or
GML 3 syntax (gml:id, posList, exterior), a WFS 1.1 count or schema location make it 1.1 / 2.0;
otherwise it is GML 2.

Encoding: a byte-order mark wins over the XML declaration (La Rioja's files are UTF-8 with a
BOM and declare ISO-8859-1). XML is parsed with the project's safe settings (xml_safety).
"""

from __future__ import annotations

import codecs
import io
import mmap
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

from lxml import etree

from citypipe.connectors import documents
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.documents import EXCEPTION_REPORTS
from citypipe.connectors.gml import GML_NAMESPACES, local_name
from citypipe.connectors.gml_xlinks import XlinkBudgetError
from citypipe.connectors.service_documents import exception_text
from citypipe.connectors.wfs_gml_features import FeatureReader
from citypipe.connectors.xml_safety import PARSER, not_well_formed, refuse_dtd
from citypipe.geo.errors import DataError, NotFeatureData
from citypipe.geo.types import AxisOrder

__all__ = [
    "BATCH_SIZE",
    "Counts",
    "Readable",
    "Response",
    "WFSGMLConnector",
    "collection_counts",
    "read_feature_collection",
    "read_page",
    "read_response",
    "read_stream",
    "stream_head",
]

BATCH_SIZE = 5000
"""Features per batch."""
Source = bytes | IO[bytes] | Path
"""A response body: its bytes, a binary file object (read from where it stands), or a file."""

_WFS2 = "http://www.opengis.net/wfs/2.0"
_COLLECTIONS = frozenset({"FeatureCollection", "SimpleFeatureCollection"})
_READ_THROUGH = _COLLECTIONS | {"Tuple"}
"""Member contents that are not features: their own members are."""
_ENDS = tuple(f"}}{name}" for name in _READ_THROUGH)
"""The same, as the ends of tags with a namespace."""
_OGR = "http://ogr.maptools.org/"
"""GDAL's GML writer: its GML 3 and 3.2 collections hold ogr:featureMember elements."""
_MEMBERS = [f"{{{ns}}}{m}" for ns in GML_NAMESPACES for m in ("featureMember", "featureMembers")]
_MEMBERS += [f"{{{_WFS2}}}member", f"{{{_OGR}}}featureMember"]
_NOT_MEMBERS = {"boundedBy", "additionalObjects", "truncatedResponse"}
"""Children of a collection that hold no features of their own."""
_HEAD = 1 << 16
_NOT_COUNTED = re.compile(rb"<([\w.-]+:)?(Tuple|additionalObjects)[\s/>]")
"""What numberReturned does not count one feature each (ISO 19142): a join's tuple counts once
for its features, wfs:additionalObjects not at all."""
_GML_NS_DECLARED = re.compile(rb"""=\s*["']http://www\.opengis\.net/gml(/3\.2)?["']""")
_GML3_SCHEMA = re.compile(r"wfs/(1\.1|2\.0)|gml/3|VERSION=(1\.1|2\.0)", re.IGNORECASE)
_GML2_SCHEMA = re.compile(r"wfs/1\.0|gml/2|VERSION=1\.0", re.IGNORECASE)
_SINGLE_BYTE_DECLARED = re.compile(
    rb"""<\?xml[^>]*encoding\s*=\s*["'](iso-?8859|latin|windows-125|cp125)""", re.IGNORECASE
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16le"),
    (codecs.BOM_UTF16_BE, "utf-16be"),  # libxml2 takes "utf-16" as little-endian
)


@dataclass(frozen=True)
class Counts:
    """The counts a response declares on its root element; None where it declares none."""

    matched: int | None
    """numberMatched (WFS 2.0): the features the query matches, on every page."""
    returned: int | None
    """numberReturned (WFS 2.0) or numberOfFeatures (WFS 1.1): the features in this response."""


@dataclass(frozen=True)
class Response:
    """What a response says before its first member."""

    gml: str
    """The GML version: "2", "3.1.1" or "3.2"."""
    axis_order: AxisOrder
    """The convention for a short EPSG:n srsName."""
    counts: Counts
    crs: str | None
    """The srsName of the collection's envelope."""
    feature_type: str | None
    """The first feature's element name (prefix:name as written), None without features."""


def read_response(source: Source, *, wfs_version: str | None = None, name: str = "") -> Response:
    """What the response `source` says before its first member (see the module's docstring
    for how the convention is found); `wfs_version` is the request's ("1.0.0", "1.1.0",
    "2.0.0"), where the caller knows it."""
    label = name or "response"
    with _open(source) as (stream, head, encoding):
        events = etree.iterparse(stream, events=("start", "end"), encoding=encoding, **PARSER)
        root, envelope, first = _header(label, events, head)
    if root is None:
        raise DataError(f"{label}: empty document")
    gml, order = _convention(root, head, wfs_version)
    return Response(gml, order, _counts(root), envelope, first)


def _header(label: str, events: Any, head: bytes) -> tuple[Any, str | None, str | None]:
    """The root element, the srsName of the collection's envelope and the first feature's
    name, read up to the first feature."""
    root, envelope = None, None
    try:
        for event, elem in events:
            if root is None:
                root = _root(label, elem)
            parent = elem.getparent()
            if parent is None and event == "end" and local_name(elem.tag) in EXCEPTION_REPORTS:
                raise NotFeatureData(
                    f"{label}: an OGC exception report (the service answered with an error), "
                    f"not feature data: {exception_text(root)}"
                )
            in_member = parent is not None and parent.tag in _MEMBERS
            if event == "start" and in_member and local_name(elem.tag) not in _READ_THROUGH:
                return (
                    root,
                    envelope,
                    f"{elem.prefix}:{local_name(elem.tag)}"
                    if elem.prefix
                    else local_name(elem.tag),
                )
            envelope_end = event == "end" and local_name(elem.tag) == "Envelope"
            if envelope_end and parent is not None and parent.getparent() is root:
                envelope = elem.get("srsName")
    except etree.XMLSyntaxError as e:
        if root is None:
            raise not_well_formed(label, e, head) from e
    return root, envelope, None


def collection_counts(source: Source) -> Counts:
    """numberMatched and numberReturned / numberOfFeatures of the response `source`."""
    return read_response(source).counts


def read_feature_collection(
    source: Source,
    *,
    crs: str | None = None,
    axis_order: AxisOrder | None = None,
    wfs_version: str | None = None,
    batch_size: int = BATCH_SIZE,
    name: str = "",
    huge_tree: bool = False,
) -> Iterator[SourceBatch]:
    """The features of the GetFeature response `source`, in batches of `batch_size`.

    `crs`: the CRS of features whose response names none (the one the request asked for).
    `axis_order`: the order of every coordinate, whatever the srsName (`--axis-order`).
    `wfs_version`: the request's version, which says how a short EPSG:n is read.
    `name`: the file or URL, for messages. `huge_tree`: allow text nodes over 10 MB (a
    polygon of a million positions). A file object is read whole, from where it stands
    (a response page is bounded); a file is streamed."""
    if not isinstance(source, (bytes, Path)):
        source = source.read()
    label = name or (str(source) if isinstance(source, Path) else "response")
    response = read_response(source, wfs_version=wfs_version, name=label)
    yield from _read(source, response, crs, axis_order, batch_size, label, huge_tree)


def read_page(
    content: bytes, *, crs: str | None, wfs_version: str, name: str
) -> tuple[Counts, list[SourceBatch]]:
    """A harvest's GetFeature page: its counts and its features, in one batch per CRS."""
    response = read_response(content, wfs_version=wfs_version, name=name)
    batches = _read(content, response, crs, None, 1 << 62, name, False)
    return response.counts, list(batches)


class Readable(Protocol):
    """What a streamed answer needs: bytes read from where it stands, b"" at its end."""

    def read(self, size: int = -1, /) -> bytes: ...


def read_stream(
    stream: Readable, *, crs: str | None, wfs_version: str, name: str, batch_size: int
) -> tuple[Response, Iterator[SourceBatch]]:
    """A GetFeature answer read as it arrives (`stream`: a file object read to its end, as an
    HTTP body): what it says before its first member, from its first 64 KiB, and its features
    in batches of `batch_size`, each parsed from the stream when it is asked for, so that a
    response of any size takes the memory of a batch."""
    response, members = stream_head(stream, wfs_version=wfs_version, name=name)
    return response, members(crs, batch_size)


def stream_head(
    stream: Readable, *, wfs_version: str, name: str
) -> tuple[Response, Callable[[str | None, int], Iterator[SourceBatch]]]:
    """`read_stream` in two steps: what the answer says before its first member, and the
    reader of its features given the CRS of coordinates it does not declare (for a caller that
    looks at the first before it knows the second)."""
    head = b""
    while len(head) < _HEAD and (chunk := stream.read(_HEAD - len(head))):
        head += chunk
    response = read_response(head, wfs_version=wfs_version, name=name)
    joined = _Joined(head, stream)
    return response, lambda crs, size: _read(joined, response, crs, None, size, name, False)


class _Joined:
    """A stream whose head was read already: the head, then the rest."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self.head, self._rest, self._given = head, rest, False

    def read(self, size: int = -1) -> bytes:
        if not self._given:
            self._given = True
            return self.head
        return self._rest.read(size)


def _read(
    source: bytes | Path | _Joined,
    response: Response,
    crs: str | None,
    axis_order: AxisOrder | None,
    batch_size: int,
    label: str,
    huge_tree: bool,
) -> Iterator[SourceBatch]:
    gml_ns = GML_NAMESPACES[1] if response.gml == "3.2" else GML_NAMESPACES[0]
    reader = FeatureReader(gml_ns, response.axis_order, response.crs or crs)
    with _open(source) as (stream, head, encoding):
        context = etree.iterparse(
            stream, events=("end",), tag=_MEMBERS, encoding=encoding,
            remove_comments=True, remove_pis=True, huge_tree=huge_tree, **PARSER,
        )  # fmt: skip
        yield from _members(label, context, reader, head, batch_size, axis_order)


def _members(
    label: str,
    context: Any,
    reader: FeatureReader,
    head: bytes,
    batch_size: int,
    axis_order: AxisOrder | None,
) -> Iterator[SourceBatch]:
    members = 0
    try:
        for _, member in context:
            members += 1
            for child in member:
                tag = child.tag
                if isinstance(tag, str) and not tag.endswith(_ENDS) and tag not in _READ_THROUGH:
                    reader.feature(child)
            parent = member.getparent()
            while member.getprevious() is not None:
                del parent[0]  # the features live on in their batch's records until read
            if len(reader) >= batch_size:
                yield from _forced(reader.flush(), axis_order)
        if not members:
            _no_members(label, context.root)
        yield from _forced(reader.flush(), axis_order)
    except etree.XMLSyntaxError as e:
        raise not_well_formed(label, e, head) from e
    except XlinkBudgetError as e:
        raise XlinkBudgetError(f"{label}: {e}") from e
    except RecursionError as e:
        raise DataError(f"{label}: elements nested too deep to read") from e


def _no_members(label: str, root: Any) -> None:
    """Refuses a collection whose children hold features in elements no reader knows, which
    would land as no record at all; a collection with no children but its envelope is empty."""
    others = sorted({c.tag.split("}")[-1] for c in root if isinstance(c.tag, str)} - _NOT_MEMBERS)
    if others:
        raise DataError(
            f"{label}: no feature member citypipe knows (gml:featureMember, gml:featureMembers, "
            f"wfs:member, ogr:featureMember) in the collection, whose children are "
            f"{', '.join(others[:5])}"
        )


def _forced(batches: Iterator[SourceBatch], order: AxisOrder | None) -> Iterator[SourceBatch]:
    for batch in batches:
        if order is not None:
            batch.axis_order = order
        yield batch


@contextmanager
def _open(source: Source | _Joined) -> Iterator[tuple[IO[bytes], bytes, str | None]]:
    """A stream of the response from its start, its head, and the encoding its BOM names."""
    stream: IO[bytes]
    if isinstance(source, _Joined):  # a stream, read once from its start
        head = source.head
        yield cast(IO[bytes], source), head, _bom_codec(head)
        return
    if isinstance(source, Path):
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise DataError(f"{source}: cannot be read: {e.strerror or e}") from e
    else:
        stream = io.BytesIO(source if isinstance(source, bytes) else source.read())
    with stream:
        head = stream.read(_HEAD)
        stream.seek(0)
        yield stream, head, _bom_codec(head)


def _bom_codec(head: bytes) -> str | None:
    """The encoding a byte-order mark names (it wins over the XML declaration); without one,
    UTF-8 where the head's text that is not ASCII is UTF-8 yet the declaration names a single-byte
    code page (La Rioja's files without their BOM): text in a code page almost never decodes
    as UTF-8 by accident, and read in the code page it would be mojibake ("LogroÃ±o")."""
    bom = next((codec for bom, codec in _BOMS if head.startswith(bom)), None)
    if bom is not None or head.isascii() or not _SINGLE_BYTE_DECLARED.match(head):
        return bom
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        cut = e.reason == "unexpected end of data"  # a character cut at the head's end
        return "utf-8" if cut and not head[: e.start].isascii() else None
    return "utf-8"


def _root(label: str, root: Any) -> Any:
    refuse_dtd(label, root)
    if local_name(root.tag) not in _COLLECTIONS | EXCEPTION_REPORTS:
        raise DataError(f"{label}: not a WFS FeatureCollection (the root element is {root.tag})")
    return root


def _convention(root: Any, head: bytes, wfs_version: str | None) -> tuple[str, AxisOrder]:
    """The GML version of the response and the axis order of a short EPSG:n in it."""
    if GML_NAMESPACES[1] in root.nsmap.values():
        return "3.2", "authority"
    if wfs_version:
        return ("2", "xy") if wfs_version.startswith("1.0") else ("3.1.1", "authority")
    schema = root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation") or ""
    if root.get("numberOfFeatures") is not None or _GML3_SCHEMA.search(schema):
        return "3.1.1", "authority"
    if _GML2_SCHEMA.search(schema):
        return "2", "xy"
    prefixes = [p for p, ns in root.nsmap.items() if ns == GML_NAMESPACES[0] and p]
    for prefix in (re.escape(p.encode()) for p in prefixes):
        if re.search(
            rb"<" + prefix + rb":(posList|pos|exterior)[\s>]|\s" + prefix + rb":id=", head
        ):
            return "3.1.1", "authority"
    return "2", "xy"


def _counts(root: Any) -> Counts:
    def number(key: str) -> int | None:
        text = (root.get(key) or "").strip()
        return int(text) if text.isdigit() else None  # numberMatched may be "unknown"

    returned = number("numberReturned")
    return Counts(
        number("numberMatched"), number("numberOfFeatures") if returned is None else returned
    )


class WFSGMLConnector(FileConnector):
    """A saved WFS GetFeature response (or any GML FeatureCollection)."""

    name = "wfs-gml"
    title = "WFS GetFeature response (GML)"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        root = documents.xml_root(head)
        if not root or root[1].decode(errors="replace") not in _COLLECTIONS:
            return 0.0
        return 0.9 if _GML_NS_DECLARED.search(root[2]) else 0.0

    def inspect(self) -> SourceInfo:
        response = read_response(self.path, name=str(self.path))
        returned = response.counts.returned
        return SourceInfo(
            format="WFS FeatureCollection",
            version=f"GML {response.gml}",
            crs=response.crs,
            layers=(response.feature_type,) if response.feature_type else (),
            declared_count=None if returned and _not_counted(self.path) else returned,
            details=_details(response.counts),
        )

    def read(self) -> Iterator[SourceBatch]:
        count = 0
        for batch in read_feature_collection(
            self.path,
            batch_size=int(self.options.get("batch_size", BATCH_SIZE)),
            huge_tree=bool(self.options.get("huge_tree")),
        ):
            count += len(batch)
            yield batch
        if not count:
            counts = collection_counts(self.path)
            if counts.matched or counts.returned:
                raise NotFeatureData(
                    f"{self.path}: a WFS hits response (the query matches "
                    f"{counts.matched or counts.returned} features, none are in it), not feature "
                    "data: ask with resultType=results"
                )


def _not_counted(path: Path) -> bool:
    """Whether the response holds features numberReturned does not count one each (a join's
    tuples, additional objects): its count is then no count of its features."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _NOT_COUNTED.search(data) is not None
    except (OSError, ValueError):  # an empty file cannot be mapped; reading it says more
        return False


def _details(counts: Counts) -> dict[str, str]:
    return {"number matched": str(counts.matched)} if counts.matched is not None else {}
