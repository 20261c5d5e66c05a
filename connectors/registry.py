"""Connector names -> importable classes, loaded lazily; the connector for a location: a file's
by its content, a service's by its URL.

Third-party packages add connectors through the `citypipe.connectors` entry-point group:
    [project.entry-points."citypipe.connectors"]
    myformat = "my_package.my_module:MyConnector"
"""

from __future__ import annotations

import codecs
import importlib
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from citypipe.connectors import archives, documents
from citypipe.connectors.base import Connector, FileConnector, ServiceConnector
from citypipe.connectors.text import detect_encoding
from citypipe.geo.errors import ConfigurationError, DataError, NotFeatureData, UnknownFormat

__all__ = [
    "BUILTIN", "HEAD_BYTES", "available", "detect", "is_url", "load", "open_location", "register",
]  # fmt: skip

BUILTIN: dict[str, str] = {
    "geojson": "citypipe.connectors.geojson:GeoJSONConnector",
    "geojsonseq": "citypipe.connectors.geojsonseq:GeoJSONSeqConnector",
    "ngsi-ld": "citypipe.connectors.ngsi:NGSILDConnector",
    "ngsi-v2": "citypipe.connectors.ngsi:NGSIv2Connector",
    "ngsi-notifications": "citypipe.connectors.ngsi_notifications:NotificationLogConnector",
    "cityjson": "citypipe.connectors.cityjson:CityJSONConnector",
    "csv": "citypipe.connectors.csvtable:CSVConnector",
    "geoparquet": "citypipe.connectors.geoparquet:GeoParquetConnector",
    "ogr": "citypipe.connectors.ogr:OGRConnector",
    "citygml": "citypipe.connectors.citygml:CityGMLConnector",
    "wfs-gml": "citypipe.connectors.wfs_gml:WFSGMLConnector",
    "service-document": "citypipe.connectors.service_documents:ServiceDocumentConnector",
    "ogcapi": "citypipe.connectors.ogcapi:OGCAPIFeaturesConnector",
    "wfs": "citypipe.connectors.wfs:WFSConnector",
    "ngsi-ld-broker": "citypipe.connectors.ngsild_broker:NGSILDBrokerConnector",
    "ngsi-ld-temporal": "citypipe.connectors.ngsild_temporal:NGSILDTemporalConnector",
    "ngsi-v2-broker": "citypipe.connectors.ngsiv2_broker:NGSIv2BrokerConnector",
    "remote-file": "citypipe.connectors.remote_file:RemoteFileConnector",
}
GUESS = 0.5
"""A service connector's score under this is a guess (the URL shows nothing of its protocol:
OGC API's landing page): the answer is asked whether it is a file first (remote_file)."""
HEAD_BYTES = 64 * 1024
"""How much of a file detection looks at (from where it stops being blank)."""


@cache
def available() -> dict[str, str]:
    """Every connector name -> dotted path, built-ins first, then entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group="citypipe.connectors"):
        found.setdefault(ep.name, ep.value)
    return found


def register(cls: type[Connector]) -> None:
    """Make `cls` a connector of this process under its name, as an entry point does for an
    installed package: for a connector being written (its tests, a notebook)."""
    available()[cls.name] = f"{cls.__module__}:{cls.__qualname__}"
    load.cache_clear()


@cache
def load(name: str) -> type[Connector]:
    """The connector class registered as `name`."""
    paths = available()
    if name not in paths:
        raise ConfigurationError(
            f"unknown connector {name!r}; known connectors: {', '.join(sorted(paths))}"
        )
    module_name, _, attr = paths[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigurationError(f"connector {name!r} ({paths[name]}) cannot be loaded: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigurationError(f"connector {name!r} ({paths[name]}) is not a Connector subclass")
    return cls


def is_url(location: str | Path) -> bool:
    """Whether `location` names a web service rather than a local file."""
    return isinstance(location, str) and location.lower().startswith(("http://", "https://"))


def open_location(location: str | Path, format: str | None = None, **options: Any) -> Connector:
    """The connector for `location` (a file or a URL): the named format, else a service's by
    its URL, a file's by its content."""
    url = is_url(location)
    if format:
        cls = load(format)
        kind = ServiceConnector if url else FileConnector
        if not issubclass(cls, kind):
            what = "a URL" if url else "a local file"
            raise ConfigurationError(f"{location}: connector {format!r} does not read {what}")
    if url:
        return cls(location, **options) if format else _service(str(location), options)
    readable = archives.unpacked(Path(location))  # a compressed file: what it holds
    try:
        connector = (cls if format else detect(readable.path))(readable.path, **options)
    except BaseException:
        readable.discard()
        raise
    readable.tie(connector)
    return connector


def _service(url: str, options: dict[str, Any]) -> Connector:
    """The connector of the service most sure that `url` is of its protocol; where none is
    more than guessing, a file's by its URL where the answer is a data file (a portal's
    `.../download?id=7` answering text/csv, or naming `parks.geojson` in its disposition).
    Options a file's connector does not take are the service's: no probe then."""
    score, best = _choose_service(url)
    remote: Any = load("remote-file")  # RemoteFileConnector, by the registry's name
    own = set(options) - _SERVICE_ARGUMENTS
    if score < GUESS and own <= remote.known_options and remote.may_answer_a_file(urlsplit(url)):
        connector = remote(url, **options)
        if connector.answers_a_file():
            return connector
        options = {**options, "client": connector.client}  # the probe's, not left unclosed
    return best(url, **options)


_SERVICE_ARGUMENTS = frozenset({"client", "query"})
"""ServiceConnector's own arguments, beside its connector's options."""


def _choose_service(url: str) -> tuple[float, type[Connector]]:
    """The service connector most sure that `url` is of its protocol, and how sure."""
    parts = urlsplit(url)
    scores = [
        (cls.accepts(parts), cls)
        for cls in map(load, available())
        if issubclass(cls, ServiceConnector)
    ]
    score, best = max(scores, key=lambda s: s[0], default=(0.0, None))
    if best is None or score <= 0:
        names = ", ".join(c.name for _, c in scores)
        raise ConfigurationError(
            f"{url}: not the address of a service citypipe reads (services: {names}); "
            "name one with --format"
        )
    return score, best


_UTF16_XML = {b"<\x00?\x00": "utf-16-le", b"\x00<\x00?": "utf-16-be"}
"""A BOM-less UTF-16 XML declaration's first bytes (XML 1.0 appendix F), and its codec."""


def _xml_head_in_utf8(head: bytes) -> bytes:
    """`head` in UTF-8 where it is XML in UTF-16, with a BOM or a declaration (XML's other
    encoding every parser reads, which the formats' sniffers look for in UTF-8), else `head`."""
    codec = _UTF16_XML.get(head[:4])
    if codec is None and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head
    text = head[: len(head) // 2 * 2].decode(codec or "utf-16", errors="ignore")
    return text.encode("utf-8") if text.lstrip().startswith("<") else head


def detect(path: Path) -> type[FileConnector]:
    """The connector for the file at `path`, chosen by its content, never by its name."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            # JSON allows any amount of leading blank
            while len(head) == HEAD_BYTES and not head.lstrip(documents.BLANK):
                head = f.read(HEAD_BYTES)
    except OSError as e:
        raise DataError(f"{path}: cannot be read: {e.strerror or e}") from e
    if not head.strip():
        raise UnknownFormat(f"{path}: the file is empty")
    best: tuple[float, type[FileConnector]] | None = None
    not_features: NotFeatureData | None = None
    formats = [cls for cls in map(load, available()) if issubclass(cls, FileConnector)]
    sniffed = _xml_head_in_utf8(head)
    for cls in formats:
        try:
            score = cls.sniff(sniffed)
        except NotFeatureData as e:
            not_features = not_features or e
            continue
        if score > 0 and (best is None or score > best[0]):
            best = (score, cls)
    if best is not None:
        return best[1]
    if not_features is not None:
        raise NotFeatureData(f"{path}: {not_features}")
    what = documents.describe(head)
    if what:
        raise NotFeatureData(f"{path}: {what}, not feature data")
    wide = detect_encoding(head) or ""
    if wide.startswith(("utf-16", "utf-32")):  # JSON is UTF-8 alone (RFC 8259 section 8.1)
        raise UnknownFormat(
            f"{path}: {wide.upper()} text, which no reader of citypipe's takes: JSON must be "
            f"UTF-8; re-encode it (iconv -f {wide.upper()} -t UTF-8)"
        )
    raise UnknownFormat(
        f"{path}: not a format citypipe reads (tried: {', '.join(sorted(c.name for c in formats))})"
    )
