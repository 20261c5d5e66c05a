"""The values of a delimited text file: typed per column, null sentinels as null, and each row
back as the line it was (for rejects).

Values are typed per column of each batch with pyarrow compute, never per cell in Python: "N/A"
and the like are null, "ja"/"nein" and the like booleans, numbers numbers (leading zeros, as in
postcodes, stay text). Records holding bytes that are not text are taken out before.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citypipe.connectors.text import MARK_PATTERN, TextEncoding, marked_bytes, shown

__all__ = ["as_lines", "cleaned", "split_unreadable", "typed"]

_NULLS = ("", "N/A", "NA", "n/a", "null", "NULL", "-")  # words, not an Array: pa.array at load
# would import pandas (pyarrow does at its first call) in every command that finds a format
_BOOLEANS = [("j", "n"), ("ja", "nein"), ("true", "false"), ("yes", "no")]
_INT = r"^[+-]?(0|[1-9][0-9]*)$"  # leading zeros (postcodes, codes) stay text
_FLOAT = r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def split_unreadable(
    batch: pa.RecordBatch, coding: TextEncoding, delimiter: str
) -> tuple[pa.RecordBatch, list[tuple[str, str]]]:
    """The batch without its records that are not text (bytes that are not UTF-8 in a file read
    as UTF-8, a NUL byte), and those records as read, with the reason.

    Looked for only in files where `file_encoding` found such bytes."""
    why: dict[int, str] = {}
    for name, values in zip(batch.schema.names, batch.columns, strict=False):
        if coding.undecodable:
            found = pc.match_substring_regex(values, MARK_PATTERN)
            for r in np.flatnonzero(pc.fill_null(found, False).to_numpy(zero_copy_only=False)):
                bad = " ".join(f"0x{b:02X}" for b in marked_bytes(values[r].as_py()))
                why.setdefault(
                    int(r), f"not UTF-8 as the rest of the file is: {bad} in column {name!r}"
                )
        if coding.nul:
            found = pc.match_substring(values, "\x00")
            for r in np.flatnonzero(pc.fill_null(found, False).to_numpy(zero_copy_only=False)):
                why.setdefault(int(r), f"a NUL byte, which is not text, in column {name!r}")
    if not why:
        return batch, []
    rows = sorted(why)
    keep = np.ones(batch.num_rows, dtype=bool)
    keep[rows] = False
    records = as_lines(batch.take(rows), delimiter)
    return batch.filter(keep), [
        (shown(text), why[r]) for text, r in zip(records, rows, strict=False)
    ]


def cleaned(values: pa.Array, nulls: tuple[str, ...] = _NULLS) -> tuple[pa.Array, pa.Array]:
    """The values trimmed and with null sentinels as null, and the mask of the non-null ones."""
    trimmed = pc.utf8_trim_whitespace(values)
    absent = pc.or_(pc.is_in(trimmed, value_set=pa.array(nulls, pa.string())), pc.is_null(trimmed))
    return pc.if_else(absent, None, trimmed), pc.invert(absent)


def typed(
    values: pa.Array, nulls: tuple[str, ...] = _NULLS, booleans: list[tuple[str, str]] = _BOOLEANS
) -> list[Any]:
    """The column as Python values: None, bool, int, float, or the text as it was. `nulls` and
    `booleans` are the words taken for null and for true / false (a CSV's by default)."""
    clean, present = cleaned(values, nulls)
    given = pc.filter(clean, present)
    if len(given) == 0:
        return [None] * len(values)
    lower = pc.utf8_lower(given)
    if pc.count_distinct(lower).as_py() <= 2:
        distinct = set(pc.unique(lower).to_pylist())
        for true, false in booleans:
            if distinct <= {true, false}:
                return pc.equal(pc.utf8_lower(clean), true).to_pylist()
    for pattern, type_ in ((_INT, pa.int64()), (_FLOAT, pa.float64())):
        if pc.all(pc.match_substring_regex(given, pattern)).as_py():
            try:
                return pc.cast(clean, type_).to_pylist()
            except pa.ArrowInvalid:  # an integer beyond int64
                break
    return pc.if_else(present, values, None).to_pylist()


def as_lines(batch: pa.RecordBatch, delimiter: str) -> list[str]:
    """Each row as a line of the file, quoted where a value needs it."""
    cols = []
    for values in batch.columns:
        found = (pc.match_substring(values, c) for c in (delimiter, '"', "\n", "\r"))
        needs = reduce(pc.or_, found)
        if pc.any(needs).as_py():
            escaped = pc.replace_substring(values, '"', '""')
            values = pc.if_else(needs, pc.binary_join_element_wise('"', escaped, '"', ""), values)
        cols.append(values)
    return pc.binary_join_element_wise(*cols, delimiter).to_pylist()
