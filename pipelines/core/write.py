"""Write harmonised batches as GeoParquet 1.1, one row group per batch, and the rejects.

The `geo` metadata (geometry types, bbox) is only known once every batch is written, so it is
added when the file is closed, to the footer and to the Arrow schema stored in it
(pipelines.geoarrow); memory holds one batch at a time. Each geometry column's CRS is the one
the schema file gives it (`crs:`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj

from citypipe import schemas
from citypipe.core.geoarrow import ARROW_SCHEMA, arrow_schema
from citypipe.core.lake_layout import fsync
from citypipe.geo import wkb

__all__ = [
    "GEOPARQUET_VERSION", "BesideWriter", "GeoParquetWriter", "RowsWriter", "close_flushed",
    "empty_file",
]  # fmt: skip

GEOPARQUET_VERSION = "1.1.0"
LEVEL = 3
COMPRESSION = {"compression": "zstd", "compression_level": LEVEL, "data_page_size": 8 << 20}
"""zstd as the GeoParquet distribution guide recommends: measured on 596,400 features (bench/run.py
--group lake), level 3 writes a file 2.3x smaller than snappy (28.7 against 65.1 MB; JSON
properties shrink most) in 1.25x the encoding time, which is 1 % of the ingest; level 1 is
38 MB, levels 6 and 9 gain 10 % more for 3x the time. Pages of up to 8 MB (a row group's
column in one page, mostly) give zstd more JSON to find repeats in: properties 24 % smaller,
written faster, at no cost to pruning, which works on row groups. On the same features the
schema's further choices: byte-stream-split floats (the covering 5.6 -> 4.7 MB); in files of
large row groups (SCHEMA_LEVELS_FROM), level 7 for the covering (4.7 -> 4.5 MB), never
larger on the corpus files (0.93-1.00x), and level 3 for the 2D geometry and the JSON
`properties` (1 in smaller files). Level 7 left the geometry as it was here (4.8 -> 4.8 MB)
for 2.5-3x the CPU: the geometry column of an 8 x 8 NRW region's 16,896 objects (9 row
groups) 37.3 -> 15.0 ms at level 3 for 1,163 -> 1,169 kB, of a 6 x 5 fountains grid's 59,640
rows 24.2 -> 8.6 ms for 466 -> 471 kB (the lake's options, best of 5; 2026-12-06). Level 7
made the properties 12.5 -> 8.9 MB here (2026-12-03), but zstd's lazy levels (6 and up) take
5-7x level 3's CPU on JSON, in the run's tail, where one thread encodes the sorted row groups
while the other core has nothing left to do: the properties alone, each file's row groups
written as the lake does, thread CPU best of 3 (2026-12-06) at levels 7 / 5 / 4 / 3: the
422 MB CityGML file's (27,720 objects, 40 MB of JSON) 231 / 51 / - / 35 ms for 441 / 482 /
- / 483 kB; an 8 x 8 NRW region's (16,896 objects, 24 MB) 214 / 89 / 31 / 30 ms for 723 /
781 / 837 / 836 kB; a 6 x 5 fountains grid's (59,640, 15 MB) 162 / 147 / 38 / 29 ms for
878 / 935 / 1,061 / 1,069 kB.
DELTA_BYTE_ARRAY for feature ids was 0.77x on the benchmark but up to 1.15x on the corpus's
CityGML and CityJSON ids: not adopted. The 3D WKB columns (the features' geometry_3d, the
surfaces') take the schema's level 2 (in files under SCHEMA_LEVELS_FROM snappy, the schema's
`small_file_codec`: the features' file is encoded after the run, alone, and its 3D WKB is most
of it: Delft's 8.7 -> 4.0 ms for 1.65x the file's bytes; the surfaces' with their measures,
Melbourne's file 2.25 -> 1.58 ms for 1.02x the surfaces files' bytes, 2026-12-06): Den Haag
CityJSON's 2.9 and 2.3 MB of them in 0.8-0.9x level 3's time for 0.98-0.99x the bytes (its
features and surfaces files 7.9 -> 7.5 and 5.3 -> 4.9 ms, alternated in one process), 0.8-0.9x
the time and 0.98-1.08x the bytes on the corpus's other 3D files (level 1: up to 1.3x the
bytes, PLATEAU's).
Text (ids, names, the JSON `properties` of a file under SCHEMA_LEVELS_FROM) takes level 1: the
60 features and surfaces files of the 43 corpus files that ingest are as small in total
(0.9986x; 0.97-1.015x a file) for 3 % less CPU (Den Haag CityJSON's features 11.8 -> 11.2 ms,
NRW CityGML's 2.5 -> 2.2, the fountains' 2.3 -> 2.0; 2026-12-05). The bbox covering takes snappy
there (the schema's `small_file_codec`): four leaves a file, each paying zstd's context, for
floats that byte-stream-split and the spatial order leave with runs of leading bytes; on the 12
corpus features files it changes 4 % less CPU for 1.0034x the bytes (up to 1.028x, Karlsruhe's
693 points: 1.16 -> 1.04 ms). Snappy, not LZ4_RAW, which Spark before 3.5 cannot read."""
SCHEMA_LEVELS_FROM = 16 << 20
"""Arrow bytes of a file's rows (where its writer is told them, as the spatial order does: else
of its first batch) from which the schema's higher zstd levels (`large_file_level`) apply. They
cost CPU in proportion to the bytes, about 4x level 3's on JSON text: on the corpus's files
under it they made files 2-8 % smaller for twice the write time (fountains 1.8 -> 5.0 ms; Den
Haag CityJSON's 5.2 MB of features, one row group, 8.5 -> 16 ms for 725 -> 710 kB, its
properties alone 1.7 -> 8.1 ms for 25 kB; Delft's 2 ms for 5 kB), 4 % of a 3D file's ingest;
kept for sources of several full row groups, whose files' size counts."""
TINY = 1 << 10
"""Arrow bytes of a column in a file's first row group under which it is stored uncompressed
instead of in zstd: pyarrow 26 spends some 25 us on each zstd column chunk creating its
compression context (apache/arrow#48187), more than zstd then takes to compress a kilobyte, for
a few hundred bytes. Most of it is zstd asking the processor what it supports (two CPUID
instructions in each context it makes, one a chunk), which traps to the host on a virtual
machine: 7.5 us of CPU and 15 us of wall time each on the benchmark's; zstd compresses 64
bytes in 18.8 us there and decompresses them in 17.5 (a reader pays it too), snappy in 0.9
(pyarrow.Codec, best of 2,000; 2026-12-05). On the 60 features and surfaces files of the 43
corpus files that ingest, in LZ4 (a few bytes less than uncompressed) one building's (sig3d)
write took 0.60 -> 0.36 ms, its surfaces' 0.23 -> 0.11, 10 % less CPU over all files for
1.0001x the bytes; not LZ4 but no codec, because Apache Spark before 3.5 (parquet-mr before
1.13: Sedona on it), RAPIDS and Velox cannot open a file with an LZ4_RAW column at all
(apache/parquet-java#2718)."""
_BUFFER = 1 << 20
"""Bytes gathered before each write to disk: Parquet writes every page and header on its own."""


class _ParquetFile:
    """A ParquetWriter on a buffered file (in a folder that exists: the run's staging area) or
    on a stream, which it closes with itself."""

    def __init__(self, path: Path | pa.NativeFile, schema: pa.Schema, **options: Any) -> None:
        self._stream = (
            pa.output_stream(str(path), buffer_size=_BUFFER) if isinstance(path, Path) else path
        )
        self.writer = pq.ParquetWriter(self._stream, schema, **{**COMPRESSION, **options})

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            self._stream.close()

    def shut(self) -> None:
        """Closes the file without its footer (a failed run's, which its abort removes)."""
        self.writer.is_open = False  # else the writer's __del__ writes the footer at last
        self._stream.close()


@cache
def _projjson(crs: str) -> dict[str, Any]:
    return pyproj.CRS.from_user_input(crs).to_json_dict()


class _ColumnStats:
    """Geometry types and bounding box of one geometry column, gathered batch by batch; the box
    from its bbox covering, unless the writer is told it (`extent`)."""

    def __init__(
        self, column: schemas.Column, covering: str | None, extent: np.ndarray | None = None
    ) -> None:
        if column.crs is None:
            raise schemas.SchemaMismatch(f"geometry column {column.name!r} without a crs")
        self.crs = _projjson(column.crs)
        """The column's CRS as the schema file names it (`crs:`), in PROJJSON."""
        self.covering = covering
        self.types: set[str] = set()
        self.bbox = np.array([np.inf, np.inf, -np.inf, -np.inf])
        self._read = covering
        """The covering the box is read from, batch by batch (None: told, or none)."""
        if covering is not None and extent is not None:
            self.bbox[:], self._read = extent, None

    def add(self, batch: pa.RecordBatch | pa.Table, column: str) -> None:
        self.types |= wkb.geometry_types(batch.column(column))
        if self._read is None:
            return
        x0, y0, x1, y1 = (
            c.to_numpy(zero_copy_only=False) for c in batch.column(self._read).flatten()
        )
        # nulls are NaN here, which fmin and fmax pass over
        self.bbox[:2] = np.fmin(self.bbox[:2], (np.fmin.reduce(x0), np.fmin.reduce(y0)))
        self.bbox[2:] = np.fmax(self.bbox[2:], (np.fmax.reduce(x1), np.fmax.reduce(y1)))

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "encoding": "WKB",
            "geometry_types": sorted(self.types),
            "crs": self.crs,
            "edges": "planar",
        }
        if np.isfinite(self.bbox).all():
            meta["bbox"] = self.bbox.tolist()
        if self.covering:
            meta["covering"] = {
                "bbox": {k: [self.covering, k] for k in ("xmin", "ymin", "xmax", "ymax")}
            }
        return meta


class GeoParquetWriter:
    """Streams record batches of one lake table into a GeoParquet 1.1 file.

    With `empty_file` off, no file is written unless a row comes (tables most sources have no
    rows for, such as surfaces). `extent`, where known, is the box of every row's bbox covering
    (xmin, ymin, xmax, ymax; infinite where none has one): the `geo` bbox of the column it
    covers, which the writer then does not read from each batch.
    """

    def __init__(
        self,
        path: Path | pa.NativeFile,
        table: schemas.Table,
        empty_file: bool = True,
        source_bytes: int | None = None,
        valueless: frozenset[str] = frozenset(),
        extent: np.ndarray | None = None,
    ) -> None:
        self.table = table
        self.source_bytes = source_bytes
        """Arrow bytes of every row the file will hold, where known: what picks the levels."""
        self.valueless = valueless
        """Columns no row of the file will hold a value in, where known: stored uncompressed."""
        self.metadata: dict[str, bytes] = {}
        """More footer key-value metadata, beside `geo`."""
        self.path = path
        self.empty_file = empty_file
        self._file: _ParquetFile | None = None
        covers = {c.covers: c.name for c in table.columns if c.covers}
        self._stats = {
            c.name: _ColumnStats(c, covers.get(c.name), extent) for c in table.geometry_columns
        }
        self.rows = 0

    def _open(self, first: pa.RecordBatch | pa.Table | None = None) -> _ParquetFile:
        """The file, opened at its `first` batch (None: empty), whose size picks the levels
        where the rows' whole size is not known."""
        if self._file is None:
            size = self.source_bytes
            if size is None:
                size = 0 if first is None else first.nbytes
            self._file = _ParquetFile(
                self.path,
                self.table.arrow,
                store_schema=False,  # the Arrow schema is stored at close, with `geo`
                **self.table.parquet_options,
                **self._compression(size >= SCHEMA_LEVELS_FROM, first),
            )
        return self._file

    def _compression(
        self, large: bool, first: pa.RecordBatch | pa.Table | None
    ) -> dict[str, dict[str, Any]]:
        """Each Parquet column's codec and zstd level (`schemas.Table.codecs`; in a file not
        `large`, `small_file_codecs`), but none for the columns without a value (`valueless`):
        their pages hold only the rows' null flags, a few bytes that zstd makes no smaller,
        and each zstd column chunk costs a compression context (30 us a column on Karlsruhe's
        693 features; 5-8 columns of the features of most tabular sources: a fountain has no
        height, name or level of detail); none either for a column of fewer than `TINY` bytes
        in the `first` batch."""
        given = self.table.codecs if large else self.table.small_file_codecs
        plain = set(self.valueless)
        # each size asked once, of the other columns a codec would take; none is under TINY
        # where the batch has TINY / 4 rows or more: every column of the lake takes 4 bytes a
        # row at least (offsets, int32, float32 boxes; null rows too), and an Arrow size is
        # asked in 1.7 us a column
        if first is not None and first.num_rows < TINY // 4:
            packed = {leaf.partition(".")[0] for leaf, c in given.items() if c != "none"}
            plain |= {name for name in packed - plain if first.column(name).nbytes < TINY}
        codecs = {
            leaf: "none" if leaf.partition(".")[0] in plain else codec
            for leaf, codec in given.items()
        }
        levels = self.table.compression_levels(LEVEL, large=large)
        return {
            "compression": codecs,
            "compression_level": {k: v for k, v in levels.items() if codecs[k] == "zstd"},
        }

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """One row group: a batch, or a table's chunks (written as they are, not joined)."""
        if batch.num_rows == 0:
            return
        for name, stats in self._stats.items():
            stats.add(batch, name)
        writer = self._open(batch).writer
        if isinstance(batch, pa.Table):
            writer.write_table(batch, row_group_size=batch.num_rows)
        else:
            writer.write_batch(batch)
        self.rows += batch.num_rows

    def geo_metadata(self) -> dict[str, Any]:
        return {
            "version": GEOPARQUET_VERSION,
            "primary_column": self.table.geometry_columns[0].name,
            "columns": {n: s.metadata() for n, s in self._stats.items()},
        }

    def close(self) -> None:
        if self._file is None and not self.empty_file:
            return
        file = self._open()
        geo = self.geo_metadata()
        file.writer.add_key_value_metadata(
            {
                "geo": orjson.dumps(geo),
                ARROW_SCHEMA: arrow_schema(
                    self.table.arrow, geo
                ),  # replaces the one of the opening
                **self.metadata,
            }
        )
        file.close()

    def shut(self) -> None:
        """Closes the file, if open, without its footer: a failed run's."""
        if self._file is not None:
            self._file.shut()


def close_flushed(writer: GeoParquetWriter, written: Future[None] | None) -> None:
    """On the thread that wrote `writer`'s rows, once their future (`written`) is done: the
    footer, then the file flushed to disk, so the commit need not flush it on the run's thread;
    after a failed write the file is shut without a footer and the write's error raised."""
    try:
        if written is not None:
            written.result()
    except BaseException:
        writer.shut()
        raise
    writer.close()
    assert isinstance(writer.path, Path)  # a file: a stream is no file to flush
    fsync(writer.path)


class BesideWriter:
    """A `GeoParquetWriter` that encodes on a thread of its own, beside the run: pyarrow
    encodes, compresses and writes without the GIL, so a 3D source's surfaces are written
    while its features are sorted and written (Den Haag CityJSON's 7 ms of surfaces beside its
    12 ms of features, on two cores). One batch at a time: `write` waits for the previous
    one, so memory holds at most two; the thread starts with the first large batch
    (`from_rows`), so a source without surfaces, or with few, pays nothing. `close` hands the
    footer to the thread too, behind the last batch and without waiting for it (a source
    read in one batch has its surfaces and features encoded at once), and the flush to disk
    the commit would else do on the run's thread (`flushed`); `wait` (before the run commits)
    returns once the file is whole and flushed, raising the thread's error if any: a failed
    write's, whose file is then shut without a footer.

    Used as a context manager, as `OrderedWriter`: on an exception the file is only shut, once
    the thread is done with it (no footer, no flush: the run's staging folder is removed)."""

    from_rows = 4096
    """A batch of fewer rows, while no thread has started, is written on the run's thread: on
    a small 3D file (Melbourne's roads, PLATEAU's building) a thread cost 0.5-1.0 ms of CPU
    more than it saved (measured in one process, best of 30 ingests). A writer that knows its
    file is large gives its own (0: a thread from the first batch)."""

    def __init__(self, writer: GeoParquetWriter, from_rows: int | None = None) -> None:
        self.writer = writer
        if from_rows is not None:
            self.from_rows = from_rows
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None
        self.flushed = False
        """The file is whole and on disk (its thread flushed it once it was closed)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
            return
        with suppress(Exception):  # the run's error is the one raised
            self._wait_last()
        self.writer.shut()

    @property
    def metadata(self) -> dict[str, bytes]:
        return self.writer.metadata

    def _submit(self, work: Any, *args: Any) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="citypipe-write")
        self._last = self._pool.submit(work, *args)

    def _wait_last(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            last.result()

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if self._pool is None and batch.num_rows < self.from_rows:
            self.writer.write(batch)
        elif batch.num_rows:
            self._wait_last()
            self._submit(self.writer.write, batch)

    def close(self) -> None:
        if self._pool is None:  # no thread started: as the writer itself would, on this thread
            self.writer.close()
            return
        self._submit(self._close_flushed, self._last)

    def _close_flushed(self, last: Future[None] | None) -> None:
        """On the thread, once the `last` write is done (one thread takes them in order)."""
        close_flushed(self.writer, last)
        self.flushed = True

    def wait(self) -> bool:
        """Whether the file is flushed (`flushed`), once its thread is done; again at once."""
        if self._pool is not None:
            try:
                self._wait_last()
            finally:
                self._pool.shutdown()
                self._pool = None
        return self.flushed


class RowsWriter:
    """Plain Parquet from rows of dicts, batch by batch; no file at all when no row comes."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._file: _ParquetFile | None = None
        self.rows = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._file is None:
            self._file = _ParquetFile(self.path, self.schema)
        self._file.writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=self.schema))
        self.rows += len(rows)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def empty_file(table: schemas.Table) -> bytes:
    """The bytes of a lake table's file without rows (GeoParquet where it has geometry)."""
    sink = pa.BufferOutputStream()
    if table.geometry_columns:
        GeoParquetWriter(sink, table).close()
    else:
        pq.write_table(table.arrow.empty_table(), sink, **COMPRESSION)
    return sink.getvalue().to_pybytes()
