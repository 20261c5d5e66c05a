"""An answer's body as its bytes: inflated by citypipe where it is gzip, with a Content-Encoding
or without one (a bucket serving pre-compressed GeoJSON without that header, a gateway
compressing twice), so that a gzip stream cut short or corrupted is told from a whole one
(urllib3 takes a cut stream for its end) and asked again as a dropped connection is."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from itertools import chain

import requests
import urllib3

__all__ = ["BrokenGzip", "body"]

_GZIP = b"\x1f\x8b"
_CODINGS = frozenset({"gzip", "x-gzip"})
"""Content-Encodings citypipe inflates itself (deflate, br ... are urllib3's)."""
_TEXTUAL = ("json", "xml", "gml", "text/")
"""Media types of text, which a gzip body without Content-Encoding is not: such a body is
inflated."""


class BrokenGzip(requests.exceptions.ChunkedEncodingError):
    """A body that starts as gzip and breaks off or goes wrong in it: cut by a proxy, a
    gateway's buffer, a server's compressor mid-answer. A body that broke off, as requests'
    ChunkedEncodingError is, so asked again as a dropped connection is."""


def body(response: requests.Response, media_type: str) -> Iterator[bytes]:
    """The body's chunks, inflated where its Content-Encoding is gzip, or where it is gzip
    yet labelled as text (`media_type`) without one; else as they came. A gzip stream that
    breaks off or goes wrong is `BrokenGzip`; a body labelled gzip that is none is the
    server's lasting fault (ContentDecodingError)."""
    labelled = response.headers.get("Content-Encoding", "").strip().lower()
    gzip = labelled in _CODINGS
    chunks = _raw(response) if gzip else response.iter_content(1 << 16)
    first = next(chunks, b"")
    if gzip and first and first[:2] != _GZIP:
        raise requests.exceptions.ContentDecodingError(f"it does not start as gzip: {first[:2]!r}")
    unlabelled = not labelled and any(word in media_type for word in _TEXTUAL)
    if not (first[:2] == _GZIP and (gzip or unlabelled)):
        yield first
        yield from chunks
        return
    try:
        yield from _gunzip(chain((first,), chunks))
    except zlib.error as e:
        raise BrokenGzip(f"a gzip body broke off or went wrong: {e}") from e


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The inflated bytes of a gzip stream of one or more members; zlib.error where it ends
    before its last member does."""
    inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
    for chunk in chunks:
        while chunk:
            if out := inflate.decompress(chunk):  # b"" would read as the body's end
                yield out
            chunk = b""
            if inflate.eof and inflate.unused_data:  # the next member (`cat a.gz b.gz`)
                chunk = inflate.unused_data
                inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
    if out := inflate.flush():
        yield out
    if not inflate.eof:
        raise zlib.error("it ends before its gzip stream does")


def _raw(response: requests.Response) -> Iterator[bytes]:
    """The body as it came, not decoded, with urllib3's faults as requests names them (as
    `iter_content` does; its DecodeError cannot arise from a body not decoded)."""
    try:
        yield from response.raw.stream(1 << 16, decode_content=False)
    except urllib3.exceptions.ProtocolError as e:
        raise requests.exceptions.ChunkedEncodingError(e) from e
    except urllib3.exceptions.ReadTimeoutError as e:
        raise requests.exceptions.ConnectionError(e) from e
    except urllib3.exceptions.SSLError as e:  # a TLS record broken mid-body
        raise requests.exceptions.SSLError(e) from e
