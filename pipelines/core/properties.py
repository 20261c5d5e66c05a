"""Record attributes as the lake's JSON text, written in bulk, whole however deep they nest,
their text values within a limit.

Depth: orjson writes at most 254 levels of objects and arrays within each other; real
attributes nest a few. The lake's text column has no such limit (pyarrow keeps any text, and
DuckDB's json_valid / json_extract / ::JSON read 5,000 levels, measured with DuckDB 1.5.5), so
a record whose properties nest deeper is written by `_deep_text`, whole. Size: a text value
longer than `max_value_bytes` (CITYPIPE_MAX_VALUE_BYTES, 1 MiB unless set) is cut to that
many bytes and the record says so under `citypipe:truncated`: one pathological value (a 72 MB
description) would otherwise be copied into every step after the reader. Both cost nothing
for the records within orjson's depth and the size: only the lengths of the texts written
are looked at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import orjson
import pyarrow as pa

from citypipe.connectors.value_limit import MAX_VALUE_ENV, max_value_bytes

__all__ = ["TRUNCATED_NOTE", "json_texts", "max_value_bytes", "record_text"]
TRUNCATED_NOTE = "citypipe:truncated"


def _text(o: Any) -> bytes:
    """`o` as JSON, str() for values JSON has no type for; deeper than orjson writes, whole,
    in Python. Raises TypeError for what cannot be written (a key that is not text)."""
    try:
        return orjson.dumps(o, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as e:
        if "Recursion" not in str(e):
            raise
        return _deep_text(o).encode()


def _cut(value: Any, limit: int, cuts: list[str]) -> Any:
    """`value` with every string longer than `limit` UTF-8 bytes cut to that (copies, never
    the record as read); what was cut goes to `cuts`, in the record's order. Without
    recursion, as `_deep_text`: a record may nest deeper than Python's stack."""
    top: list[Any] = [value]
    stack: list[tuple[Any, Any, Any, str]] = [(top, 0, value, "")]  # into, key, value, path
    while stack:
        into, key, item, path = stack.pop()
        if type(item) is str:
            if len(item) * 4 > limit and len(data := item.encode()) > limit:
                cuts.append(f"{path} ({len(data)} bytes)")
                into[key] = data[:limit].decode("utf-8", "ignore")
        elif isinstance(item, Mapping):
            into[key] = members = dict(item)
            stack.extend(
                (members, k, v, f"{path}.{k}" if path else str(k))
                for k, v in reversed(members.items())
            )
        elif isinstance(item, (list, tuple)):
            into[key] = values = list(item)
            stack.extend(
                (values, i, v, f"{path}[{i}]") for i, v in reversed(list(enumerate(values)))
            )
    return top[0]


def json_texts(objects: Sequence[Any], limit: int) -> tuple[pa.Array, dict[int, str]]:
    """Each object as JSON text (null where it cannot be written), and why for those.

    Plain orjson first (its keyword arguments cost a third of its time), str() for values JSON
    has no type for only in batches that need it; objects with long text values written again,
    cut, with the note.
    """
    dumps = orjson.dumps
    failed: dict[int, str] = {}
    try:
        texts: list[bytes | None] = list(map(dumps, objects))
    except TypeError:
        texts = []
        for i, o in enumerate(objects):
            try:
                texts.append(_text(o))
            except TypeError as e:
                texts.append(None)
                failed[i] = f"properties that cannot be written as JSON: {e}"
    # without failures every text is there: lengths taken by map, in C
    written = cast(list[bytes], texts) if not failed else [t or b"" for t in texts]
    sizes = np.fromiter(map(len, written), np.int64, len(texts))
    for i in np.flatnonzero(sizes > limit).tolist():
        cuts: list[str] = []
        cut = _cut(objects[i], limit, cuts)
        if cuts:
            note = f"{', '.join(cuts)} cut to {limit} bytes ({MAX_VALUE_ENV})"
            texts[i] = _text({**cut, TRUNCATED_NOTE: note})
    return pa.array(texts, pa.binary()).view(pa.string()), failed  # orjson writes UTF-8 only


def record_text(record: Any) -> str:
    """The original record as text, for rejects: whole, however deep it nests."""
    if isinstance(record, str):
        return record
    if isinstance(record, bytes):
        return record.decode("utf-8", "replace")
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # deeper than orjson writes, or an integer beyond 64 bits
        return _deep_text(record)


class _Token(str):
    """Punctuation on `_deep_text`'s stack, told apart from the record's own strings."""


def _deep_text(record: Any) -> str:
    """JSON text of a record of any depth, written without recursion."""
    out: list[str] = []
    stack: list[Any] = [record]
    while stack:
        value = stack.pop()
        if type(value) is _Token:
            out.append(value)
        elif isinstance(value, Mapping):
            items = [(_Token(orjson.dumps(str(k)).decode() + ":"), v) for k, v in value.items()]
            stack.append(_Token("}"))
            for n, (key, v) in enumerate(reversed(items)):
                stack.extend([v, key] if n == len(items) - 1 else [v, key, _Token(",")])
            stack.append(_Token("{"))
        elif isinstance(value, (list, tuple)):
            stack.append(_Token("]"))
            for n, v in enumerate(reversed(value)):
                stack.extend([v] if n == len(value) - 1 else [v, _Token(",")])
            stack.append(_Token("["))
        elif type(value) is int:  # Python's text of any int, where orjson stops at 64 bits
            out.append(str(value))
        else:
            out.append(orjson.dumps(value, default=str).decode())
    return "".join(out)
