"""A file by its URL: the download link a city's portal gives (`.../parks.geojson`,
`.../trees.csv`, a zip), read as the same file on disk would be.

The URL decides where it can: its last segment names a file of a data format and it is no
service request (no `SERVICE=` / `REQUEST=`, no OGC API collection). A URL that names neither
a file nor a service (a portal's `.../download?id=7`) is probed first (`answers_a_file`, the
answer's head only): its answer is a file where its media type is a data format's
(`FILE_TYPES`), or its Content-Disposition names a file of one; else the registry's guess
stands. Such a file is so asked for twice: the probe, then the download. The file is downloaded
through the shared HTTP client (retries, the body bound, a download broken off asked again
within the same budget) into a folder of its own, removed with the connector, then read by the
connector its content chooses, with the options given (`encoding`, `delimiter` ...) and the CRS
`--crs` names (for a file, what its coordinates are in). A web page
answered instead (a portal's login or error page, often with 200) is refused with its words.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import replace
from email.message import Message
from functools import cached_property
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from citypipe.connectors.base import Connector, ServiceConnector, SourceBatch, SourceInfo
from citypipe.connectors.ogcapi_service import Address
from citypipe.geo.errors import ConfigurationError, UnavailableError

__all__ = ["RemoteFileConnector"]

_DATA_FILE = re.compile(
    r"\.(geo)?json[ls]?$|\.(nd)?jsonl?d?$|\.(csv|tsv|parquet|geoparquet|gpkg|fgb|gml|xml|kml|"
    r"kmz|cityjson|zip|gz|bz2|xz|zst)$",
    re.IGNORECASE,
)
"""File names of the formats citypipe reads, compressed or not."""
FILE_TYPES = frozenset({
    "application/geo+json", "application/vnd.geo+json", "application/geo+json-seq",
    "application/city+json", "application/x-ndjson", "application/ld+json",
    "text/csv", "application/csv", "text/tab-separated-values",
    "application/vnd.apache.parquet", "application/x-parquet",
    "application/geopackage+sqlite3", "application/flatgeobuf",
    "application/gml+xml", "application/vnd.google-earth.kml+xml",
    "application/vnd.google-earth.kmz",
    "application/zip", "application/x-zip-compressed", "application/gzip",
    "application/x-gzip", "application/x-bzip2", "application/x-xz", "application/zstd",
})  # fmt: skip
"""Media types of an answer that is a data file (a service's landing page or capabilities
are application/json or XML: the service's connector reads them)."""
_ANY_STATUS = range(400, 600)
"""The statuses `answers_a_file` takes as they come: no file, the guess stands (and asks)."""
_SERVICE_KEYS = frozenset({"service", "request"})
_STEMS = frozenset({"items", "collections", "conformance"})
"""OGC API resources, which QGIS Server also spells with a format suffix (`items.json`)."""


class RemoteFileConnector(ServiceConnector):
    name = "remote-file"
    title = "a file by its URL"
    known_options = frozenset({"encoding", "delimiter", "geometry", "x", "y", "id", "layer"})
    """Passed on to the file's own connector, which refuses those it does not take."""

    @classmethod
    def accepts(cls, url: SplitResult) -> float:
        name = _file_name(url)
        if not _DATA_FILE.search(name) or name.partition(".")[0].lower() in _STEMS:
            return 0.0
        if {k.lower() for k, _ in parse_qsl(url.query)} & _SERVICE_KEYS:
            return 0.0
        return 0.0 if Address.of(url.geturl()).collection else 0.8

    @classmethod
    def may_answer_a_file(cls, url: SplitResult) -> bool:
        """Whether `url` names neither a file nor a service's resource (an OGC API
        `collections`, `items`, `conformance`, with a suffix or not; a `SERVICE=` request):
        only its answer tells (`answers_a_file`)."""
        name = _file_name(url)
        if _DATA_FILE.search(name) or name.partition(".")[0].lower() in _STEMS:
            return False
        return not {k.lower() for k, _ in parse_qsl(url.query)} & _SERVICE_KEYS

    _name: str | None = None
    """The file name the answer's Content-Disposition gives (`answers_a_file`)."""

    def answers_a_file(self) -> bool:
        """Whether the URL answers a data file: its media type is a data format's, or its
        Content-Disposition names a file of one. Asked once of a URL that names neither a file
        nor a service; any status is its answer (an error status: no file), and so is no answer
        at all: the service's connector then asks, retries and says why in its one line. The
        body is not read."""
        try:
            stream = self.client.open(self.url, accept=_ANY_STATUS, retries=0)
        except UnavailableError:
            return False
        try:
            if stream.status >= 400:
                return False
            self._name = _disposition_name(stream.headers.get("Content-Disposition"))
            named = self._name is not None and bool(_DATA_FILE.search(self._name))
            return stream.media_type in FILE_TYPES or named
        finally:
            stream.close()

    @cached_property
    def file(self) -> Connector:
        """The connector of the downloaded file, chosen by its content; a query a file cannot
        answer (a box, a filter, a time) refused first, not ignored."""
        from citypipe.connectors.registry import open_location  # the registry lists this module

        asked = [k for k in ("bbox", "filter", "datetime") if getattr(self.query, k) is not None]
        if asked:
            raise ConfigurationError(
                f"{self.url}: a file by its URL is read whole: {', '.join(asked)} apply to a "
                "service's query"
            )
        folder = Path(tempfile.mkdtemp(prefix="citypipe-url-"))
        weakref.finalize(self, shutil.rmtree, folder, True)
        # no folders (`%2F` unquotes to "/", `..%2F` climbed out), no hidden file
        given = self._name or _file_name(urlsplit(self.url))
        name = re.sub(r"[/\\]", "_", given).lstrip(".")
        path = folder / (name or "download")
        self.client.save(self.url, path)
        options = dict(self.options)
        if self.query.layer and "layer" not in options:
            options["layer"] = self.query.layer
        return open_location(path, **options)

    def inspect(self) -> SourceInfo:
        info = self.file.inspect()
        return replace(info, crs=self.query.crs) if self.query.crs else info

    def read(self) -> Iterator[SourceBatch]:
        """The file's batches; in the CRS a `--crs` (a URL entry's `crs:`) names, which is
        the file's, as a file's `--crs` is, there being no server to ask for one."""
        crs = self.query.crs
        for batch in self.file.read():
            yield replace(batch, crs=crs) if crs else batch


def _disposition_name(header: str | None) -> str | None:
    """The file name a Content-Disposition header gives (RFC 6266, `filename*` too), or None."""
    if not header:
        return None
    message = Message()
    message["Content-Disposition"] = header
    return message.get_filename()


def _file_name(url: SplitResult) -> str:
    """The URL's last path segment, unquoted: the name of the file it is."""
    return unquote(url.path.rstrip("/").rpartition("/")[2])
