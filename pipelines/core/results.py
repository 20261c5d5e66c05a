"""Query results as people and programs read them: geometry as WKT, a table that stops at a row
limit and says how many rows there were, CSV and JSON written a batch at a time.

Results arrive as Arrow batches (DuckDB's `to_arrow_reader`), so a result of any size passes
through in bounded memory: the table keeps its first rows and only counts the others.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

import orjson
import pyarrow as pa

from citypipe.geo.wkb import to_wkt

__all__ = [
    "BATCH_ROWS",
    "json_default",
    "render_table",
    "rows",
    "write_csv",
    "write_json",
    "write_table",
]

BATCH_ROWS = 10_000
"""Rows fetched at a time: a few MB of ordinary features."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value[:16]).hex() + ("…" if len(value) > 16 else "")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 60) -> str:
    """Rows as an aligned text table; long cells are cut at `width` characters."""
    cells = [[_cell(v)[:width] for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=False)).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def json_default(value: Any) -> Any:
    """What orjson cannot write itself: dates, bytes as hex, decimals; anything else as text."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def _values(column: pa.Array, wkb: bool) -> list[Any]:
    """A column's Python values; binary values that are WKB (DuckDB GEOMETRY, and BLOBs such as
    ST_AsWKB's) as WKT unless `wkb`."""
    values = column.to_pylist()
    if wkb or not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        return values
    return [v if t is None else t for v, t in zip(values, to_wkt(column), strict=True)]


def _rows(batch: pa.RecordBatch, wkb: bool) -> list[tuple]:
    columns = [_values(c, wkb) for c in batch.columns]
    return list(zip(*columns, strict=True)) if columns else [()] * batch.num_rows


def rows(
    reader: pa.RecordBatchReader, wkb: bool, limit: int | None = None
) -> Iterator[list[tuple]]:
    """The result's rows, a batch at a time, at most `limit` of them."""
    left = limit
    for batch in reader:
        if left is not None:
            batch = batch.slice(0, left)
            left -= batch.num_rows
        yield _rows(batch, wkb)
        if left == 0:
            return


def write_table(out: TextIO, reader: pa.RecordBatchReader, wkb: bool, limit: int) -> None:
    """The first `limit` rows as a table; when there were more, a footer with their number
    (the others are counted, never converted)."""
    shown: list[tuple] = []
    total = 0
    for batch in reader:
        if len(shown) < limit:
            shown.extend(_rows(batch.slice(0, limit - len(shown)), wkb))
        total += batch.num_rows
    out.write(render_table(reader.schema.names, shown) + "\n")
    if total > len(shown):
        out.write(f"({len(shown)} of {total} rows shown; --limit N shows more)\n")


def write_csv(out: TextIO, reader: pa.RecordBatchReader, wkb: bool, limit: int | None) -> None:
    """A header, then every row (or the first `limit`); bytes as hex."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(reader.schema.names)
    for chunk in rows(reader, wkb, limit):
        w.writerows([[json_default(v) if isinstance(v, bytes) else v for v in r] for r in chunk])


def write_json(out: TextIO, reader: pa.RecordBatchReader, wkb: bool, limit: int | None) -> None:
    """An array of one object per row (or of the first `limit`), indented by two spaces."""
    names = reader.schema.names
    out.write("[")
    sep = "\n"
    for chunk in rows(reader, wkb, limit):
        for r in chunk:
            text = orjson.dumps(
                dict(zip(names, r, strict=False)), default=json_default, option=orjson.OPT_INDENT_2
            )
            out.write(sep + "  " + text.decode().replace("\n", "\n  "))
            sep = ",\n"
    out.write("]\n" if sep == "\n" else "\n]\n")
