"""CityObject ids given twice in a CityJSON document's CityObjects: JSON parsers (orjson here,
Python's json in cjio) keep the last silently, so the earlier objects would be lost unsaid.

The CityJSON specification makes each City Object's identifier its key in "CityObjects", unique
in the file; RFC 8259 (section 4) says only that names SHOULD be unique, and that parsers
differ where they are not. The members of "CityObjects" are counted in the bytes (colons one
level inside it, outside strings, found with numpy: json_structure), and only where that count
is not the parsed object's are the ids found, by a parse that keeps every pair.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

from citypipe.connectors.json_structure import Strings, outside_strings

__all__ = ["repeated"]

_KEY = b'"CityObjects"'
_BLANK = b" \t\r\n"
"""JSON's whitespace (RFC 8259), as byte values."""


def repeated(data: bytes, kept: int) -> list[tuple[str, Any]]:
    """The CityObjects the document `data` gives an id already given later (each id, and the
    object under it that a parser drops), in document order; `kept` is how many the parsed
    document holds. [] where every id is given once."""
    span = _city_objects(data)
    if span is None:
        return []
    start, end, members = span
    if members == kept:
        return []
    pairs = json.loads(data[start:end], object_pairs_hook=_Object).pairs
    last = {key: i for i, (key, _) in enumerate(pairs)}
    counts = Counter(key for key, _ in pairs)
    return [(k, v) for i, (k, v) in enumerate(pairs) if counts[k] > 1 and last[k] != i]


class _Object(dict[str, Any]):
    """A JSON object parsed with its members in order, a name given twice included."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def _city_objects(data: bytes) -> tuple[int, int, int] | None:
    """Where the top-level "CityObjects" object starts and ends, and its members' count."""
    a = np.frombuffer(data, np.uint8)
    pos, chars = outside_strings(a, Strings(), b'{}[]:"')
    colon = chars == 58
    step = np.where((chars == 123) | (chars == 91), 1, np.where(colon, 0, -1))
    depth = np.cumsum(step, dtype=np.int64)
    for i in np.flatnonzero(colon & (depth == 1)).tolist():
        k = int(pos[i])
        while k and data[k - 1] in _BLANK:  # back over the blanks before the colon, no copy
            k -= 1
        if not data.endswith(_KEY, 0, k) or i + 1 >= len(pos):
            continue
        if chars[i + 1] != 123:
            return None
        closing = np.flatnonzero((depth[i + 1 :] == 1) & ~colon[i + 1 :])
        if not closing.size:
            return None
        j = i + 1 + int(closing[0])
        inside = colon[i + 1 : j] & (depth[i + 1 : j] == 2)
        return int(pos[i + 1]), int(pos[j]) + 1, int(inside.sum())
    return None
