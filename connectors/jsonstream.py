"""Stream the elements of one array in a JSON document, in batches, in bounded memory.

A FeatureCollection is one JSON object whose "features" array holds nearly all its bytes.
`orjson` parses fast but only whole documents; streaming parsers (ijson) keep memory flat but
run several times slower than the parse itself. This module gets both: one vectorised pass over
the bytes (numpy, window by window) finds where each element of the array
ends, outside strings, and cuts the array into batches of about `batch_bytes` that orjson
parses one at a time. Memory holds one window and one batch, whatever the size of the file:
whether a window starts inside a string is carried from the one before, so a string longer
than a window costs what other bytes cost. A batch orjson refuses is parsed element by
element, and an element it cannot read (NaN, Infinity, 1e309, a syntax error inside one
feature) becomes an `Unparsed` record, its text with the reason, instead of ending the run;
a fault between elements (a comma missing, doubled or trailing) refuses the document.
The scan is json_scan's (the bytes' structure json_structure's); this module parses its batches.

A document of at most `batch_bytes` is parsed whole instead (and scanned as above where orjson
refuses it); both ways accept the same documents and give the same result. Where a member name
repeats, the last one counts, as in orjson (and JavaScript, Python's json, most parsers): the
streamed array is the last member of that name, and a later member of that name that is not an
array means there is none.
"""

from __future__ import annotations

import codecs
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from citypipe.connectors import json_numbers
from citypipe.connectors.json_code_page import BLOCK, code_page, loads
from citypipe.connectors.json_scan import (
    BOM,
    EMPTY,
    MISSING_COMMA,
    WHITESPACE,
    Ranges,
    fault,
    scan,
    streamed_array,
)
from citypipe.connectors.json_structure import SEPARATORS, Strings, outside_strings
from citypipe.connectors.text import option_codec
from citypipe.geo.errors import DataError

__all__ = [
    "BATCH_BYTES", "JSONDocument", "Unparsed", "open_json", "unparsed", "utf8_input"
]  # fmt: skip

BATCH_BYTES = 4 * 1024 * 1024


class Unparsed(str):
    """An element of the streamed array that orjson cannot read (NaN, Infinity, a number beyond
    a double, a syntax error inside one feature): its text as read, and why."""

    reason: str


def unparsed(text: bytes, error: orjson.JSONDecodeError) -> Unparsed:
    try:  # Python's parser takes the numbers JSON has not: then they are the reason
        json.loads(text)
        why = "holds NaN, Infinity or a number beyond ±1.8e308, which JSON does not have"
    except (ValueError, RecursionError):
        why = f"not valid JSON: {error.msg}"
    out = Unparsed(text.decode("utf-8", "replace"))
    out.reason = why
    return out


def _one_by_one(path: Path, text: bytearray, offset: int) -> list[Any]:
    """The elements of a JSON array text parsed one at a time: those orjson refuses become
    `Unparsed`, so that one bad record does not take its batch with it.

    An element is one value, a scalar or one object or array: text between two commas that is
    more than that (`{…} {…}`, `{…} 5`), or nothing at all, is a fault between elements, which
    refuses the document wherever the batches are cut."""
    a = np.frombuffer(text, np.uint8)
    pos, chars = outside_strings(a, Strings(), SEPARATORS)
    comma = chars == 44
    depth = np.cumsum(np.where(comma, 0, np.where((chars == 123) | (chars == 91), 1, -1)))
    # the opening bracket, the commas between elements, the closing bracket
    bounds = np.flatnonzero(((depth == 1) & comma) | (pos == len(text) - 1))
    out: list[Any] = []
    widened = False
    for lo, hi in pairwise([0, *bounds.tolist()]):
        start, end = int(pos[lo]), int(pos[hi])
        element = bytes(text[start + 1 : end]).strip(WHITESPACE)
        if not element:
            raise DataError(fault(path, offset + start, EMPTY))
        try:
            value, wide = json_numbers.loads(element)
            out.append(value)
            widened |= wide
            continue
        except orjson.JSONDecodeError as e:
            error = e
        closed = pos[lo + 1 + np.flatnonzero(depth[lo + 1 : hi] == 1)]  # its outermost ends
        if closed.size:  # one object or array: it opens the element and its end closes it
            last = start + len(text[start + 1 : end].rstrip(WHITESPACE))
            if closed.size > 1 or element[0] not in b"[{" or closed[0] != last:
                raise DataError(fault(path, offset + int(closed[0]) + 1, MISSING_COMMA))
        out.append(unparsed(element, error))
    return json_numbers.Widened(out) if widened else out


def _parse_batches(
    path: Path, buf: Ranges, cuts: list[int], records: bool = True
) -> Iterator[list[Any]]:
    """The elements between each two cuts of an array, a list per batch. With `records`, an
    element orjson refuses is `Unparsed`; without, it refuses the document (an array that is
    not read, which must still be JSON)."""
    for k, (start, end) in enumerate(pairwise(cuts)):
        text = buf.elements(start, end, first=k == 0)
        if text is None:  # an empty array, or whitespace before its closing bracket
            continue
        try:
            batch = json_numbers.loads(text)[0]
        except orjson.JSONDecodeError as e:
            if not records:
                raise DataError(
                    f"{path}: invalid JSON near byte {start - 1 + e.pos}: {e.msg}"
                ) from e
            batch = _one_by_one(path, text, start - 1)
        del text  # before the batch is used: it may be as large
        yield batch


@dataclass
class JSONDocument:
    """A JSON document on disk: its top level without the streamed array, and that array's
    batches."""

    path: Path
    header: Any
    has_array: bool
    count: int
    """Objects and arrays in the streamed array (scalars are not counted)."""
    _buf: Ranges | None = field(repr=False)
    _cuts: list[int] = field(repr=False, default_factory=list)
    _parsed: list[Any] | None = field(repr=False, default=None)
    codec: str | None = None
    """The code page a document that is not UTF-8 was read in (`loads`); None for UTF-8."""

    def batches(self) -> Iterator[list[Any]]:
        """The elements of the streamed array, a list per batch (nothing when there is no array)."""
        if self._parsed is not None:
            yield self._parsed
        elif self._buf is not None:
            yield from _parse_batches(self.path, self._buf, self._cuts)

    def close(self) -> None:
        if self._buf is not None:
            self._buf.file.close()


def _declared(path: Path, encoding: str | None) -> str | None:
    """The code page an `encoding` option names; None for none, and for UTF-8, JSON's own."""
    if encoding is None:
        return None
    name = option_codec(path, encoding)
    return None if name in ("utf-8", "utf-8-sig") else name


def _transcoded(f: BinaryIO, codec: str) -> BinaryIO:
    """`f`'s text in UTF-8, in a temporary file (removed when closed); `f` is closed."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - the document's file until it is closed
    decode = codecs.getincrementaldecoder(codec)().decode
    with f:
        while block := f.read(BLOCK):
            out.write(decode(block).encode("utf-8"))
    out.seek(0)
    return out


def utf8_input(path: Path, f: BinaryIO, encoding: str | None) -> tuple[BinaryIO, str | None]:
    """`f` (from its start) as UTF-8, and the code page it is read in (None: UTF-8): the one an
    `encoding` option names, else the one of text in a code page throughout (`json_code_page`).
    A transcoded copy is a temporary file, which closes `f`; a byte the option's code page
    does not decode refuses the file."""
    declared = _declared(path, encoding)
    if declared is not None:
        return _in_declared(path, f, declared), declared
    codec = code_page(f)
    return (f, None) if codec is None else (_transcoded(f, codec), codec)


def _in_declared(path: Path, f: BinaryIO, codec: str) -> BinaryIO:
    """`f` transcoded from the code page its `encoding` option names, which must decode it."""
    f.seek(0)
    try:
        return _transcoded(f, codec)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not {codec} as its encoding option says: {e}") from e


def _parsed_whole(
    path: Path, doc: Any, member: str | None, wide: bool, codec: str | None
) -> JSONDocument:
    array = streamed_array(doc, member)
    if wide and array is not None:
        array = json_numbers.Widened(array)
    if array is None:
        return JSONDocument(path, doc, False, 0, None, codec=codec)
    header = [] if member is None else {**doc, member: []}
    types = Counter(map(type, array))
    count = types[dict] + types[list]
    return JSONDocument(path, header, True, count, None, _parsed=array, codec=codec)


def open_json(
    path: Path,
    member: str | None,
    batch_bytes: int = BATCH_BYTES,
    opener: Callable[[], BinaryIO] | None = None,
    encoding: str | None = None,
) -> JSONDocument:
    """Scan the document at `path` for the array to stream.

    `member` names the array inside the top-level object (e.g. "features"; without quotes or
    backslashes); None streams a top-level array. When the document has no such array,
    `header` is the whole document. A document of at most `batch_bytes` is parsed whole.
    `opener` opens the file (a connector's `open_input`, which tells how far it is read).
    `encoding` is the document's as its source declares it (a catalog option), found from its
    bytes where not given; a byte it does not decode refuses the document.
    """
    try:
        f = opener() if opener else open(path, "rb")  # noqa: SIM115 - kept open until closed
    except OSError as e:
        raise DataError(f"{path}: cannot be read: {e.strerror or e}") from e
    size = f.seek(0, 2)
    if size == 0:
        f.close()
        raise DataError(f"{path}: the file is empty")
    declared = _declared(path, encoding)
    if declared is not None:
        f = _in_declared(path, f, declared)
        size = f.seek(0, 2)
    if size <= batch_bytes:  # one batch anyway: parse it whole, nothing to scan for
        f.seek(0)
        try:
            doc, wide, codec = loads(f.read().removeprefix(BOM))
        except orjson.JSONDecodeError:
            pass  # a record orjson cannot read, or a broken document: the scan tells which
        else:
            f.close()
            return _parsed_whole(path, doc, member, wide, codec or declared)
    codec = declared or code_page(f)  # both ways read a document in a code page alike
    if codec is not None and declared is None:
        f = _transcoded(f, codec)
        size = f.seek(0, 2)
    buf = Ranges(path, f, size)
    try:
        doc = _from_scan(path, buf, member, batch_bytes)
    except BaseException:
        f.close()
        raise
    doc.codec = codec
    return doc


def _from_scan(path: Path, buf: Ranges, member: str | None, batch_bytes: int) -> JSONDocument:
    """The document as the scan finds it; the arrays that are not streamed must still be JSON,
    as in a whole parse."""
    header, arrays = scan(path, buf, member, batch_bytes)
    streamed = arrays[-1] if streamed_array(header, member) is not None else None
    for array in arrays:
        if array is not streamed:
            for _ in _parse_batches(path, buf, array.cuts, records=False):
                pass
    if streamed is None:  # none, or the last member of that name is not an array
        return JSONDocument(path, header, False, 0, buf)
    return JSONDocument(path, header, True, streamed.count, buf, streamed.cuts)
