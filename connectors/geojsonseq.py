"""GeoJSON Text Sequences (RFC 8142: each Feature after a record separator) and newline-delimited
GeoJSON (a Feature a line, GDAL's GeoJSONSeq): one record per Feature, read a batch at a time.

Exports of large layers come this way (`ogr2ogr -f GeoJSONSeq`, tippecanoe's and many APIs'
streams), since a line can be written and read without holding the whole collection. A record
that is not valid JSON is rejected with the reason; the others are read as GeoJSON Features are
(`geojson.page_batches`), in OGC:CRS84 as RFC 7946 has them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from citypipe.connectors import json_numbers
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.documents import BLANK
from citypipe.connectors.geojson import page_batches
from citypipe.connectors.json_code_page import read_in
from citypipe.connectors.json_numbers import Widened
from citypipe.connectors.json_scan import BOM
from citypipe.connectors.jsonstream import BATCH_BYTES, unparsed, utf8_input

__all__ = ["GeoJSONSeqConnector"]

RS = b"\x1e"
"""The record separator RFC 8142 puts before each JSON text."""
_SPACE = BLANK + RS
"""What may stand between records: JSON's whitespace and the record separator."""
_BLOCK = 1 << 20


def _records(f: BinaryIO, separator: bytes) -> Iterator[bytes]:
    """The records of `f` split at `separator`, blank ones left out, a block at a time; a
    UTF-8 byte-order mark before the first is not part of it."""
    tail = f.read(len(BOM)).removeprefix(BOM)
    while block := f.read(_BLOCK):
        *whole, tail = (tail + block).split(separator)
        yield from (r for r in whole if r.strip(_SPACE))
    if tail.strip(_SPACE):
        yield tail


def _feature(text: bytes) -> tuple[Any, bool]:
    """The record's Feature, or what jsonstream makes of an element orjson refuses (`Unparsed`:
    the text as read, and why, naming NaN or Infinity where those are the fault); and whether
    it holds an integer beyond 64 bits (`json_numbers.loads`)."""
    try:
        return json_numbers.loads(text)
    except orjson.JSONDecodeError as e:
        return unparsed(text.strip(_SPACE), e), False


class GeoJSONSeqConnector(FileConnector):
    name = "geojsonseq"
    title = "GeoJSON Text Sequence"
    known_options = frozenset({"encoding"})

    @classmethod
    def sniff(cls, head: bytes) -> float:
        """RFC 8142's separator first, or a first line that is a whole Feature with another
        object after it (a single-line GeoJSON file is one Feature: GeoJSON's)."""
        text = head.lstrip(BLANK)
        if text.startswith(RS):
            return 0.95 if b'"Feature"' in text else 0.0
        first, newline, rest = text.partition(b"\n")
        if not newline or not rest.lstrip(BLANK).startswith((b"{", RS)):
            return 0.0
        try:  # a code page's letters, which read() reads in UTF-8, are not JSON's structure
            doc = orjson.loads(first.decode("latin-1"))
        except orjson.JSONDecodeError:
            return 0.0
        return 0.95 if type(doc) is dict and doc.get("type") == "Feature" else 0.0

    def _separator(self) -> bytes:
        with open(self.path, "rb") as f:
            return RS if f.read(4096).lstrip(BLANK).startswith(RS) else b"\n"

    def inspect(self) -> SourceInfo:
        with open(self.path, "rb") as f:
            count = sum(1 for _ in _records(f, self._separator()))
        return SourceInfo(format="GeoJSONSeq", count=count)

    def read(self) -> Iterator[SourceBatch]:
        separator = self._separator()
        f, codec = utf8_input(self.path, self.open_input(), self.options.get("encoding"))
        with f:
            features: list[Any] = []
            size = 0
            for record in _records(f, separator):
                feature, wide = _feature(record)
                if wide and not isinstance(features, Widened):
                    features = Widened(features)
                features.append(feature)
                size += len(record)
                if size >= BATCH_BYTES:
                    yield from (read_in(b, codec) for b in page_batches({}, features))
                    features, size = [], 0
            if features:
                yield from (read_in(b, codec) for b in page_batches({}, features))
