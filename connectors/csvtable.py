"""Delimited text (CSV, semicolon-, tab- or pipe-separated) with a geometry column or coordinates.

City portals export tables as their office software or database writes them: any of four
delimiters, UTF-8 with or without a BOM or a Windows code page, "N/A" for nothing, "ja"/"nein"
for booleans. Encoding, delimiter and geometry are found from the content, and catalog options
(`geometry`, `x`, `y`, `delimiter`, `encoding`, `id`) override each. This module reads the file
in blocks with pyarrow, so a file is read once, in bounded memory; how it is written is found by
csv_dialect, where its geometry is and how it is read by csv_geometry, and its attributes are
typed per column of each batch by csv_values. Rows that cannot be read go to rejects as the
lines they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.csv_dialect import Dialect, find_delimiter, read_dialect
from citypipe.connectors.csv_ewkt import QuotedEWKT
from citypipe.connectors.csv_geometry import TEXTS, Layout, detect, geometries
from citypipe.connectors.csv_values import as_lines, cleaned, split_unreadable, typed
from citypipe.connectors.text import MarkedUTF8, detect_encoding, shown
from citypipe.geo.errors import ConfigurationError, DataError

__all__ = ["CSVConnector"]

BLOCK_SIZE = 2 << 20
"""Bytes of the file per batch; grown (up to _MAX_BLOCK_SIZE) for files with longer rows."""
_MAX_BLOCK_SIZE = 512 << 20
_SCORE = 0.3
"""Below formats with a signature of their own (JSON, XML), which may also be delimited lines."""


class _RowTooLong(DataError):
    """A row does not fit in a block: pyarrow needs each block to hold at least one whole row."""


class CSVConnector(FileConnector):
    name = "csv"
    title = "CSV"
    known_options = frozenset({"geometry", "x", "y", "delimiter", "encoding", "id"})

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(path, **options)
        if ("x" in options) != ("y" in options):
            raise ConfigurationError(f"{self.path}: the options x and y go together")
        if len(options.get("delimiter", ",")) != 1:
            raise ConfigurationError(f"{self.path}: the delimiter option must be one character")
        self._block_size = BLOCK_SIZE
        self._layout: Layout | None = None
        self._count = 0

    @classmethod
    def sniff(cls, head: bytes) -> float:
        encoding = detect_encoding(head)
        if encoding is None:
            return 0.0
        return _SCORE if find_delimiter(head.decode(encoding, "replace")) else 0.0

    @cached_property
    def _dialect(self) -> Dialect:
        return read_dialect(self.path, self.options)

    def _blocks(self) -> Iterator[tuple[pa.RecordBatch, list[tuple[str, str]]]]:
        """The file as batches of text columns, each with the rows that had the wrong field count
        (as text, with the reason): those go to rejects rather than failing the file."""
        coding, delimiter = self._dialect.coding, self._dialect.delimiter
        ragged: list[tuple[str, str]] = []

        def bad_row(row: Any) -> str:
            why = f"row has {row.actual_columns} fields where the header has {row.expected_columns}"
            ragged.append((shown(row.text), why))
            return "skip"

        try:
            # bytes that are not UTF-8 marked, in their records, for _unreadable to find
            with (
                self.open_input() as f,
                cast(BinaryIO, QuotedEWKT(f)) if self._dialect.ewkt else f as quoted,
                MarkedUTF8(quoted) if coding.undecodable else quoted as source,
            ):
                reader = self._open_csv(source, bad_row)
                if reader is None:
                    return
                with reader:
                    for batch in reader:
                        if coding.undecodable or coding.nul:
                            batch, unreadable = split_unreadable(batch, coding, delimiter)
                            ragged += unreadable
                        yield batch, ragged[:]
                        ragged.clear()
                    if ragged:
                        yield pa.RecordBatch.from_pylist([], schema=reader.schema), ragged
        except (OSError, pa.ArrowException, UnicodeError) as e:
            reason = str(e).removeprefix("CSV parse error: ")
            if "straddl" in reason:
                too_long = f"{self.path}: a row is longer than {self._block_size} bytes"
                raise _RowTooLong(too_long) from e
            if "UTF8" in reason or isinstance(e, UnicodeError):
                reason += f" (read as {coding.codec}; the encoding option sets another)"
            raise DataError(f"{self.path}: cannot be read as CSV: {reason}") from e

    def _open_csv(self, source: Any, bad_row: Any) -> pacsv.CSVStreamingReader | None:
        """pyarrow's reader of the file; None for a header without a line end (no records)."""
        coding, delimiter, header, fields, skip, _ = self._dialect
        utf8 = coding.codec in ("utf-8", "utf-8-sig")
        try:
            return pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(
                    # pyarrow reads UTF-8 itself (skipping a BOM), other encodings through Python
                    encoding="utf8" if utf8 else coding.codec,
                    block_size=self._block_size,
                    # rows that a trailing delimiter makes wider or narrower than the header
                    column_names=fields,
                    skip_rows=skip + (0 if fields is None else 1),
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=bad_row
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    include_columns=None if fields is None else header,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as e:
            if "Empty CSV file" not in str(e):
                raise
            return None

    def _detect(self, batch: pa.RecordBatch) -> Layout:
        """Where the file keeps its geometry and ids, from its first batch and the options."""
        geometry = self._column(batch, "geometry") if "geometry" in self.options else None
        xy = None
        if "x" in self.options and geometry is None:
            xy = (self._column(batch, "x"), self._column(batch, "y"))
        layout = detect(batch, geometry, xy)
        if "id" not in self.options:
            return layout
        return replace(layout, id=self._column(batch, "id"))

    def _column(self, batch: pa.RecordBatch, option: str) -> int:
        """The position of the column an option names."""
        names = batch.schema.names
        name = str(self.options.get(option))
        if name not in names:
            raise ConfigurationError(
                f"{self.path}: no column {name!r} (option {option}); columns: {', '.join(names)}"
            )
        return names.index(name)

    def _scan(self) -> Layout:
        """The layout (from the first batch) and the row count, in one pass made once; the
        pass also finds a block size that holds the longest row before read() yields anything."""
        while self._layout is None:
            layout, count = None, 0
            try:
                for batch, ragged in self._blocks():
                    if layout is None and batch.num_rows:
                        layout = self._detect(batch)
                    count += batch.num_rows + len(ragged)
            except _RowTooLong:
                if self._block_size >= _MAX_BLOCK_SIZE:
                    raise
                self._block_size *= 4
            else:
                self._layout, self._count = layout or Layout(None), count
        return self._layout

    def inspect(self) -> SourceInfo:
        layout = self._scan()
        return SourceInfo(format="CSV", crs=layout.crs, layers=(), count=self._count)

    def read(self) -> Iterator[SourceBatch]:
        layout = self._scan()
        for batch, ragged in self._blocks():
            if batch.num_rows:
                yield self._batch(batch, layout)
            if ragged:
                n = len(ragged)
                yield SourceBatch(
                    source_ids=[None] * n,
                    geometries=np.full(n, None, dtype=object),
                    properties=[{} for _ in range(n)],
                    records=[text for text, _ in ragged],
                    crs=layout.crs,
                    errors=[why for _, why in ragged],
                    default_crs=layout.default_crs,
                )

    def _batch(self, batch: pa.RecordBatch, layout: Layout) -> SourceBatch:
        n = batch.num_rows
        geoms, errors = geometries(batch, layout)
        skip = layout.columns if layout.kind in TEXTS else ()
        keep = [i for i in range(batch.num_columns) if i not in skip]
        names = [batch.schema.names[i] for i in keep]
        rows = zip(*(typed(batch.column(i)) for i in keep), strict=False) if keep else [()] * n
        if layout.id is None:
            ids: list[str | None] = [None] * n
        else:
            ids = cleaned(batch.column(layout.id))[0].to_pylist()
        return SourceBatch(
            source_ids=ids,
            geometries=geoms,
            properties=[dict(zip(names, row, strict=False)) for row in rows],
            records=as_lines(batch, self._dialect.delimiter),
            crs=layout.crs,
            axis_order="xy",
            errors=errors,
            default_crs=layout.default_crs,
        )
