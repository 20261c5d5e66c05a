"""Delimited text (CSV, semicolon-, tab- or pipe-separated) with a geometry column or coordinates.

City portals export tables as their office software or database writes them: any of four
delimiters, UTF-8 with or without a BOM or a Windows code page, "N/A" for nothing, "ja"/"nein"
for booleans. Encoding, delimiter and geometry are found from the content, and catalog options
(`geometry`, `x`, `y`, `delimiter`, `encoding`, `id`) override each. The geometry is a column
of hex (E)WKB, else of WKT/EWKT, else a longitude/latitude pair. Only an EWKB/EWKT SRID
declares a CRS. Without one, coordinate columns named as longitude/latitude are lon/lat
(`default_crs`); x/y, easting/northing and (E)WKB/WKT columns are in a CRS only `--crs` names.
Attributes are typed per column of each batch (null sentinels, booleans, numbers), so a file is
read once, in bounded memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import cached_property, reduce
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely

from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.text import (
    MARK_PATTERN,
    MarkedUTF8,
    TextEncoding,
    detect_encoding,
    file_encoding,
    marked_bytes,
    rare,
    shown,
)
from citypipe.geo.errors import ConfigurationError, DataError
from citypipe.geo.types import CRS84, Points

__all__ = ["CSVConnector"]

DELIMITERS = ";,\t|"
"""In order of preference when several split the lines consistently into as many fields."""
BLOCK_SIZE = 2 << 20
"""Bytes of the file per batch; grown (up to _MAX_BLOCK_SIZE) for files with longer rows."""
_MAX_BLOCK_SIZE = 512 << 20
_HEAD_BYTES = 1 << 20
"""How much of the file the delimiter is found from (the encoding is found from all of it)."""
_SNIFF_CHARS = 1 << 16
"""Characters the delimiter is found from: as much as the registry sniffs, and less than the
csv module's field size limit, so that a long first row cannot hide the delimiter."""
_SNIFF_RECORDS = 50
_SAMPLE = 100
"""Non-empty values of a column parsed to decide whether it holds geometries."""
_SCORE = 0.3
"""Below formats with a signature of their own (JSON, XML), which may also be delimited lines."""
_OPTIONS = frozenset({"geometry", "x", "y", "delimiter", "encoding", "id"})

_NULLS = pa.array(["", "N/A", "NA", "n/a", "null", "NULL", "-"])
_BOOLEANS = [("j", "n"), ("ja", "nein"), ("true", "false"), ("yes", "no")]
_INT = r"^[+-]?(0|[1-9][0-9]*)$"  # leading zeros (postcodes, codes) stay text
_FLOAT = r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_COORDINATE = r"^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)([eE][+-]?[0-9]+)?$"
_SRID = r"(?i)^SRID=(?P<srid>[0-9]+);\s*"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LON_DEGREES = (
    "longitude",
    "lon",
    "lng",
    "long",
    "longitud",
    "longitudine",
    "laengengrad",
    "laenge",
    "lengtegraad",
)
_LAT_DEGREES = ("latitude", "lat", "latitud", "latitudine", "breitengrad", "breite", "breedtegraad")
_LON = (*_LON_DEGREES, "x", "easting", "rechtswert", "ostwert")
_LAT = (*_LAT_DEGREES, "y", "northing", "hochwert", "nordwert")
"""Words that name a coordinate column, alone or with prefixes/suffixes (x-koord, lon_wgs84,
geo_breite), in the languages of city portals; degrees first (lon/lat without a declared CRS),
then projected axes (in a CRS only `--crs` can name)."""
_TRANSLITERATE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})

Kind = Literal["wkb", "wkt", "xy"]


def _delimiter(text: str) -> str | None:
    """The delimiter that splits the first records of `text` into a header and rows alike.

    Most rows must have the header's field count (a stray ragged row goes to rejects later).
    `text` may be cut anywhere, so its last record is only held to at most as many fields.
    A header without rows (a source with no records) must name its columns: two or more,
    distinct, each with a letter.
    """
    start = text.lstrip()[:1]
    if not start or start in "{[<" or not rare(len(_CONTROL.findall(text)), len(text)):
        return None
    cut = not text.endswith(("\n", "\r"))
    best: tuple[int, str] | None = None
    for d in DELIMITERS:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=d)
        try:
            rows = [r for r in (next(reader, None) for _ in range(_SNIFF_RECORDS)) if r]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        complete, last = (rows[1:-1], rows[-1]) if cut else (rows[1:], [])
        if len(rows) == 1:
            ok = _names_columns(rows[0])
        elif complete:
            ok = 2 * sum(len(r) == width for r in complete) > len(complete)
        else:
            ok = 2 <= len(last) <= width
        if ok and (best is None or width > best[0]):
            best = (width, d)
    return best[1] if best else None


def _names_columns(header: list[str]) -> bool:
    """Whether a record alone can be a header: distinct names, each with a letter."""
    names = [name.strip() for name in header]
    return len(set(names)) == len(names) and all(
        len(n) <= 256 and any(c.isalpha() for c in n) for n in names
    )


def _unreadable(
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
    records = _records(batch.take(rows), delimiter)
    return batch.filter(keep), [
        (shown(text), why[r]) for text, r in zip(records, rows, strict=False)
    ]


def _present(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The values trimmed and with null sentinels as null, and the mask of the non-null ones."""
    trimmed = pc.utf8_trim_whitespace(values)
    absent = pc.is_in(trimmed, value_set=_NULLS)
    return pc.if_else(absent, None, trimmed), pc.invert(absent)


def _typed(values: pa.Array) -> list[Any]:
    """The column as Python values: None, bool, int, float, or the text as it was."""
    clean, present = _present(values)
    given = pc.filter(clean, present)
    if len(given) == 0:
        return [None] * len(values)
    lower = pc.utf8_lower(given)
    if pc.count_distinct(lower).as_py() <= 2:
        distinct = set(pc.unique(lower).to_pylist())
        for true, false in _BOOLEANS:
            if distinct <= {true, false}:
                return pc.equal(pc.utf8_lower(clean), true).to_pylist()
    for pattern, type_ in ((_INT, pa.int64()), (_FLOAT, pa.float64())):
        if pc.all(pc.match_substring_regex(given, pattern)).as_py():
            try:
                return pc.cast(clean, type_).to_pylist()
            except pa.ArrowInvalid:  # an integer beyond int64
                break
    return pc.if_else(present, values, None).to_pylist()


def _records(batch: pa.RecordBatch, delimiter: str) -> list[str]:
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


def _parse(values: pa.Array, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    """Geometries from hex (E)WKB or (E)WKT (None where null or unreadable), and SRIDs (0: none).

    NaN and numbers beyond a double (1e309 reads as infinity) are read as they are, without
    numpy's warnings: harmonise rejects their records with the reason."""
    if kind == "wkb":
        geoms = shapely.from_wkb(values.to_numpy(zero_copy_only=False), on_invalid="ignore")
        return geoms, np.maximum(shapely.get_srid(geoms), 0)
    srid = pc.struct_field(pc.extract_regex(values, _SRID), [0])
    wkt = pc.replace_substring_regex(values, _SRID, "")
    with np.errstate(over="ignore", invalid="ignore"):
        geoms = shapely.from_wkt(wkt.to_numpy(zero_copy_only=False), on_invalid="ignore")
    return geoms, pc.cast(srid, pa.int64()).fill_null(0).to_numpy()


def _probe(values: pa.Array, kind: Kind) -> tuple[float, int]:
    """The share of the column's first non-empty values that are geometries of `kind`, and the
    first SRID among them (0: none)."""
    clean, present = _present(values)
    sample = pc.filter(clean, present)[:_SAMPLE]
    if len(sample) == 0:
        return 0.0, 0
    geoms, srids = _parse(sample, kind)
    given = srids[srids > 0]
    share = np.count_nonzero(~shapely.is_missing(geoms)) / len(sample)
    return share, int(given[0]) if len(given) else 0


def _axis_rank(name: str, words: tuple[str, ...]) -> int | None:
    """How early in `words` a word of the column name comes; None if it has none of them."""
    ascii_name = unicodedata.normalize("NFKD", name.lower().translate(_TRANSLITERATE))
    tokens = re.split(r"[^0-9a-z]+", ascii_name.encode("ascii", "ignore").decode())
    ranks = [words.index(t) for t in tokens if t in words]
    return min(ranks) if ranks else None


def _numbers(values: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Coordinates as float64 (decimal comma allowed), and the masks of given and readable ones."""
    clean, present = _present(values)
    readable = pc.fill_null(pc.match_substring_regex(clean, _COORDINATE), False)
    text = pc.replace_substring(pc.if_else(readable, clean, None), ",", ".")
    numbers = pc.cast(text, pa.float64())
    return numbers, present, readable


def _coordinate_column(batch: pa.RecordBatch, words: tuple[str, ...]) -> int | None:
    """The best-named column with one of `words` in its name whose values are mostly numbers."""
    ranked = sorted(
        (rank, i)
        for i, name in enumerate(batch.schema.names)
        if (rank := _axis_rank(name, words)) is not None
    )
    for _, i in ranked:
        _, present, readable = _numbers(batch.column(i))
        given = pc.sum(present).as_py() or 0
        if given and (pc.sum(readable).as_py() or 0) > given / 2:
            return i
    return None


def _xy_layout(batch: pa.RecordBatch, x: int, y: int) -> _Layout:
    """Coordinate columns x and y: lon/lat by their names only where both name degrees."""
    names = batch.schema.names
    x_rank, y_rank = _axis_rank(names[x], _LON), _axis_rank(names[y], _LAT)
    degrees = (
        x_rank is not None
        and x_rank < len(_LON_DEGREES)
        and y_rank is not None
        and y_rank < len(_LAT_DEGREES)
    )
    return _Layout("xy", (x, y), default_crs=CRS84 if degrees else None)


class _RowTooLong(DataError):
    """A row does not fit in a block: pyarrow needs each block to hold at least one whole row."""


@dataclass(frozen=True)
class _Layout:
    """Where a file keeps its geometry and ids (column positions), chosen on the first batch."""

    kind: Kind | None
    columns: tuple[int, ...] = ()
    crs: str | None = None
    id: int | None = None
    default_crs: str | None = None
    """OGC:CRS84 for coordinate columns both named in degrees, else None."""


class CSVConnector(FileConnector):
    name = "csv"
    title = "CSV"

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(path, **options)
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ConfigurationError(
                f"{self.path}: unknown CSV option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(_OPTIONS))}"
            )
        if ("x" in options) != ("y" in options):
            raise ConfigurationError(f"{self.path}: the options x and y go together")
        if len(options.get("delimiter", ",")) != 1:
            raise ConfigurationError(f"{self.path}: the delimiter option must be one character")
        self._block_size = BLOCK_SIZE
        self._layout: _Layout | None = None
        self._count = 0

    @classmethod
    def sniff(cls, head: bytes) -> float:
        encoding = detect_encoding(head)
        if encoding is None:
            return 0.0
        return _SCORE if _delimiter(head.decode(encoding, "replace")) else 0.0

    @cached_property
    def _dialect(self) -> tuple[TextEncoding, str, list[str]]:
        """Encoding (of the whole file), delimiter and column names, from the file and the
        options. An `encoding` option is held to: a byte it does not decode refuses the file."""
        try:
            with open(self.path, "rb") as f:
                found = file_encoding(f)
                f.seek(0)
                head = f.read(_HEAD_BYTES)
        except OSError as e:
            raise DataError(f"{self.path}: cannot be read: {e.strerror or e}") from e
        option = self.options.get("encoding")
        if option is None and found is None:
            raise DataError(f"{self.path}: not delimited text but binary content")
        encoding = option or found.codec
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError as e:
            raise ConfigurationError(f"{self.path}: unknown encoding {encoding!r}") from e
        nul = found is not None and found.nul
        coding = TextEncoding(encoding, 0 if option or found is None else found.undecodable, nul)
        text = head.decode(encoding, "replace").lstrip("\ufeff")
        delimiter = self.options.get("delimiter") or _delimiter(text[:_SNIFF_CHARS])
        if delimiter is None:
            raise DataError(
                f"{self.path}: not delimited text: none of the delimiters "
                f"{' '.join(map(repr, DELIMITERS))} splits the first lines into a header and rows"
            )
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        return coding, delimiter, header

    def _blocks(self) -> Iterator[tuple[pa.RecordBatch, list[tuple[str, str]]]]:
        """The file as batches of text columns, each with the rows that had the wrong field count
        (as text, with the reason): those go to rejects rather than failing the file."""
        coding, delimiter, _ = self._dialect
        ragged: list[tuple[str, str]] = []

        def bad_row(row: Any) -> str:
            why = f"row has {row.actual_columns} fields where the header has {row.expected_columns}"
            ragged.append((shown(row.text), why))
            return "skip"

        try:
            # bytes that are not UTF-8 marked, in their records, for _unreadable to find
            with MarkedUTF8(self.path) if coding.undecodable else nullcontext(self.path) as source:
                reader = self._open_csv(source, bad_row)
                if reader is None:
                    return
                with reader:
                    for batch in reader:
                        if coding.undecodable or coding.nul:
                            batch, unreadable = _unreadable(batch, coding, delimiter)
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
        coding, delimiter, header = self._dialect
        utf8 = coding.codec in ("utf-8", "utf-8-sig")
        try:
            return pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(
                    # pyarrow reads UTF-8 itself (skipping a BOM), other encodings through Python
                    encoding="utf8" if utf8 else coding.codec,
                    block_size=self._block_size,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, newlines_in_values=True, invalid_row_handler=bad_row
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as e:
            if "Empty CSV file" not in str(e):
                raise
            return None

    def _detect(self, batch: pa.RecordBatch) -> _Layout:
        """Where the file keeps its geometry and ids, from its first batch and the options."""
        layout = self._detect_geometry(batch)
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

    def _detect_geometry(self, batch: pa.RecordBatch) -> _Layout:
        named = "geometry" in self.options
        if "x" in self.options and not named:
            return _xy_layout(batch, self._column(batch, "x"), self._column(batch, "y"))
        columns = [self._column(batch, "geometry")] if named else range(batch.num_columns)
        for kind in ("wkb", "wkt"):
            for i in columns:
                share, srid = _probe(batch.column(i), kind)
                if share > (0 if named else 0.5):
                    return _Layout(kind, (i,), f"EPSG:{srid}" if srid else None)
        if named:  # nothing readable in the first rows: each row's error will say why
            return _Layout("wkt", tuple(columns))
        x, y = (_coordinate_column(batch, words) for words in (_LON, _LAT))
        if x is not None and y is not None and x != y:
            return _xy_layout(batch, x, y)
        return _Layout(None)

    def _scan(self) -> _Layout:
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
                self._layout, self._count = layout or _Layout(None), count
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

    def _batch(self, batch: pa.RecordBatch, layout: _Layout) -> SourceBatch:
        n = batch.num_rows
        geoms, errors = self._geometries(batch, layout)
        skip = layout.columns if layout.kind in ("wkb", "wkt") else ()
        keep = [i for i in range(batch.num_columns) if i not in skip]
        names = [batch.schema.names[i] for i in keep]
        rows = zip(*(_typed(batch.column(i)) for i in keep), strict=False) if keep else [()] * n
        if layout.id is None:
            ids: list[str | None] = [None] * n
        else:
            ids = _present(batch.column(layout.id))[0].to_pylist()
        return SourceBatch(
            source_ids=ids,
            geometries=geoms,
            properties=[dict(zip(names, row, strict=False)) for row in rows],
            records=_records(batch, self._dialect[1]),
            crs=layout.crs,
            axis_order="xy",
            errors=errors,
            default_crs=layout.default_crs,
        )

    @staticmethod
    def _geometries(
        batch: pa.RecordBatch, layout: _Layout
    ) -> tuple[np.ndarray | Points, list[str | None]]:
        """Shapely geometries (None where the row has none) or, from a coordinate pair, Points;
        and why a row's cannot be read."""
        n = batch.num_rows
        names = batch.schema.names
        errors: list[str | None] = [None] * n
        geoms: np.ndarray | Points = np.full(n, None, dtype=object)
        if layout.kind == "xy":
            x, x_given, x_ok = _numbers(batch.column(layout.columns[0]))
            y, y_given, y_ok = _numbers(batch.column(layout.columns[1]))
            readable = pc.and_(x_ok, y_ok)
            ok = readable.to_numpy(zero_copy_only=False)
            xy = np.column_stack([a.to_numpy(zero_copy_only=False) for a in (x, y)])
            xy[~ok] = np.nan
            geoms = Points(xy)
            wrong = pc.and_(pc.or_(x_given, y_given), pc.invert(readable))
            for r in np.flatnonzero(wrong.to_numpy(zero_copy_only=False)):
                cells = [f"{names[i]}={batch.column(i)[r].as_py()!r}" for i in layout.columns]
                errors[r] = f"unreadable coordinates: {', '.join(cells)}"
        elif layout.kind is not None:
            i = layout.columns[0]
            clean, present = _present(batch.column(i))
            geoms, srids = _parse(clean, layout.kind)
            what = f"{layout.kind.upper()} in column {names[i]}"
            unread = present.to_numpy(zero_copy_only=False) & shapely.is_missing(geoms)
            for r in np.flatnonzero(unread):
                errors[r] = f"unreadable {what}: {clean[r].as_py()[:80]}"
            srid = int(layout.crs.removeprefix("EPSG:")) if layout.crs else 0
            first = layout.crs or "no SRID"
            for r in np.flatnonzero((srids > 0) & (srids != srid)):
                errors[r] = f"SRID {srids[r]} of the {what} differs from the first rows' ({first})"
                geoms[r] = None
        return geoms, errors
