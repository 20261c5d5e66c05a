"""EWKT written unquoted in a `;`-separated file: `1;Plaça;SRID=4326;POINT(2.17 41.38)`.

PostGIS writes a geometry as EWKT (`SRID=4326;POINT(...)`), and an export to `;`-separated text
that does not quote it leaves the `;` of each value a delimiter: every row has one field more
than the header, the SRID in one field and the WKT in the next. Where most of the first rows
are so split at the same column (`split_column`), the file is read with each such value quoted
(`QuotedEWKT`), as its writer meant it; a row the rule does not explain stays a ragged row,
which goes to rejects with its reason.
"""

from __future__ import annotations

import re
from typing import BinaryIO

from citypipe.connectors.csv_geometry import WKT_SHAPED
from citypipe.connectors.text import Rewriting

__all__ = ["QuotedEWKT", "split_column"]

_UNQUOTED = re.compile(rb"(?<![^;\n])(SRID=\d+;[^;\"\r\n]*)", re.IGNORECASE)
"""An EWKT value at a field's start, up to the next delimiter or the line's end (WKT holds no
`;` and no quote)."""


def split_column(header: list[str], rows: list[list[str]]) -> int | None:
    """The column whose EWKT values the `;` delimiter splits in two in most of `rows` (one
    field more than `header`, an `SRID=n` field followed by a WKT one, in every such row), None
    where there is none (a stray ragged row is rejected later, as in any file)."""
    wider = [r for r in rows if len(r) == len(header) + 1]
    if 2 * len(wider) <= len(rows):
        return None
    for i in range(len(header)):
        if all((m := WKT_SHAPED.match(f"{r[i]};{r[i + 1]}")) and m["srid"] for r in wider):
            return i
    return None


class QuotedEWKT(Rewriting):
    """The open `file` (in an encoding whose `;`, quote and line ends are ASCII bytes) with each
    unquoted EWKT value quoted: a block of whole lines at a time, outside quoted fields only."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self._quoted = False
        """Whether the line read ends inside a quoted field (a value holding a line end)."""

    def _more(self) -> bytes:
        return b"".join(map(self._line, self._file.readlines(self._block)))

    def _line(self, line: bytes) -> bytes:
        """`line` with its unquoted EWKT values quoted (the parts between quotes are inside a
        quoted field by turns; a doubled quote is an empty part, which keeps the turn)."""
        parts = line.split(b'"')
        inside = self._quoted
        for k, part in enumerate(parts):
            if not inside:
                parts[k] = _UNQUOTED.sub(rb'"\1"', part) if k == 0 or part[:1] == b";" else part
            inside = not inside
        self._quoted = not inside
        return b'"'.join(parts)
