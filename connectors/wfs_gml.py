"""WFS GetFeature responses in GML (WFS 1.0 / GML 2, WFS 1.1 / GML 3.1.1, WFS 2.0 / GML 3.2):
one reader for saved files and for the pages a WFS harvest fetches.

A FeatureCollection's members are gml:featureMember, gml:featureMembers and wfs:member
(and GDAL's ogr:featureMember), also those of the collections WFS 2.0 nests in a member or
in wfs:additionalObjects, and of join tuples; each feature is a record (wfs_gml_features).
The response is streamed: members are read as they end and dropped once their batch is handed
over. What it says before its first member (version, convention, counts, encoding) is read
first (wfs_gml_response).

Axis order (crs.axis_order, the one rule CityGML follows too): URN and OGC URI srsNames follow
the CRS. The short EPSG:n follows the response's convention: WFS 1.0 / GML 2 write x/y
(longitude first, GeoServer's "WFS 1.0.0 provides geographic coordinates in east/north"),
WFS 1.1 and 2.0 the CRS's own order whatever the spelling (MapServer writes EPSG:4326 latitude
first under the short label in WFS 1.1.0; the OGC's reading since the WFS 1.1.1 corrigendum,
which GeoServer's WFS 1.1.0 does not follow for the short form: `--axis-order xy` for those).
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from citypipe.connectors import documents
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.gml import GML_NAMESPACES
from citypipe.connectors.gml_xlinks import XlinkBudgetError
from citypipe.connectors.wfs_gml_features import FeatureReader
from citypipe.connectors.wfs_gml_response import (
    COLLECTIONS,
    HEAD_BYTES,
    MEMBERS,
    READ_THROUGH,
    Counts,
    Joined,
    Readable,
    Response,
    Source,
    collection_counts,
    open_response,
    read_response,
)
from citypipe.connectors.xml_safety import PARSER, not_well_formed
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
_ENDS = tuple(f"}}{name}" for name in READ_THROUGH)
"""Member contents that are not features, as the ends of tags with a namespace."""
_NOT_MEMBERS = {"boundedBy", "additionalObjects", "truncatedResponse"}
"""Children of a collection that hold no features of their own."""
_NOT_COUNTED = re.compile(rb"<([\w.-]+:)?(Tuple|additionalObjects)[\s/>]")
"""What numberReturned does not count one feature each (ISO 19142): a join's tuple counts once
for its features, wfs:additionalObjects not at all."""
_LOCAL_HREF = re.compile(rb"""href\s*=\s*["']#""")
"""An xlink:href to an id of the same document (one regular expression: a third of the time
of two finds, 15 ms for 64 MB)."""
_GML_NS_DECLARED = re.compile(rb"""=\s*["']http://www\.opengis\.net/gml(/3\.2)?["']""")


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
    while len(head) < HEAD_BYTES and (chunk := stream.read(HEAD_BYTES - len(head))):
        head += chunk
    response = read_response(head, wfs_version=wfs_version, name=name)
    joined = Joined(head, stream)
    return response, lambda crs, size: _read(joined, response, crs, None, size, name, False)


def _read(
    source: bytes | Path | Joined,
    response: Response,
    crs: str | None,
    axis_order: AxisOrder | None,
    batch_size: int,
    label: str,
    huge_tree: bool,
) -> Iterator[SourceBatch]:
    gml_ns = GML_NAMESPACES[1] if response.gml == "3.2" else GML_NAMESPACES[0]
    reader = FeatureReader(gml_ns, response.axis_order, response.crs or crs, _refers(source))
    with open_response(source) as (stream, head, encoding):
        context = etree.iterparse(
            stream, events=("end",), tag=MEMBERS, encoding=encoding,
            remove_comments=True, remove_pis=True, huge_tree=huge_tree, **PARSER,
        )  # fmt: skip
        yield from _members(label, context, reader, head, batch_size, axis_order)


def _refers(source: bytes | Path | Joined) -> bool | None:
    """Whether a saved response or a page names something by `#id` (`xlink:href="#..."` in its
    bytes): its geometries are then kept for references from its first batch on, and never
    where it names nothing so. None for a stream, not known until its first reference
    (wfs_gml_refs)."""
    if isinstance(source, bytes):
        return _LOCAL_HREF.search(source) is not None
    return _found(source, _LOCAL_HREF) if isinstance(source, Path) else None


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
                if isinstance(tag, str) and not tag.endswith(_ENDS) and tag not in READ_THROUGH:
                    reader.feature(child)
            parent = member.getparent()
            while member.getprevious() is not None:
                del parent[0]  # the features live on in their batch's records until read
            if len(reader) >= batch_size:
                yield from _forced(reader.flush(final=False), axis_order)
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


class WFSGMLConnector(FileConnector):
    """A saved WFS GetFeature response (or any GML FeatureCollection)."""

    name = "wfs-gml"
    known_options = frozenset({"batch_size", "huge_tree"})
    title = "WFS GetFeature response (GML)"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        root = documents.xml_root(head)
        if not root or root[1].decode(errors="replace") not in COLLECTIONS:
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
    return _found(path, _NOT_COUNTED)


def _found(path: Path, pattern: re.Pattern[bytes]) -> bool:
    """Whether the file's bytes hold `pattern` (mapped, not read); False for a file that
    cannot be mapped (unreadable, empty), whose reading says why."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return pattern.search(data) is not None
    except (OSError, ValueError):
        return False


def _details(counts: Counts) -> dict[str, str]:
    return {"number matched": str(counts.matched)} if counts.matched is not None else {}
