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
feature) becomes an `Unparsed` record, its text with the reason, instead of ending the run.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from connectors.errors import DataError

__all__ = ["JSONDocument", "Unparsed", "open_json"]

BATCH_BYTES = 4 * 1024 * 1024
_INTERESTING = np.zeros(256, np.uint8)
for _c in b'{}[]"':
    _INTERESTING[_c] = 1
_SEPARATORS = _INTERESTING.copy()
_SEPARATORS[ord(",")] = 1
_KEY_BEFORE = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:\s*$')
_NON_BLANK = re.compile(rb"[^ \t\r\n]")
_BOM = b"\xef\xbb\xbf"


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

    def __init__(self, f: Any, size: int) -> None:
        self.file, self.size = f, size

    def __getitem__(self, s: slice) -> bytes:
        start, stop = s.start or 0, self.size if s.stop is None else s.stop
        return os.pread(self.file.fileno(), max(0, stop - start), start)

    def elements(self, start: int, end: int) -> bytearray | None:
        """Bytes `start:end` (elements of the array, a comma before the first) as a JSON array
        in one buffer, read into place: no copies of a batch that may be one huge record.
        None when they hold nothing but whitespace."""
        text = bytearray(end - start + 2)
        text[0], text[-1] = ord("["), ord("]")
        os.preadv(self.file.fileno(), [memoryview(text)[1:-1]], start)
        first = _NON_BLANK.search(text, 1)
        if first is None or first.start() == len(text) - 1:
            return None
        if text[first.start()] == ord(","):
            text[first.start()] = ord(" ")
        return text


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
    `Unparsed`, so that one bad record does not take its batch with it."""
    a = np.frombuffer(text, np.uint8)
    pos, chars = _outside_strings(a, _Strings(), _SEPARATORS)
    comma = chars == 44
    depth = np.cumsum(np.where(comma, 0, np.where((chars == 123) | (chars == 91), 1, -1)))
    ends = pos[((depth == 1) & comma) | (pos == len(text) - 1)]  # commas between, last bracket
    out: list[Any] = []
    for start, end in zip([0, *ends[:-1].tolist()], ends.tolist()):
        element = bytes(text[start + 1 : end]).strip()
        if not element:
            where = offset + start
            raise DataError(f"{path}: invalid JSON near byte {where}: an empty array element")
        try:
            out.append(orjson.loads(element))
        except orjson.JSONDecodeError as e:
            out.append(_unparsed(element, e))
    return out


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
            return
        for start, end in zip(self._cuts, self._cuts[1:]):
            assert self._buf is not None
            text = self._buf.elements(start, end)
            if text is None:
                continue
            try:
                batch = orjson.loads(text)
            except orjson.JSONDecodeError:
                batch = _one_by_one(self.path, text, start - 1)
            del text  # before the batch is used: it may be as large
            yield batch

    def close(self) -> None:
        if self._buf is not None:
            self._buf.file.close()


def _key_before(buf: _Ranges, p: int) -> str | None:
    m = _KEY_BEFORE.search(buf[max(0, p - 512) : p])
    return m.group(1).decode("utf-8", "replace") if m else None


def _parsed_whole(path: Path, doc: Any, member: str | None) -> JSONDocument:
    if member is None:
        array, header = (doc, []) if isinstance(doc, list) else (None, doc)
    else:
        array = doc.get(member) if isinstance(doc, dict) else None
        header = {**doc, member: []} if isinstance(array, list) else doc
    if not isinstance(array, list):
        return JSONDocument(path, header, False, 0, None)
    types = Counter(map(type, array))
    count = types[dict] + types[list]
    return JSONDocument(path, header, True, count, None, _parsed=array)


def open_json(path: Path, member: str | None, batch_bytes: int = BATCH_BYTES) -> JSONDocument:
    """Scan the document at `path` for the array to stream.

    `member` names the array inside the top-level object (e.g. "features"); None streams a
    top-level array. When the document has no such array, `header` is the whole document.
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
    buf = _Ranges(f, size)
    try:
        return _scan(path, buf, member, batch_bytes)
    except BaseException:
        f.close()
        raise


def _scan(path: Path, buf: _Ranges, member: str | None, batch_bytes: int) -> JSONDocument:
    size = buf.size
    start = 3 if buf[:3] == _BOM else 0
    inner = 1 if member is None else 2  # depth of the streamed array's elements
    arr_open = arr_close = None
    cuts: list[int] = []
    count = 0
    pos, depth, strings = start, 0, _Strings()
    while pos < size:
        end = min(size, pos + batch_bytes)
        a = np.frombuffer(buf[pos:end], np.uint8)
        rel, signs = _structure(a, strings)
        if rel.size == 0:  # inside a long string, or between brackets
            pos = end
            continue
        after = depth + np.cumsum(signs, dtype=np.int64)
        if arr_open is None:
            for i in np.flatnonzero((signs == 1) & (after == inner)):
                p = pos + int(rel[i])
                if buf[p : p + 1] == b"[" and (member is None or _key_before(buf, p) == member):
                    arr_open = p
                    cuts.append(p + 1)
                    break
        if arr_open is not None and arr_close is None:
            closes = (signs == -1) & (pos + rel > arr_open)
            done = np.flatnonzero(closes & (after == inner - 1))
            if done.size:
                arr_close = pos + int(rel[done[0]])
                closes &= pos + rel < arr_close
            elem_ends = np.flatnonzero(closes & (after == inner))
            count += elem_ends.size
            if arr_close is not None:
                cuts.append(arr_close)
            elif elem_ends.size:
                cuts.append(pos + int(rel[elem_ends[-1]]) + 1)
        if (after < 0).any():
            raise DataError(f"{path}: invalid JSON: unbalanced brackets near byte {pos + int(rel[np.argmax(after < 0)])}")
        depth = int(after[-1])
        pos = end
    if depth != 0 or strings.inside:
        raise DataError(f"{path}: invalid JSON: the document ends before it is complete (truncated?)")
    if arr_open is not None and arr_close is not None:
        rest = buf[start:arr_open] + b"[]" + buf[arr_close + 1 :]
    else:
        rest, cuts = buf[start:], []
    try:
        header = orjson.loads(rest)
    except orjson.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON: {e.msg}") from e
    return JSONDocument(path, header, arr_open is not None, count, buf, cuts)
