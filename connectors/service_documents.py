"""Documents that describe a web service rather than hold features: `citypipe inspect` says what
they offer, ingesting one fails with one line saying what it is.

- WFS GetCapabilities (1.0 / 1.1 / 2.0, read by OWSLib): the feature types with their titles,
  CRSs, output formats and WGS 84 extents;
- a DescribeFeatureType response (an XML Schema): each type's properties and their types;
- an OGC exception report: refused at once with the service's own words;
- OGC API landing pages, conformance declarations, collection lists and collections.

Users point citypipe at what a service returned; "unknown format" would not help them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from lxml import etree

from citypipe.connectors import documents
from citypipe.connectors.answers import report_text
from citypipe.connectors.base import FileConnector, LayerInfo, SourceBatch, SourceInfo
from citypipe.connectors.gml import local_name
from citypipe.connectors.xml_safety import PARSER
from citypipe.geo.errors import DataError, NotFeatureData

__all__ = ["ServiceDocumentConnector", "capabilities_layers"]

_XSD = "{http://www.w3.org/2001/XMLSchema}"
_XML_KINDS = {
    "WFS_Capabilities": "a WFS GetCapabilities document (ingest a GetFeature response instead)",
    "schema": "an XML Schema (a WFS DescribeFeatureType response)",
}
_JSON_KINDS = {
    "conformsTo": "an OGC API conformance declaration",
    "collections": "an OGC API collections document (ingest a collection's /items instead)",
    "extent": "an OGC API collection description (ingest its /items instead)",
    "links": "an OGC API landing page (ingest a collection's /items instead)",
}
_NOT_LANDING = frozenset({"type", "features", "$schema", "@context"})


def capabilities_layers(xml: bytes) -> tuple[str | None, str | None, tuple[LayerInfo, ...]]:
    """A WFS capabilities document's version, service title and feature types, as OWSLib
    reads it (nothing is fetched)."""
    from owslib.wfs import WebFeatureService  # here, not at load: detection loads this module

    root = etree.fromstring(xml, etree.XMLParser(**PARSER))
    version = root.get("version") or "1.1.0"
    try:
        service = WebFeatureService("http://127.0.0.1/", version=version, xml=xml)
        return version, service.identification.title, _feature_types(service, version)
    except (AttributeError, KeyError, IndexError, TypeError) as e:  # OWSLib's reading failed
        raise ValueError(f"OWSLib cannot read it ({type(e).__name__}: {e})") from e


def _feature_types(service: Any, version: str) -> tuple[LayerInfo, ...]:
    """The feature types; a WFS 1.0 type's `<SRS>` as the server wrote it (OWSLib's URN for
    EPSG:4326 would say latitude first, where WFS 1.0 writes it x/y), and 1.0's result formats
    by their names (OWSLib keeps the element's namespace: `{...wfs}GML2`)."""
    formats = tuple(local_name(f) for f in _operation_formats(service))
    as_written = version == "1.0.0"
    return tuple(
        LayerInfo(
            name=name,
            title=kind.title,
            crs=tuple(c.id if as_written else str(c) for c in kind.crsOptions),
            formats=tuple(getattr(kind, "outputFormats", None) or formats),
            bbox=_bbox_10(kind) if as_written else _bbox(kind.boundingBoxWGS84),
        )
        for name, kind in service.contents.items()
    )


def _bbox_10(kind: Any) -> tuple[float, float, float, float] | None:
    """A WFS 1.0 LatLongBoundingBox: in degrees, as the spec and GeoServer write it; where its
    values cannot be degrees, in the feature type's SRS, as MapServer writes it, transformed
    (OWSLib transforms every one from the SRS, degrees too)."""
    given = _bbox(getattr(kind, "boundingBox", None))
    if given is None:
        return None
    west, south, east, north = given
    if -180 <= west <= east <= 180 and -90 <= south <= north <= 90:
        return given
    return _bbox(kind.boundingBoxWGS84)


def _bbox(values: Any) -> tuple[float, float, float, float] | None:
    """An extent given as at least four numbers (west, south, east, north), else None."""
    try:
        west, south, east, north = (float(v) for v in values[:4])
    except (TypeError, ValueError):
        return None
    return west, south, east, north


def _operation_formats(service: Any) -> tuple[str, ...]:
    """The output formats GetFeature lists in the service's operations metadata."""
    for op in service.operations:
        if op.name == "GetFeature":
            values = (getattr(op, "parameters", None) or {}).get("outputFormat", {})
            return tuple(values.get("values", ())) or tuple(getattr(op, "formatOptions", ()))
    return ()


def _schema_types(root: Any) -> tuple[tuple[LayerInfo, ...], dict[str, str]]:
    """The feature types an XML Schema declares (top-level elements) and their properties."""
    types = {t.get("name"): t for t in root.iterchildren(f"{_XSD}complexType")}
    layers, details = [], {}
    for elem in root.iterchildren(f"{_XSD}element"):
        name = elem.get("name")
        layers.append(LayerInfo(name=name))
        kind = types.get((elem.get("type") or "").rpartition(":")[2])
        if kind is not None:
            details[f"properties of {name}"] = ", ".join(
                f"{p.get('name')} ({_type_of(p)})" for p in kind.iter(f"{_XSD}element")
            )
    return tuple(layers), details


def _type_of(prop: Any) -> str:
    given = prop.get("type")
    if given:
        return given.rpartition(":")[2]
    base = next(prop.iter(f"{_XSD}restriction"), None)
    return base.get("base", "?").rpartition(":")[2] if base is not None else "complex"


class ServiceDocumentConnector(FileConnector):
    """Describes a service document; reads no features from it."""

    name = "service-document"
    title = "OGC web service document"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        return 0.9 if _kind(head) else 0.0

    def _kind(self) -> str:
        with open(self.path, "rb") as f:
            kind = _kind(f.read(1 << 16))
        if kind is None:
            raise DataError(f"{self.path}: not an OGC web service document")
        return kind

    def inspect(self) -> SourceInfo:
        kind = self._kind()
        try:
            return _describe(kind, self.path.read_bytes())
        except (etree.XMLSyntaxError, orjson.JSONDecodeError, ValueError) as e:
            what = (_XML_KINDS.get(kind) or _JSON_KINDS[kind]).partition(" (")[0]
            raise DataError(f"{self.path}: {what} that cannot be read: {e}") from e

    def read(self) -> Iterator[SourceBatch]:
        kind = self._kind()
        what = _XML_KINDS.get(kind) or _JSON_KINDS[kind]
        raise NotFeatureData(f"{self.path}: {what}, not feature data")


def _describe(kind: str, data: bytes) -> SourceInfo:
    """What the service document `data` (of `kind`) offers."""
    if kind in _JSON_KINDS:
        doc = orjson.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return _json_info(kind, doc)
    root = etree.fromstring(data, etree.XMLParser(**PARSER))
    if local_name(root.tag) == "schema":
        layers, details = _schema_types(root)
        return SourceInfo(
            format="XML Schema (WFS DescribeFeatureType)",
            layers=tuple(x.name for x in layers),
            layer_info=layers,
            details=details,
        )
    version, title, found = capabilities_layers(data)
    return SourceInfo(
        format="WFS GetCapabilities",
        version=version,
        layers=tuple(x.name for x in found),
        layer_info=found,
        details={"service": title or "-"},
    )


def _kind(head: bytes) -> str | None:
    """Which service document `head` starts: a key of _XML_KINDS or _JSON_KINDS, or None.
    An exception report is refused here with its text."""
    text = head.lstrip(documents.BLANK)
    if text.startswith(b"<"):
        root = documents.xml_root(text)
        name = root[1].decode(errors="replace") if root else ""
        if name in documents.EXCEPTION_REPORTS:
            raise NotFeatureData(
                f"{documents.describe(text)}, not feature data: "
                f"{report_text(text) or '(unreadable)'}"
            )
        return name if name in _XML_KINDS else None
    if text.startswith(b"{"):
        keys = documents.top_level_keys(text)
        for key in _JSON_KINDS:
            if key in keys and (key != "links" or not keys & _NOT_LANDING):
                return key
    return None


def _json_info(kind: str, doc: dict[str, Any]) -> SourceInfo:
    if kind == "conformsTo":
        classes = [str(c) for c in doc.get("conformsTo") or []]
        return SourceInfo(
            format="OGC API conformance declaration",
            details={"conformance classes": ", ".join(classes) or "-"},
        )
    found = doc.get("collections") if kind == "collections" else [doc] if kind == "extent" else []
    layers = tuple(_collection(c) for c in found or [] if isinstance(c, dict) and c.get("id"))
    what = {"collections": "OGC API collections", "extent": "OGC API collection"}
    return SourceInfo(
        format=what.get(kind, "OGC API landing page"),
        layers=tuple(x.name for x in layers),
        layer_info=layers,
        details={"title": str(doc.get("title"))} if doc.get("title") else {},
    )


def _collection(c: dict[str, Any]) -> LayerInfo:
    bbox = ((c.get("extent") or {}).get("spatial") or {}).get("bbox")
    first = bbox[0] if bbox and isinstance(bbox[0], list) else bbox
    return LayerInfo(
        name=str(c["id"]),
        title=c.get("title"),
        crs=tuple(map(str, c.get("crs") or ())),
        bbox=_bbox(first),
    )
