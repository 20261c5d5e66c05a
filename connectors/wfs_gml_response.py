"""What a WFS GetFeature response in GML says before its first member: its GML version, the
axis-order convention of a short EPSG:n, its counts, its envelope's CRS and its first feature
type; and the response opened from its start, in the encoding its byte-order mark names.

The convention is the caller's WFS version where it knows it, else the response's: GML 3.2, or
GML 3 syntax (gml:id, posList, exterior), a WFS 1.1 count or schema location make it 1.1 / 2.0;
otherwise it is GML 2 (wfs_gml's docstring says how each reads a short EPSG:n).

Encoding: a byte-order mark wins over the XML declaration (La Rioja's files are UTF-8 with a
BOM and declare ISO-8859-1). XML is parsed with the project's safe settings (xml_safety).
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

from lxml import etree

from citypipe.connectors.answers import count, exception_text
from citypipe.connectors.documents import EXCEPTION_REPORTS
from citypipe.connectors.gml import GML_NAMESPACES, local_name
from citypipe.connectors.xml_safety import PARSER, not_well_formed, refuse_dtd
from citypipe.geo.errors import DataError, NotFeatureData
from citypipe.geo.types import AxisOrder

__all__ = [
    "COLLECTIONS",
    "HEAD_BYTES",
    "MEMBERS",
    "READ_THROUGH",
    "Counts",
    "Joined",
    "Readable",
    "Response",
    "Source",
    "collection_counts",
    "open_response",
    "read_response",
]

Source = bytes | IO[bytes] | Path
"""A response body: its bytes, a binary file object (read from where it stands), or a file."""

_WFS2 = "http://www.opengis.net/wfs/2.0"
COLLECTIONS = frozenset({"FeatureCollection", "SimpleFeatureCollection"})
READ_THROUGH = COLLECTIONS | {"Tuple"}
"""Member contents that are not features: their own members are."""
_OGR = "http://ogr.maptools.org/"
"""GDAL's GML writer: its GML 3 and 3.2 collections hold ogr:featureMember elements."""
MEMBERS = [f"{{{ns}}}{m}" for ns in GML_NAMESPACES for m in ("featureMember", "featureMembers")]
MEMBERS += [f"{{{_WFS2}}}member", f"{{{_OGR}}}featureMember"]
HEAD_BYTES = 1 << 16
"""The head of a response: what it says before its first member is read from it."""
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
    with open_response(source) as (stream, head, encoding):
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
            in_member = parent is not None and parent.tag in MEMBERS
            if event == "start" and in_member and local_name(elem.tag) not in READ_THROUGH:
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


class Readable(Protocol):
    """What a streamed answer needs: bytes read from where it stands, b"" at its end."""

    def read(self, size: int = -1, /) -> bytes: ...


class Joined:
    """A stream whose head was read already: the head, then the rest."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self.head, self._rest, self._given = head, rest, False

    def read(self, size: int = -1) -> bytes:
        if not self._given:
            self._given = True
            return self.head
        return self._rest.read(size)


@contextmanager
def open_response(source: Source | Joined) -> Iterator[tuple[IO[bytes], bytes, str | None]]:
    """A stream of the response from its start, its head, and the encoding its BOM names."""
    stream: IO[bytes]
    if isinstance(source, Joined):  # a stream, read once from its start
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
        head = stream.read(HEAD_BYTES)
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
    if local_name(root.tag) not in COLLECTIONS | EXCEPTION_REPORTS:
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
    """The root's counts; numberMatched may be "unknown" (None)."""
    returned = count(root.get("numberReturned"))
    return Counts(
        count(root.get("numberMatched")),
        count(root.get("numberOfFeatures")) if returned is None else returned,
    )
