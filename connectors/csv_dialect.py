"""How a delimited text file is written: its encoding, its delimiter and its column names.

City portals export tables as their office software or database writes them: any of four
delimiters, UTF-8 with or without a BOM or a Windows code page. Both are found from the content
(the encoding from all of it, the delimiter from its first records, or from the `sep=;` line
Excel reads and writes above the header); the `encoding` and `delimiter` options override them.
A table of one column holds no delimiter: it is read where that column holds geometries.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from citypipe.connectors.csv_ewkt import split_column
from citypipe.connectors.csv_geometry import geometry_text
from citypipe.connectors.text import TextEncoding, file_encoding, option_codec, rare
from citypipe.geo.errors import DataError

__all__ = ["DELIMITERS", "Dialect", "find_delimiter", "read_dialect"]

DELIMITERS = ";,\t|"
"""In order of preference when several split the lines consistently into as many fields."""
_HEAD_BYTES = 1 << 20
"""How much of the file the delimiter is found from (the encoding is found from all of it)."""
_SNIFF_CHARS = 1 << 16
"""Characters the delimiter is found from: as much as the registry sniffs, and less than the
csv module's field size limit, so that a long first row cannot hide the delimiter."""
_SNIFF_RECORDS = 50
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEP_LINE = re.compile(r'(?i)"?sep=([^\r\n"])"?[ \t]*(\r\n|\r|\n)')
"""Excel's declaration of the delimiter, the file's first line: `sep=;` (quoted by some)."""


class Dialect(NamedTuple):
    """How a delimited text file is written."""

    coding: TextEncoding
    delimiter: str
    header: list[str]
    fields: list[str] | None
    """The names the rows' fields are given where they are not the header's as written (a
    trailing delimiter makes their count differ, a name is repeated or empty); None where
    they are."""
    skip: int
    """Lines above the header (Excel's `sep=` line)."""
    ewkt: bool = False
    """Whether unquoted EWKT values are split by the `;` delimiter, to be quoted (csv_ewkt)."""


def find_delimiter(text: str) -> str | None:
    """The delimiter that splits the first records of `text` into a header and rows alike.

    Most rows must have the header's field count (a stray ragged row goes to rejects later).
    `text` may be cut anywhere, so its last record is only held to at most as many fields.
    A header without rows (a source with no records) must name its columns: two or more,
    distinct, each with a letter.
    """
    start = text.lstrip()[:1]
    if not start or start in "{[<" or not rare(len(_CONTROL.findall(text)), len(text)):
        return None
    if declared := _SEP_LINE.match(text):  # with a header below it
        return declared[1] if text[declared.end() :].strip() else None
    cut = not text.endswith(("\n", "\r"))
    best: tuple[int, str] | None = None
    records = {d: _first_records(text, d) for d in DELIMITERS}
    for d, rows in records.items():
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        complete, last = (rows[1:-1], rows[-1]) if cut else (rows[1:], [])
        if len(rows) == 1:
            ok = _names_columns(rows[0])
        elif complete:
            ok = 2 * sum(len(r) == width for r in complete) > len(complete)
            ok = ok or _row_width(rows[0], complete) != width
            ok = ok or d == ";" and split_column(rows[0], complete) is not None
        else:
            ok = 2 <= len(last) <= width
        if ok and (best is None or width > best[0]):
            best = (width, d)
    return best[1] if best else _single_column(records, cut)


def _first_records(text: str, delimiter: str, count: int = _SNIFF_RECORDS) -> list[list[str]]:
    """The non-empty records among the first `count` (blank lines are none, as pyarrow's reader
    skips them, the header's first among them): none where the delimiter's quoting breaks the
    text."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return [r for r in (next(reader, None) for _ in range(count)) if r]
    except csv.Error:
        return []


def _single_column(records: dict[str, list[list[str]]], cut: bool) -> str | None:
    """A delimiter that leaves every first record one field (`records`: each delimiter's), where
    the records below a header name are geometries (WKT, EWKT, hex (E)WKB or GeoJSON): a table
    of geometries alone, as GDAL writes a layer without attributes. None where they are not."""
    for d, rows in records.items():
        values = [r[0] for r in rows[1 : -1 if cut else None]]
        if len(rows) < 2 or any(len(r) != 1 for r in rows) or not _names_columns(rows[0]):
            continue
        return d if values and geometry_text(values) and not geometry_text(rows[0]) else None
    return None


def _row_width(header: list[str], rows: list[list[str]]) -> int:
    """How many fields most `rows` have: the header's, or one more or one fewer where a
    delimiter ends every row but not the header ("a;b;" under "x;y") or the header alone
    ("x;y;" over "a;b"), as some exporters write them."""
    width = len(header)
    for other, trailing in ((width + 1, rows), (width - 1, [header])):
        if 2 * sum(len(r) == other for r in rows) > len(rows) and all(
            not r[-1].strip() for r in trailing if len(r) == max(width, other)
        ):
            return other
    return width


def _names_columns(header: list[str]) -> bool:
    """Whether a record alone can be a header: distinct names, each with a letter."""
    names = [name.strip() for name in header]
    return len(set(names)) == len(names) and all(
        len(n) <= 256 and any(c.isalpha() for c in n) for n in names
    )


def read_dialect(path: Path, options: Mapping[str, Any]) -> Dialect:
    """How the file is written, from the file and the options (the encoding from the whole
    file). An `encoding` option is held to: a byte it does not decode refuses the file."""
    try:
        with open(path, "rb") as f:
            found = file_encoding(f)
            f.seek(0)
            head = f.read(_HEAD_BYTES)
    except OSError as e:
        raise DataError(f"{path}: cannot be read: {e.strerror or e}") from e
    option = options.get("encoding")
    if option is None and found is None:
        raise DataError(f"{path}: not delimited text but binary content")
    encoding = option or (found.codec if found is not None else "")
    encoding = option_codec(path, encoding)
    nul = found is not None and found.nul
    coding = TextEncoding(encoding, 0 if option or found is None else found.undecodable, nul)
    text = head.decode(encoding, "replace").lstrip("\ufeff")
    declared = _SEP_LINE.match(text)
    skip = 1 if declared else 0
    text = text[declared.end() :] if declared else text
    delimiter = options.get("delimiter") or (
        declared[1] if declared else find_delimiter(text[:_SNIFF_CHARS])
    )
    if delimiter is None:
        raise DataError(
            f"{path}: not delimited text: none of the delimiters "
            f"{' '.join(map(repr, DELIMITERS))} splits the first lines into a header and rows"
        )
    sniffed = text[:_SNIFF_CHARS]
    # the header is the first record that is not a blank line, as pyarrow reads it
    header, *rows = _first_records(sniffed, delimiter, _SNIFF_RECORDS + 1) or [[]]
    if rows and not sniffed.endswith(("\n", "\r")):
        rows.pop()  # cut anywhere
    width = _row_width(header, rows) if header else 0
    named = header[:-1] if width < len(header) else header  # a trailing delimiter names none
    names = _unique(named)
    if width > len(header):
        return Dialect(coding, delimiter, names, [*names, "citypipe:trailing"], skip)
    ewkt = delimiter == ";" and _ascii_bytes(encoding) and split_column(header, rows) is not None
    return Dialect(coding, delimiter, names, None if names == header else names, skip, ewkt)


def _ascii_bytes(encoding: str) -> bool:
    """Whether the delimiter, quote and line ends are their ASCII bytes in `encoding` (not in
    UTF-16), as byte-wise rewriting needs."""
    return ';"\n'.encode(encoding, "replace") == b';"\n'


def _unique(header: list[str]) -> list[str]:
    """The column names, each once: an empty one is field_N (its position, as GDAL names it),
    a repeated one gets _2, _3 ... (each name is a property; the last would have replaced the
    ones before)."""
    names = [name or f"field_{i}" for i, name in enumerate(header, 1)]
    taken = set(names)
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            n = 2
            while f"{name}_{n}" in taken:
                n += 1
            names[i] = f"{name}_{n}"
            taken.add(names[i])
        seen.add(name)
    return names
