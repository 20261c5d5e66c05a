"""The scan of a JSON document on disk for the array to stream: where it opens and closes, and
where it is cut into batches of about `batch_bytes`, at the ends of its elements.

The file is read in windows with pread (`Ranges`) and its brackets found outside strings with
numpy (json_structure). Every array at the streamed array's depth that may be it (each element
of a top-level array, or each top-level member of its name) is found; the document without
them is parsed whole, so that the last member of that name decides, as in a whole parse.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

from citypipe.connectors.json_structure import Strings, structure
from citypipe.geo.errors import DataError

__all__ = [
    "BOM",
    "EMPTY",
    "MISSING_COMMA",
    "WHITESPACE",
    "Array",
    "Ranges",
    "fault",
    "scan",
    "streamed_array",
]

_NON_BLANK = re.compile(rb"[^ \t\r\n]")
BOM = b"\xef\xbb\xbf"
WHITESPACE = b" \t\n\r"
"""JSON's whitespace (RFC 8259), which may stand anywhere between tokens, in any amount."""

EMPTY, MISSING_COMMA = "an empty array element", "a comma missing between array elements"


def fault(path: Path, at: int, what: str) -> str:
    """The message for a fault between the elements of an array, near byte `at`."""
    return f"{path}: invalid JSON near byte {at}: {what}"


@dataclass
class Ranges:
    """Byte ranges of an open file, read with pread.

    Not a memory map: the pages of a mapped file stay in the process's resident memory once
    touched, so memory would grow with the file after all.
    """

    def __init__(self, path: Path, f: Any, size: int) -> None:
        self.path, self.file, self.size = path, f, size

    def __getitem__(self, s: slice) -> bytes:
        start, stop = s.start or 0, self.size if s.stop is None else s.stop
        return os.pread(self.file.fileno(), max(0, stop - start), start)

    def elements(self, start: int, end: int, first: bool) -> bytearray | None:
        """Bytes `start:end` (elements of an array) as a JSON array in one buffer, read into
        place: no copies of a batch that may be one huge record. None when they hold nothing
        but whitespace.

        A batch after the `first` starts with the comma after the one before's last element:
        it is taken out, and where it is missing or no element follows it, the document is
        refused, as a whole parse refuses it."""
        text = bytearray(end - start + 2)
        text[0], text[-1] = ord("["), ord("]")
        os.preadv(self.file.fileno(), [memoryview(text)[1:-1]], start)
        lead = _non_blank(text, 1)  # at the latest, the closing bracket
        if not first and lead < len(text) - 1:
            if text[lead] != ord(","):
                raise DataError(fault(self.path, start + lead - 1, MISSING_COMMA))
            text[lead] = ord(" ")
            lead = _non_blank(text, lead)
            if lead == len(text) - 1:
                raise DataError(fault(self.path, end, EMPTY))
        return None if lead == len(text) - 1 else text


def _non_blank(text: bytearray, at: int) -> int:
    """Where the first byte from `at` that is not JSON whitespace is (`text` ends with one)."""
    found = _NON_BLANK.search(text, at)
    assert found is not None
    return found.start()


def streamed_array(doc: Any, member: str | None) -> list[Any] | None:
    """The array to stream in a parsed document (the top level, or its member), else None."""
    array = doc if member is None else doc.get(member) if isinstance(doc, dict) else None
    return array if isinstance(array, list) else None


def _end_before(buf: Ranges, p: int, floor: int) -> int:
    """Where the text before `p` ends without its JSON whitespace (`floor` if it is all that)."""
    step = 64
    while p > floor:
        lo = max(floor, p - step)
        text = buf[lo:p].rstrip(WHITESPACE)
        if text:
            return lo + len(text)
        p, step = lo, step * 2  # a long run of whitespace: look further back, in growing steps
    return floor


def _backslashes_before(buf: Ranges, p: int, floor: int) -> int:
    """How many backslashes stand right before `p`: an odd number escapes what is at `p`."""
    n, step = 0, 64
    while p > floor:
        lo = max(floor, p - step)
        text = buf[lo:p]
        run = len(text) - len(text.rstrip(b"\\"))
        n += run
        if run < len(text):
            break
        p, step = lo, step * 2
    return n


def _is_member(buf: Ranges, p: int, floor: int, member: str) -> bool:
    """Whether the array opening at `p` (at depth 2) is the value of a top-level member named
    `member`, however its name is escaped and whatever whitespace stands around the colon."""
    colon = _end_before(buf, p, floor) - 1
    if colon < floor or buf[colon : colon + 1] != b":":
        return False  # an element of a top-level array
    quote = _end_before(buf, colon, floor) - 1
    if quote < floor or buf[quote : quote + 1] != b'"':
        return False
    longest = 12 * len(member)  # JSON escapes take at most 12 bytes a character (\uXXXX\uXXXX)
    name = buf[max(floor, quote - longest - 1) : quote]
    opening = name.rfind(b'"')
    if opening < 0 or _backslashes_before(buf, quote - len(name) + opening, floor) % 2:
        return False  # longer than any spelling of `member`, or holds a quote it does not
    try:
        return orjson.loads(name[opening:] + b'"') == member
    except orjson.JSONDecodeError:
        return False


@dataclass
class Array:
    """An array the scan found where the streamed one may be: where it opens and closes, where
    its batches are cut, and how many objects and arrays it holds."""

    opening: int
    cuts: list[int]
    count: int = 0
    closing: int = -1


class _Window(NamedTuple):
    """The brackets of one window of the file, outside strings."""

    pos: int
    """Where the window starts in the file."""
    a: np.ndarray
    rel: np.ndarray
    """Where its brackets are, from `pos`."""
    signs: np.ndarray
    """+1 for an opening bracket, -1 for a closing one."""
    after: np.ndarray
    """The depth after each bracket."""


class _Finder:
    """The arrays at the streamed array's depth, found window by window."""

    def __init__(self, buf: Ranges, member: str | None, start: int) -> None:
        self.buf, self.member, self.start = buf, member, start
        self.inner = 1 if member is None else 2  # depth of the streamed array's elements
        self.arrays: list[Array] = []
        self.current: Array | None = None

    def window(self, w: _Window) -> None:
        i: int | None = 0  # the window's brackets before i belong to arrays already seen
        while i is not None and i < w.rel.size:
            i = self._open(w, i) if self.current is None else self._close(w, i, self.current)

    def _open(self, w: _Window, i: int) -> int | None:
        """Where the window goes on after the next array that may be the streamed one opens;
        None when none opens in it."""
        opens = np.flatnonzero(
            (w.signs[i:] == 1) & (w.after[i:] == self.inner) & (w.a[w.rel[i:]] == 91)
        )
        found = next(
            (i + int(k) for k in opens if self._candidate(w.pos + int(w.rel[i + k]))), None
        )
        if found is None:
            return None
        opening = w.pos + int(w.rel[found])
        self.current = Array(opening, [opening + 1])
        return found + 1

    def _candidate(self, opening: int) -> bool:
        return self.member is None or _is_member(self.buf, opening, self.start, self.member)

    def _close(self, w: _Window, i: int, current: Array) -> int | None:
        """Count the elements of the current array in the window and cut it after the last;
        where it closes in the window, where the window goes on after it, else None."""
        closes = w.signs[i:] == -1
        done = np.flatnonzero(closes & (w.after[i:] == self.inner - 1))
        stop = i + int(done[0]) if done.size else w.rel.size
        ends = np.flatnonzero(closes[: stop - i] & (w.after[i:stop] == self.inner))
        current.count += ends.size
        if not done.size:
            if ends.size:
                current.cuts.append(w.pos + int(w.rel[i + int(ends[-1])]) + 1)
            return None
        current.closing = w.pos + int(w.rel[stop])
        if w.a[w.rel[stop]] != 93:
            at = current.closing
            raise DataError(f"{self.buf.path}: invalid JSON: an array closed by '}}' at byte {at}")
        current.cuts.append(current.closing)
        self.arrays.append(current)
        self.current = None
        return stop + 1


def scan(path: Path, buf: Ranges, member: str | None, batch_bytes: int) -> tuple[Any, list[Array]]:
    """The document without its candidate arrays (each left as `[]`), and those arrays; the
    streamed one is the last of them, where the document's `member` is an array."""
    size = buf.size
    start = 3 if buf[:3] == BOM else 0
    finder = _Finder(buf, member, start)
    pos, depth, strings = start, 0, Strings()
    while pos < size:
        end = min(size, pos + batch_bytes)
        a = np.frombuffer(buf[pos:end], np.uint8)
        rel, signs = structure(a, strings)
        if rel.size:  # else inside a long string, or between brackets
            after = depth + np.cumsum(signs, dtype=np.int64)
            if (after < 0).any():
                at = pos + int(rel[np.argmax(after < 0)])
                raise DataError(f"{path}: invalid JSON: unbalanced brackets near byte {at}")
            finder.window(_Window(pos, a, rel, signs, after))
            depth = int(after[-1])
        pos = end
    if depth != 0 or strings.inside:
        raise DataError(
            f"{path}: invalid JSON: the document ends before it is complete (truncated?)"
        )
    return _header(path, buf, start, finder.arrays), finder.arrays


def _header(path: Path, buf: Ranges, start: int, arrays: list[Array]) -> Any:
    """The document parsed with every candidate array left out, as `[]`."""
    rest, at = [], start
    for array in arrays:
        rest += [buf[at : array.opening], b"[]"]
        at = array.closing + 1
    rest.append(buf[at:])
    try:
        return orjson.loads(b"".join(rest))
    except orjson.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON: {e.msg}") from e
