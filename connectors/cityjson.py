"""CityJSON 1.0 / 1.1 / 2.0 documents and CityJSONSeq streams: one record per CityObject.

A CityJSON document is one JSON object whose CityObjects index one shared, quantised vertex
list, so it is read whole: its vertices and boundaries lifted from the bytes into arrays
(cityjson_lift), the rest parsed with orjson, and its vertices dequantised once with numpy.
A CityJSONSeq stream (a CityJSON header line with `transform` and the CRS, then one
CityJSONFeature per line, each with its own vertices) is read line by line in bounded memory.
Which of the two a file is shows in its content, not in its name.

This module holds the documents: finding, checking and reading them, a batch of CityObjects
at a time. What becomes of an object is cityjson_objects', of its geometry cityjson_geometry's.
A record carries its richest LoD as `geometry_3d` (solids as the faces of their outer shells),
that geometry's semantic surfaces, and a 2D footprint only where the source has a LoD0
geometry: the pipeline derives the rest. Vertices are x, y, z in the `referenceSystem` as
written; without one the file declares no CRS and none is guessed.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice, repeat
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import orjson

from citypipe.connectors import cityjson_ids, cityjson_values, json_code_page
from citypipe.connectors.base import Ahead, FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.cityjson_geometry import Invalid
from citypipe.connectors.cityjson_objects import Batch, Templates, read_templates
from citypipe.connectors.cityjson_values import Vertices
from citypipe.connectors.documents import BLANK
from citypipe.geo.errors import DataError, NotFeatureData

__all__ = ["CityJSONConnector"]

VERSIONS = ("1.0", "1.1", "2.0")
BATCH_OBJECTS = 4000
"""CityObjects per batch: enough for shapely's bulk constructors to pay off, few enough that a
batch's geometries stay small beside the document itself."""

FIRST_BYTES = 1 << 16
"""The first read of a file: a CityJSONSeq's header line is mostly within it."""
WHOLE_BYTES = 8 << 20
"""A file up to this size whose first read holds no end of line is read whole at once."""

_BOM = b"\xef\xbb\xbf"
_CITYJSON = re.compile(rb'"type"\s*:\s*"CityJSON(?:Feature)?"|"CityObjects"\s*:\s*\{')
_GEOJSON = re.compile(rb'"type"\s*:\s*"Feature(?:Collection)?"')
_EXTENSION = re.compile(rb'"type"\s*:\s*"CityJSONExtension"')
_NAMED = re.compile(rb"City(?:JSON|Objects)")
_VERSION = re.compile(r"(\d+\.\d+)(?:\.\d+)?")


@dataclass
class _Opened:
    """A file's CityJSON object: the whole document, or a CityJSONSeq stream's header line."""

    header: dict[str, Any]
    version: str
    seq: bool
    lenient: bool = False
    """Whether only Python's parser read the document (`cityjson_values.loads`)."""
    lifted: Any = None
    """The boundaries lifted from the document's bytes (`cityjson_values.loads_document`)."""
    codec: str | None = None
    """The code page a document that is not UTF-8 is read in (`json_code_page`), or None."""
    repeated: list[tuple[str, Any]] = field(default_factory=list)
    """The CityObjects whose id the document gives again later: the parse keeps the last."""
    vertices: Vertices | None = None
    """The document's vertices dequantised (`CityJSONConnector._vertices`), once made."""

    @property
    def crs(self) -> str | None:
        rs = (self.header.get("metadata") or {}).get("referenceSystem")
        return None if rs is None else str(rs)


class _Early(NamedTuple):
    """A document's vertices dequantised as its parse began (`CityJSONConnector._told`)."""

    xyz: np.ndarray
    transform: Any
    vertices: Vertices

    def same(self, header: dict[str, Any]) -> bool:
        """Whether the parsed document's vertices are these, and its transform this one."""
        return header.get("vertices") is self.xyz and header.get("transform") == self.transform


def _read_first_line(f: BinaryIO) -> tuple[bytes, bytes]:
    """The file's first line, and what was read after it. A first read without an end of line
    is most likely a minified document, one line: a file of up to WHOLE_BYTES is then read
    again whole, in one read sized by the file (0.57 -> 0.28 ms for Den Haag's 3 MB, which
    the pieces read and joined copied twice); a larger one in reads of growing size, as
    readline() copies and scans in steps (3.7 ms for Den Haag's)."""
    parts, size = [], FIRST_BYTES
    while chunk := f.read(size):
        end = chunk.find(b"\n") + 1
        if end:
            parts.append(chunk[:end])
            return b"".join(parts), chunk[end:]
        if not parts and len(chunk) == size and _size(f) <= WHOLE_BYTES:
            f.seek(0)
            whole = f.read()
            end = whole.find(b"\n") + 1
            return (whole[:end], whole[end:]) if end else (whole, b"")
        parts.append(chunk)
        size *= 2
    return b"".join(parts), b""


def _size(f: BinaryIO) -> float:
    """The size of the file `f` reads, or infinity where it is no file (a pipe)."""
    try:
        info = os.fstat(f.fileno())
    except (OSError, io.UnsupportedOperation):
        return math.inf
    return info.st_size if stat.S_ISREG(info.st_mode) else math.inf


def _types(objects: Iterable[Any]) -> Counter[Any]:
    """How many CityObjects of each type (None: not an object, or without a type)."""
    return Counter(o.get("type") if isinstance(o, dict) else None for o in objects)


def _repeated(opened: _Opened) -> Iterator[SourceBatch]:
    """The CityObjects a later one of the same id replaced in the parse, as rejects naming it
    (the spec makes an id the object's key, unique; JSON parsers keep the last silently)."""
    if not opened.repeated:
        return
    batch = Batch(None, opened.crs)
    for key, obj in opened.repeated:
        why = (
            f"CityObject id {key!r} is given again later in CityObjects: the last one is read "
            "(ids are unique in CityJSON; JSON parsers keep the last)"
        )
        batch.fail(key, {key: obj}, why)
    yield batch.source_batch()


class CityJSONConnector(FileConnector):
    name = "cityjson"
    title = "CityJSON"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        text = head.lstrip(BLANK)
        if not text.startswith(b"{") or not _NAMED.search(text):
            return 0.0  # one scan for the names spares other JSON the expressions below
        if _EXTENSION.search(text):
            raise NotFeatureData(
                "a CityJSON Extension (the schema of extra types), not city objects"
            )
        city, geo = _CITYJSON.search(text), _GEOJSON.search(text)
        return 0.95 if city and (geo is None or city.start() < geo.start()) else 0.0

    _opened: _Opened | None = None
    _early: _Early | None = None

    def _open(self) -> _Opened:
        """The document, parsed once for inspect() and read(), or a stream's header line.

        A first line that is a whole JSON object with more lines after it is a stream's header;
        anything else is one document (whose first line is all of it when it is minified).
        """
        if self._opened is None:
            try:
                with self.open_input() as f:
                    first, after = _read_first_line(f)
                    lenient, lifted, codec = False, None, None
                    after = after[:4096] + f.read(max(0, 4096 - len(after)))
                    more = bool(after.strip(BLANK))
                    header = self._first_line(first) if more else None
                    seq = header is not None
                    if seq:  # a stream's lines in one code page, as a document's text
                        codec = json_code_page.code_page(f)
                    if header is None:
                        if after:  # else the first line is the whole file: not read again
                            f.seek(0)
                            first = f.read()
                        header, lenient, lifted, codec, data = self._parse(first.removeprefix(_BOM))
            except OSError as e:
                raise DataError(f"{self.path}: cannot be read: {e.strerror or e}") from e
            self._opened = self._check(header, seq, lenient, lifted)
            self._opened.codec = codec
            early, self._early = self._early, None
            if early is not None and early.same(header):
                self._opened.vertices = early.vertices
            kept = None if seq else len(header["CityObjects"])
            if kept is not None and (lifted is None or lifted.objects != kept):
                # more members in the bytes than the objects parsed: an id given again later
                # (the lift counts them as it walks; without it, cityjson_ids counts them)
                self._opened.repeated = cityjson_ids.repeated(data, kept)
        return self._opened

    def _parse(self, data: bytes) -> tuple[Any, bool, Any, str | None, bytes]:
        """The document (`cityjson_values.loads_document`), the code page it is read in
        where it is not UTF-8 but text in one throughout (JSON's one rule for bytes that name
        no encoding, GeoJSON's and a service's answer's: `json_code_page`) or None, and the
        UTF-8 bytes parsed (for `cityjson_ids`, not converted again)."""
        try:
            return *cityjson_values.loads_document(data, self._told), None, data
        except orjson.JSONDecodeError as e:
            if "UTF-8" in e.msg:  # orjson says where only for syntax: not "truncated? at byte 0"
                codec = json_code_page.code_page(io.BytesIO(data))
                if codec is None:
                    raise DataError(
                        f"{self.path}: the document is not UTF-8, as JSON must be, nor text "
                        "in one code page throughout"
                    ) from e
                utf8 = data.decode(codec).encode()
                return *self._parse(utf8)[:3], codec, utf8
            raise DataError(
                f"{self.path}: the document is not valid JSON (truncated?): {e.msg} at byte {e.pos}"
            ) from e

    def _told(self, xyz: np.ndarray, metadata: Any, transform: Any, lifted: Any) -> None:
        """The document's vertices (`xyz` as lifted, dequantised by its `transform`) told to
        `on_ahead` while orjson has yet to parse the rest, where `ahead` would give them
        (one batch of objects: `lifted.objects`, counted in the bytes, is at least the
        parse's); kept for the read where the parse gives the same (`_Early.same`)."""
        if self.on_ahead is None or lifted is None or lifted.objects > BATCH_OBJECTS:
            return
        if cityjson_values.transform_problem(transform) is not None:
            return
        vertices = cityjson_values.vertices(xyz, transform)
        self._early = _Early(xyz, transform, vertices)
        rs = metadata.get("referenceSystem") if isinstance(metadata, dict) else None
        self.on_ahead(Ahead(vertices.xyz, None if rs is None else str(rs), "xy"))

    @staticmethod
    def _first_line(line: bytes) -> Any:
        try:
            return orjson.loads(line.removeprefix(_BOM))
        except orjson.JSONDecodeError:
            return None

    def _check(self, header: Any, seq: bool, lenient: bool, lifted: Any) -> _Opened:
        kind = header.get("type") if isinstance(header, dict) else None
        if kind == "CityJSONFeature":
            raise DataError(
                f"{self.path}: a CityJSONFeature without the CityJSON header line a CityJSONSeq "
                "starts with (it holds the transform and the CRS)"
            )
        if kind != "CityJSON":
            raise DataError(f"{self.path}: JSON, but not a CityJSON document (type {kind!r})")
        version = header.get("version")
        m = _VERSION.fullmatch(str(version))
        if not m or m.group(1) not in VERSIONS:
            raise DataError(
                f"{self.path}: CityJSON version {version!r} is not one citypipe reads "
                f"({', '.join(VERSIONS)})"
            )
        if not seq and not (
            isinstance(header.get("CityObjects"), dict)
            and isinstance(header.get("vertices"), list | np.ndarray)
        ):
            raise DataError(
                f"{self.path}: a CityJSON document without its CityObjects object or vertices array"
            )
        if why := cityjson_values.transform_problem(header.get("transform")):
            raise DataError(f"{self.path}: {why}")
        return _Opened(header, str(version), seq, lenient, lifted)

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """A stream's lines after the header, numbered from 2, blank ones skipped."""
        try:
            with self.open_input() as f:
                f.readline()
                codec = self._opened.codec if self._opened else None
                for number, line in enumerate(f, start=2):
                    if line.strip():
                        yield number, line if codec is None else line.decode(codec).encode()
        except OSError as e:
            raise DataError(f"{self.path}: cannot be read: {e.strerror or e}") from e

    @staticmethod
    def _feature(number: int, line: bytes) -> tuple[Any, str | None, bool]:
        """A stream line's CityJSONFeature, or why it is not one; and whether only Python's
        parser read it (`cityjson_values.loads`)."""
        try:
            feature, lenient = cityjson_values.loads(line)
        except orjson.JSONDecodeError as e:
            text = line.decode("utf-8", "replace")
            return text, f"line {number} is not valid JSON (truncated?): {e.msg}", False
        if not (isinstance(feature, dict) and feature.get("type") == "CityJSONFeature"):
            return feature, f"line {number} is not a CityJSONFeature", lenient
        if not isinstance(feature.get("CityObjects"), dict):
            why = f"line {number} is a CityJSONFeature without a CityObjects object"
            return feature, why, lenient
        return feature, None, lenient

    def inspect(self) -> SourceInfo:
        opened = self._open()
        if opened.seq:
            features = (self._feature(*line) for line in self._lines())
            types = _types(
                chain.from_iterable(
                    [None] if why else f["CityObjects"].values() for f, why, _ in features
                )
            )
        else:
            objects = opened.header["CityObjects"].values()
            try:  # every object a JSON object, as they are: one C-level pass
                types = Counter(map(dict.get, objects, repeat("type")))
            except TypeError:
                types = _types(objects)
        return SourceInfo(
            format="CityJSONSeq" if opened.seq else "CityJSON",
            version=opened.version,
            crs=opened.crs,
            layers=tuple(f"{t or 'unreadable'}: {n}" for t, n in types.items()),
            count=types.total(),
        )

    def read(self) -> Iterator[SourceBatch]:
        opened = self._open()
        try:
            batches = self._read_seq(opened) if opened.seq else self._read_document(opened)
            for batch in chain(batches, _repeated(opened)):
                yield json_code_page.read_in(batch, opened.codec)
        finally:
            self._opened = None

    def ahead(self) -> Ahead | None:
        """A document's vertices, which its objects' geometries index: known once it is
        parsed (a stream's lines hold their own), where its objects make one batch. A
        larger document's batches each have theirs moved beside their own walk: its whole
        pool moved first would keep the first batch waiting for the later batches' positions,
        and each batch's corners be looked up among all of them."""
        opened = self._open()
        if opened.seq or len(opened.header["CityObjects"]) > BATCH_OBJECTS:
            return None
        try:
            xyz = self._vertices(opened).xyz
        except TypeError:  # not an array: the read says so
            return None
        return Ahead(xyz, opened.crs, "xy")

    @staticmethod
    def _vertices(opened: _Opened) -> Vertices:
        """The vertices of the document (a stream's header has none), dequantised once for
        `ahead` and the read."""
        if opened.vertices is None:
            raw = opened.header.get("vertices")
            raw = raw if type(raw) is np.ndarray else raw or []  # a stream's header: none
            opened.vertices = cityjson_values.vertices(raw, opened.header.get("transform"))
        return opened.vertices

    def _shared(self, opened: _Opened) -> tuple[Templates | None, Vertices]:
        """The templates and the vertices of the document (a stream's header has none)."""
        try:
            vertices = self._vertices(opened)
            return read_templates(opened.header), vertices
        except (Invalid, TypeError) as e:
            raise DataError(f"{self.path}: {e}") from e

    def _read_document(self, opened: _Opened) -> Iterator[SourceBatch]:
        templates, vertices = self._shared(opened)
        objects = iter(opened.header["CityObjects"].items())
        while chunk := list(islice(objects, BATCH_OBJECTS)):
            batch = Batch(templates, opened.crs, opened.lifted)
            batch.add_all(chunk, batch.vertices(vertices), vertices, opened.lenient)
            yield batch.source_batch()

    def _read_seq(self, opened: _Opened) -> Iterator[SourceBatch]:
        templates, _ = self._shared(opened)
        transform = opened.header.get("transform")
        batch = Batch(templates, opened.crs)
        for number, line in self._lines():
            self._add_line(batch, number, line, transform)
            if len(batch) >= BATCH_OBJECTS:
                yield batch.source_batch()
                batch = Batch(templates, opened.crs)
        if len(batch):
            yield batch.source_batch()

    def _add_line(self, batch: Batch, number: int, line: bytes, transform: Any) -> None:
        """The CityObjects of one CityJSONFeature, with the vertices of their own line."""
        feature, why, lenient = self._feature(number, line)
        if why:
            batch.fail(None, feature, why)
            return
        try:
            vertices = cityjson_values.vertices(feature.get("vertices") or [], transform)
        except TypeError as e:
            for key, obj in feature["CityObjects"].items():
                batch.fail(key, {key: obj}, f"line {number}: {e}")
            return
        batch.add_all(feature["CityObjects"].items(), batch.vertices(vertices), vertices, lenient)
