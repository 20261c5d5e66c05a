"""JSON bytes that name no encoding read as citypipe reads them, a saved document's and a
service's answer's alike: UTF-8 as JSON must be, else the code page text is in throughout
(a GeoJSON written from a shapefile's cp1252 as it was, which GDAL reads so) where orjson says
it is not UTF-8; the detection costs nothing for a UTF-8 document."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from citypipe.connectors import json_numbers
from citypipe.connectors.text import file_encoding

if TYPE_CHECKING:  # base's HTTP client reads its answers with this module
    from citypipe.connectors.base import SourceBatch

__all__ = ["BLOCK", "code_page", "loads", "read_in"]

BLOCK = 1 << 24
"""Bytes read at once where a document is looked through or transcoded."""
_UTF8_CHARACTER = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
"""A character of UTF-8 beyond ASCII (its lead byte and continuation bytes)."""


def loads(data: bytes) -> tuple[Any, bool, str | None]:
    """The document, whether it holds integers beyond 64 bits (`json_numbers.loads`), and the
    code page it is decoded from where it is text in one (`code_page`, asked only where orjson
    finds it is not UTF-8); JSONDecodeError where that is not all that is wrong. JSON's one
    rule for bytes that name no encoding, a file's or a service's answer's."""
    try:
        return *json_numbers.loads(data), None
    except orjson.JSONDecodeError as e:
        codec = code_page(io.BytesIO(data)) if "UTF-8" in e.msg else None
        if codec is None:
            raise
        return *json_numbers.loads(data.decode(codec)), codec


def code_page(f: BinaryIO) -> str | None:
    """The code page of a document that is text in one throughout: bytes beyond ASCII, and
    not one UTF-8 character beyond ASCII among them (a GeoJSON written from a shapefile's
    cp1252 as it was, which GDAL reads so). None for ASCII and UTF-8, also for a UTF-8
    document with some bytes that are not (its records holding them are rejected, as CSV's
    lines are). Read from the start, and left there."""
    f.seek(0)
    high = False
    while block := f.read(BLOCK):
        if block.isascii():
            continue
        if _UTF8_CHARACTER.search(block):
            high = False
            break
        high = True
    f.seek(0)
    coding = file_encoding(f) if high else None
    f.seek(0)
    return None if coding is None or coding.codec.startswith("utf") else coding.codec


def read_in(batch: SourceBatch, codec: str | None) -> SourceBatch:
    """`batch`, with a warning where its JSON was not UTF-8 but text in `codec` (`loads`,
    `code_page`): a file's, an OGC API page's, a broker's page alike."""
    if codec is None:
        return batch
    why = f"the document is not UTF-8, as JSON must be: its text is read as {codec}"
    return batch.warned(why)
