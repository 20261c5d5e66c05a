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

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import orjson
import pyarrow as pa

from citypipe.connectors.json_properties import JSONProperties
from citypipe.connectors.value_limit import MAX_VALUE_ENV, max_value_bytes

__all__ = ["TRUNCATED_NOTE", "json_texts", "max_value_bytes", "record_text", "rounded"]
TRUNCATED_NOTE = "citypipe:truncated"
_EXACT = 2.0**52
"""Below this a double's multiples of 0.5 are all doubles: its half-integers exact."""


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


def json_texts(
    objects: Sequence[Mapping[str, Any]],
    limit: int,
    extras: Sequence[Mapping[str, Any] | None] | None = None,
) -> tuple[pa.Array, dict[int, str]]:
    """Each object, with its `extras` (citypipe's notes) after its own keys, as JSON text (null
    where it cannot be written), and why for those.

    Objects already written (JSONProperties) are merged with their extras as text, where no
    extra's key is one of theirs: `{"a":1}` and `{"n":2}` make `{"a":1,"n":2}`, the text
    orjson writes of the merged dict. Other objects: plain orjson first (its keyword
    arguments cost a third of its time), str() for values JSON has no type for only in
    batches that need it. Objects with long text values are written again, cut, with the note.
    """
    failed: dict[int, str] = {}
    texts = _merged_texts(objects, extras)
    if texts is None:
        texts = _written(_merged(objects, extras), failed)
    # without failures every text is there: lengths taken by map, in C
    written = cast(list[bytes], texts) if not failed else [t or b"" for t in texts]
    sizes = np.fromiter(map(len, written), np.int64, len(texts))
    for i in np.flatnonzero(sizes > limit).tolist():
        cuts: list[str] = []
        extra = extras[i] if extras is not None else None
        cut = _cut({**objects[i], **extra} if extra else objects[i], limit, cuts)
        if cuts:
            note = f"{', '.join(cuts)} cut to {limit} bytes ({MAX_VALUE_ENV})"
            texts[i] = written[i] = _text({**cut, TRUNCATED_NOTE: note})
            sizes[i] = len(written[i])
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if failed or offsets[-1] > np.iinfo(np.int32).max:
        return pa.array(texts, pa.binary()).view(pa.string()), failed  # orjson writes UTF-8
    # every text there: the array made of their bytes joined (one copy, in C) and where each
    # starts, where pa.array appended them one by one (0.34 against 1.0 ms of Den Haag's)
    data = pa.py_buffer(b"".join(written))
    return pa.Array.from_buffers(
        pa.string(), len(texts), [None, pa.py_buffer(offsets.astype(np.int32)), data]
    ), failed


def _merged(
    objects: Sequence[Mapping[str, Any]], extras: Sequence[Mapping[str, Any] | None] | None
) -> Sequence[Mapping[str, Any]]:
    """Each object with its extra's keys after its own (the object itself where it has none)."""
    if extras is None or not any(extras):
        return objects
    return [{**p, **e} if e else p for p, e in zip(objects, extras, strict=False)]


def _merged_texts(
    objects: Sequence[Mapping[str, Any]], extras: Sequence[Mapping[str, Any] | None] | None
) -> list[bytes | None] | None:
    """The texts of objects already written, their extras merged in as text; None where they
    are not written, or an extra's key is one of theirs (its value then takes that key's
    place: the dicts are merged)."""
    if not isinstance(objects, JSONProperties):
        return None
    texts = objects.texts
    if extras is None or not any(extras):
        return list(texts)  # a copy: a cut text replaces its item
    if not objects.keys.isdisjoint(frozenset().union(*filter(None, extras))):
        return None
    dumps = orjson.dumps
    return [
        t if not e else dumps(e) if t == b"{}" else t[:-1] + b"," + dumps(e)[1:]
        for t, e in zip(texts, extras, strict=True)
    ]


def _written(objects: Sequence[Any], failed: dict[int, str]) -> list[bytes | None]:
    """Each object as JSON text, None where it cannot be written (why in `failed`)."""
    try:
        return list(map(orjson.dumps, objects))
    except TypeError:
        pass
    texts: list[bytes | None] = []
    for i, o in enumerate(objects):
        try:
            texts.append(_text(o))
        except TypeError as e:
            texts.append(None)
            failed[i] = f"properties that cannot be written as JSON: {e}"
    return texts


def rounded(values: np.ndarray, digits: int) -> list[float | None]:
    """Python's `round(x, digits)` of each value (float64), None where NaN, in one numpy pass:
    the integer nearest x * 10**digits (ties to even) divided by 10**digits, both exact
    doubles, is the double nearest the decimal round() reads back. Only where the product
    lands on a half (a tie, or a value rounded onto one) or is beyond the exact half-integers
    is it Python's round."""
    scale = 10.0**digits
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = values * scale
        nearest = np.rint(scaled)
        out: list[float | None] = (nearest / scale).tolist()
        odd = ~(np.abs(scaled) < _EXACT) | (np.abs(scaled - nearest) == 0.5)
    for i in np.flatnonzero(odd).tolist():
        x = float(values[i])
        out[i] = None if math.isnan(x) else round(x, digits)
    return out


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
