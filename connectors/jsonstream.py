"""Stream the elements of one array in a JSON document, in batches, in bounded memory.

A FeatureCollection is one JSON object whose "features" array holds nearly all its bytes.
`orjson` parses fast but only whole documents; streaming parsers (ijson) keep memory flat but
run several times slower than the parse itself. This module gets both: one vectorised pass over
the bytes (numpy, window by window) finds where each element of the array
ends, outside strings, and cuts the array into batches of about `batch_bytes` that orjson
parses one at a time. Memory holds one window and one batch, whatever the size of the file.
"""

from __future__ import annotations

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

__all__ = ["JSONDocument", "open_json"]

BATCH_BYTES = 4 * 1024 * 1024
_INTERESTING = np.zeros(256, np.uint8)
for _c in b'{}[]"':
    _INTERESTING[_c] = 1
_KEY_BEFORE = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:\s*$')
_BOM = b"\xef\xbb\xbf"


def _escaped(a: np.ndarray, quote: int) -> bool:
    """Whether the quote at `quote` follows an odd run of backslashes."""
    n = 0
    while quote - n - 1 >= 0 and a[quote - n - 1] == 92:
        n += 1
    return n % 2 == 1


def _structure(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of brackets outside strings in `a` (which starts outside a string), and +1/-1."""
    at = np.flatnonzero(np.take(_INTERESTING, a))
    chars = a[at]
    quote = chars == 34
    if quote.any():
        quotes = at[quote]
        after_backslash = np.flatnonzero(a[np.maximum(quotes - 1, 0)] == 92)
        if after_backslash.size:
            escaped = [i for i in after_backslash.tolist() if _escaped(a, int(quotes[i]))]
            quote[np.flatnonzero(quote)[escaped]] = False
    inside = (np.cumsum(quote) & 1).astype(bool)  # after an opening quote, up to its closing one
    bracket = ~inside & (chars != 34)
    pos = at[bracket]
    opening = (chars[bracket] == 123) | (chars[bracket] == 91)
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
            chunk = self._buf[start:end].strip().lstrip(b",")
            if not chunk.strip():
                continue
            try:
                yield orjson.loads(b"[" + chunk + b"]")
            except orjson.JSONDecodeError as e:
                raise DataError(f"{self.path}: invalid JSON near byte {start + e.pos}: {e.msg}") from e

    def close(self) -> None:
        if self._buf is not None:
            self._buf.file.close()


def _key_before(buf: _Ranges, p: int) -> str | None:
    m = _KEY_BEFORE.search(buf[max(0, p - 512) : p])
    return m.group(1).decode("utf-8", "replace") if m else None


def _parsed_whole(path: Path, data: bytes, member: str | None) -> JSONDocument:
    try:
        doc = orjson.loads(data.removeprefix(_BOM))
    except orjson.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON near byte {e.pos}: {e.msg}") from e
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
        with f:
            f.seek(0)
            return _parsed_whole(path, f.read(), member)
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
    pos, depth, window = start, 0, batch_bytes
    while pos < size:
        end = min(size, pos + window)
        a = np.frombuffer(buf[pos:end], np.uint8)
        rel, signs = _structure(a)
        if rel.size == 0:
            if end == size:
                break
            window *= 2  # one string longer than the window
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
        pos += int(rel[-1]) + 1
        window = batch_bytes
    if depth != 0:
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
