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

A document of at most `batch_bytes` is parsed whole instead (and scanned as above where orjson
refuses it); both ways accept the same documents and give the same result. Where a member name
repeats, the last one counts, as in orjson (and JavaScript, Python's json, most parsers): the
streamed array is the last member of that name, and a later member of that name that is not an
array means there is none.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from citypipe.geo.errors import DataError

__all__ = ["JSONDocument", "Unparsed", "open_json"]

BATCH_BYTES = 4 * 1024 * 1024
_INTERESTING = np.zeros(256, np.uint8)
for _c in b'{}[]"':
    _INTERESTING[_c] = 1
_SEPARATORS = _INTERESTING.copy()
_SEPARATORS[ord(",")] = 1
_NON_BLANK = re.compile(rb"[^ \t\r\n]")
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\n\r"
"""JSON's whitespace (RFC 8259), which may stand anywhere between tokens, in any amount."""


@dataclass
class _Strings:
    """Where a window starts with respect to strings: inside one or not, and after an odd run of
    backslashes (its first byte escaped). Carried from window to window, so that a string longer
    than a window costs no more than other bytes."""

    inside: bool = False
    odd_backslashes: bool = False


def _escaped_quotes(a: np.ndarray, quotes: np.ndarray, state: _Strings) -> np.ndarray:
    """Which of the quotes at `quotes` follow an odd run of backslashes, found from the runs'
    ends with array operations: a string of a million escaped quotes costs no Python per quote."""
    after = a[np.maximum(quotes - 1, 0)] == 92
    after[quotes == 0] = state.odd_backslashes
    if not after.any():
        return after
    slashes = np.flatnonzero(a == 92)
    if not slashes.size:  # only a first quote, escaped by the window before
        return after
    step = np.diff(slashes) != 1
    starts = slashes[np.concatenate([[True], step])]
    ends = slashes[np.concatenate([step, [True]])]
    length = ends - starts + 1
    if starts[0] == 0:  # the run goes on from the window before
        length[0] += state.odd_backslashes
    escaped = np.zeros(len(a) + 1, bool)  # the byte after an odd run is escaped
    escaped[ends[length % 2 == 1] + 1] = True
    escaped[0] = state.odd_backslashes
    return escaped[quotes]


def _outside_strings(
    a: np.ndarray, state: _Strings, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and bytes of the characters `table` marks (quotes aside) outside strings in
    `a`; `state` says where `a` starts, and is updated to where the next window starts."""
    at = np.flatnonzero(np.take(table, a))
    chars = a[at]
    quote = chars == 34
    if quote.any():
        quote[np.flatnonzero(quote)[_escaped_quotes(a, at[quote], state)]] = False
    opened = np.cumsum(quote) + state.inside  # quotes so far: odd inside a string
    keep = (opened & 1 == 0) & ~quote
    if len(opened):
        state.inside = bool(opened[-1] & 1)
    if len(a) and a[-1] == 92:  # the run of backslashes the window ends with
        tail = a[::-1] != 92
        run = int(tail.argmax()) if tail.any() else len(a) + state.odd_backslashes
        state.odd_backslashes = run % 2 == 1
    else:
        state.odd_backslashes = False
    return at[keep], chars[keep]


def _structure(a: np.ndarray, state: _Strings) -> tuple[np.ndarray, np.ndarray]:
    """Positions of brackets outside strings in `a`, and +1/-1."""
    pos, chars = _outside_strings(a, state, _INTERESTING)
    opening = (chars == 123) | (chars == 91)
    return pos, np.where(opening, 1, -1).astype(np.int8)


@dataclass
class _Ranges:
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
        lead = _NON_BLANK.search(text, 1).start()  # at the latest, the closing bracket
        if not first and lead < len(text) - 1:
            if text[lead] != ord(","):
                raise DataError(_fault(self.path, start + lead - 1, _MISSING_COMMA))
            text[lead] = ord(" ")
            lead = _NON_BLANK.search(text, lead).start()
            if lead == len(text) - 1:
                raise DataError(_fault(self.path, end, _EMPTY))
        return None if lead == len(text) - 1 else text


_EMPTY, _MISSING_COMMA = "an empty array element", "a comma missing between array elements"


def _fault(path: Path, at: int, what: str) -> str:
    """The message for a fault between the elements of an array, near byte `at`."""
    return f"{path}: invalid JSON near byte {at}: {what}"


class Unparsed(str):
    """An element of the streamed array that orjson cannot read (NaN, Infinity, a number beyond
    a double, a syntax error inside one feature): its text as read, and why."""

    reason: str


def _unparsed(text: bytes, error: orjson.JSONDecodeError) -> Unparsed:
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
    pos, chars = _outside_strings(a, _Strings(), _SEPARATORS)
    comma = chars == 44
    depth = np.cumsum(np.where(comma, 0, np.where((chars == 123) | (chars == 91), 1, -1)))
    # the opening bracket, the commas between elements, the closing bracket
    bounds = np.flatnonzero(((depth == 1) & comma) | (pos == len(text) - 1))
    out: list[Any] = []
    for lo, hi in pairwise([0, *bounds.tolist()]):
        start, end = int(pos[lo]), int(pos[hi])
        element = bytes(text[start + 1 : end]).strip(_WHITESPACE)
        if not element:
            raise DataError(_fault(path, offset + start, _EMPTY))
        try:
            out.append(orjson.loads(element))
            continue
        except orjson.JSONDecodeError as e:
            error = e
        closed = pos[lo + 1 + np.flatnonzero(depth[lo + 1 : hi] == 1)]  # its outermost ends
        if closed.size:  # one object or array: it opens the element and its end closes it
            last = start + len(text[start + 1 : end].rstrip(_WHITESPACE))
            if closed.size > 1 or element[0] not in b"[{" or closed[0] != last:
                raise DataError(_fault(path, offset + int(closed[0]) + 1, _MISSING_COMMA))
        out.append(_unparsed(element, error))
    return out


def _parse_batches(
    path: Path, buf: _Ranges, cuts: list[int], records: bool = True
) -> Iterator[list[Any]]:
    """The elements between each two cuts of an array, a list per batch. With `records`, an
    element orjson refuses is `Unparsed`; without, it refuses the document (an array that is
    not read, which must still be JSON)."""
    for k, (start, end) in enumerate(pairwise(cuts)):
        text = buf.elements(start, end, first=k == 0)
        if text is None:  # an empty array, or whitespace before its closing bracket
            continue
        try:
            batch = orjson.loads(text)
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
    """A JSON document on disk: its top level without the streamed array, and that array's batches."""

    path: Path
    header: Any
    has_array: bool
    count: int
    """Objects and arrays in the streamed array (scalars are not counted)."""
    _buf: _Ranges | None = field(repr=False)
    _cuts: list[int] = field(repr=False, default_factory=list)
    _parsed: list[Any] | None = field(repr=False, default=None)

    def batches(self) -> Iterator[list[Any]]:
        """The elements of the streamed array, a list per batch (nothing when there is no array)."""
        if self._parsed is not None:
            yield self._parsed
        elif self._buf is not None:
            yield from _parse_batches(self.path, self._buf, self._cuts)

    def close(self) -> None:
        if self._buf is not None:
            self._buf.file.close()


def _parsed_whole(path: Path, doc: Any, member: str | None) -> JSONDocument:
    array = _streamed(doc, member)
    if array is None:
        return JSONDocument(path, doc, False, 0, None)
    header = [] if member is None else {**doc, member: []}
    types = Counter(map(type, array))
    count = types[dict] + types[list]
    return JSONDocument(path, header, True, count, None, _parsed=array)


def _streamed(doc: Any, member: str | None) -> list[Any] | None:
    """The array to stream in a parsed document (the top level, or its member), else None."""
    array = doc if member is None else doc.get(member) if isinstance(doc, dict) else None
    return array if isinstance(array, list) else None


def open_json(path: Path, member: str | None, batch_bytes: int = BATCH_BYTES) -> JSONDocument:
    """Scan the document at `path` for the array to stream.

    `member` names the array inside the top-level object (e.g. "features"; without quotes or
    backslashes); None streams a top-level array. When the document has no such array,
    `header` is the whole document. A document of at most `batch_bytes` is parsed whole.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - a streamed document keeps it open until closed
    except OSError as e:
        raise DataError(f"{path}: cannot be read: {e.strerror or e}") from e
    size = f.seek(0, 2)
    if size == 0:
        f.close()
        raise DataError(f"{path}: the file is empty")
    if size <= batch_bytes:  # one batch anyway: parse it whole, nothing to scan for
        f.seek(0)
        try:
            doc = orjson.loads(f.read().removeprefix(_BOM))
        except orjson.JSONDecodeError:
            pass  # a record orjson cannot read, or a broken document: the scan tells which
        else:
            f.close()
            return _parsed_whole(path, doc, member)
    buf = _Ranges(path, f, size)
    try:
        return _scan(path, buf, member, batch_bytes)
    except BaseException:
        f.close()
        raise


def _end_before(buf: _Ranges, p: int, floor: int) -> int:
    """Where the text before `p` ends without its JSON whitespace (`floor` if it is all that)."""
    step = 64
    while p > floor:
        lo = max(floor, p - step)
        text = buf[lo:p].rstrip(_WHITESPACE)
        if text:
            return lo + len(text)
        p, step = lo, step * 2  # a long run of whitespace: look further back, in growing steps
    return floor


def _backslashes_before(buf: _Ranges, p: int, floor: int) -> int:
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


def _is_member(buf: _Ranges, p: int, floor: int, member: str) -> bool:
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
class _Array:
    """An array the scan found where the streamed one may be: where it opens and closes, where
    its batches are cut, and how many objects and arrays it holds."""

    opening: int
    cuts: list[int]
    count: int = 0
    closing: int = -1


def _scan(path: Path, buf: _Ranges, member: str | None, batch_bytes: int) -> JSONDocument:
    size = buf.size
    start = 3 if buf[:3] == _BOM else 0
    inner = 1 if member is None else 2  # depth of the streamed array's elements
    arrays: list[_Array] = []
    current: _Array | None = None
    pos, depth, strings = start, 0, _Strings()
    while pos < size:
        end = min(size, pos + batch_bytes)
        a = np.frombuffer(buf[pos:end], np.uint8)
        rel, signs = _structure(a, strings)
        if rel.size == 0:  # inside a long string, or between brackets
            pos = end
            continue
        after = depth + np.cumsum(signs, dtype=np.int64)
        if (after < 0).any():
            at = pos + int(rel[np.argmax(after < 0)])
            raise DataError(f"{path}: invalid JSON: unbalanced brackets near byte {at}")
        i = 0  # the window's brackets before i belong to arrays already seen
        while i < rel.size:
            if current is None:
                opens = np.flatnonzero((signs[i:] == 1) & (after[i:] == inner) & (a[rel[i:]] == 91))
                found = next(
                    (i + int(k) for k in opens
                     if member is None or _is_member(buf, pos + int(rel[i + k]), start, member)),
                    None,
                )  # fmt: skip
                if found is None:
                    break
                current = _Array(pos + int(rel[found]), [pos + int(rel[found]) + 1])
                i = found + 1
                continue
            closes = signs[i:] == -1
            done = np.flatnonzero(closes & (after[i:] == inner - 1))
            stop = i + int(done[0]) if done.size else rel.size
            ends = np.flatnonzero(closes[: stop - i] & (after[i:stop] == inner))
            current.count += ends.size
            if not done.size:
                if ends.size:
                    current.cuts.append(pos + int(rel[i + int(ends[-1])]) + 1)
                break
            current.closing = pos + int(rel[stop])
            if a[rel[stop]] != 93:
                at = current.closing
                raise DataError(f"{path}: invalid JSON: an array closed by '}}' at byte {at}")
            current.cuts.append(current.closing)
            arrays.append(current)
            current, i = None, stop + 1
        depth = int(after[-1])
        pos = end
    if depth != 0 or strings.inside:
        raise DataError(
            f"{path}: invalid JSON: the document ends before it is complete (truncated?)"
        )
    rest, at = [], start
    for array in arrays:  # every candidate left out, as `[]`: the last of them is streamed
        rest += [buf[at : array.opening], b"[]"]
        at = array.closing + 1
    rest.append(buf[at:])
    try:
        header = orjson.loads(b"".join(rest))
    except orjson.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON: {e.msg}") from e
    streamed = arrays[-1] if _streamed(header, member) is not None else None
    for array in arrays:  # the others are left out, but must be valid JSON, as in a whole parse
        if array is not streamed:
            for _ in _parse_batches(path, buf, array.cuts, records=False):
                pass
    if streamed is None:  # none, or the last member of that name is not an array
        return JSONDocument(path, header, False, 0, buf)
    return JSONDocument(path, header, True, streamed.count, buf, streamed.cuts)
