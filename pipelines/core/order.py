"""Spatially ordered files: a source's rows sorted along a Hilbert curve of their bbox centres.

A lake file whose rows are in source order has row groups that each span the whole source, so
the bbox covering's min/max statistics let no reader skip any of them. Sorted along a Hilbert
curve over the source's own extent, nearby rows share row groups, and a bbox predicate
(`bbox.xmin <= ... AND bbox.xmax >= ...`) skips all but a few of them in DuckDB, GDAL or
pyarrow.

The keys need the source's extent, known only once every row is read, so `OrderedWriter` holds
a source's batches until it is closed, then feeds the GeoParquet writer its rows in key order,
one row group at a time: the file's metadata is the writer's own. A source larger than
`MEMORY_BUDGET` spills its batches to an Arrow IPC file in the run's staging folder and is
sorted there, a bucket of rows at a time (pipelines.core.external_sort): memory holds the
rows' bbox centres (16 bytes a row, taken as the batches come, so the covering is not read
again), then their keys (8 bytes a row), and one bucket, whatever the source's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import suppress
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import orjson
import pyarrow as pa

from citypipe import schemas
from citypipe.core.external_sort import sorted_batches
from citypipe.core.threads import Threads
from citypipe.core.write import BesideWriter, GeoParquetWriter, close_flushed

# each point's keys in one loop (pipelines/geo/hilbert.pyx); where it did not build, numpy
try:
    from citypipe.geo import hilbert
except ImportError:
    hilbert = None  # type: ignore[assignment]

__all__ = ["LEVEL", "ROW_GROUP_BYTES", "SORT_KEY", "OrderedWriter", "hilbert_keys"]

SORT_KEY = "citypipe:sort"
"""Footer key saying how a file's rows are ordered (JSON), for `inspect` and other readers."""
LEVEL = 16
"""Hilbert curve order: a 65536 x 65536 grid over the source's extent (about 0.3 m per cell
over a 20 km city), the same as geopandas' `hilbert_distance` default."""
ROW_GROUP_BYTES = 6 << 20
"""Arrow bytes of a row group of an ordered file, chosen by measurement (bench/run.py --group
lake): about 16,000 fountains (400 bytes a row) or 2,100 LoD2 buildings (3,000 bytes a row with
their solids), each a few km2 of a region. Sized in rows alone, 16,384 buildings took 60 km2
and a 1 km2 box read 1 row group in 10."""
MEMORY_BUDGET = 32 << 20
"""Arrow bytes of a source sorted in memory; a larger one is sorted out of core."""
BUCKET_BYTES = 4 << 20
"""Arrow bytes of rows sorted at once out of core: measured on 240 MB of fountains (741,524
rows), buckets of 16 MB raised the run's peak memory by 57 MB, buckets of 4 MB not at all."""
SEALED_FROM = 32 << 10
"""Arrow bytes of rows from which a sealed writer encodes them on its thread (`seal`), beside
the run's hash of its input, its files' closing and its history row: Parquet encodes without
the GIL, so with a core spare the run waits for what is left of the encoding, no longer for
all of it. A source of a few rows is encoded at close on the run's thread: the hand-off takes
longer than the little it hides. Chosen by wall, the target (bench/run.py --measure, repeat
15, best of 4-8 rounds, 1 MiB and this interleaved, 16:36-16:41, load 1.0-3.3): Karlsruhe's
291 kB of rows 8.62 / 7.77 / 7.85 -> 8.33 / 7.38 / 7.31 ms in three windows, the fountains'
768 kB 15.54 / 12.87 / 12.49 -> 12.98 / 12.34 / 11.68, Barcelona's districtes and barris
12.30 / 11.31 -> 11.60 / 11.77 and 20.84 / 19.35 -> 19.60 / 19.74, Jena's 38 kB 6.03 ->
5.57; sealed, Freiburg's 8 kB 5.05 -> 4.93 (noise), one OGC API item's 565 bytes 4.10 ->
4.40. The process's CPU grows by 0.1-0.5 ms; where no core is spare (load 5-13) the wall
does too (Karlsruhe 9.02 -> 10.49, the fountains 14.78 -> 15.33). From 1 MiB before, chosen by
CPU (Karlsruhe's encoding hand-off cost about what it hid: 1.8 ms more of the process's CPU at
load 7-8)."""
_NULL_KEY = np.uint64(1 << (2 * LEVEL))
"""Rows without a bbox (no geometry) come after every key, in source order."""
_ENCODING = Threads(1, "citypipe-encode")
"""The thread a sealed writer's rows are sorted and encoded on (`OrderedWriter.seal`)."""


_STEP = 4
"""Bits of each coordinate the Hilbert index takes per step (`_hilbert_table`)."""


@cache
def _hilbert_table() -> tuple[np.ndarray, np.ndarray]:
    """The Hilbert curve as a state machine over `_STEP` bits of x and y at a time: for each
    (state, x bits, y bits), the curve's 2 * `_STEP` digits there and the next state. A state
    is how the sub-curve is turned: bit 0 its coordinates complemented, bit 1 swapped (the two
    commute). Built by the classic bit-by-bit algorithm, once."""
    chunk = np.arange(1 << (2 * _STEP), dtype=np.uint64)
    state = np.repeat(np.arange(4, dtype=np.uint64), len(chunk))
    cx, cy = np.tile(chunk >> np.uint64(_STEP), 4), np.tile(chunk & np.uint64((1 << _STEP) - 1), 4)
    flip, swap = (state & np.uint64(1)) > 0, (state & np.uint64(2)) > 0
    digits = np.zeros_like(state)
    for bit in range(_STEP - 1, -1, -1):
        bx = (cx >> np.uint64(bit)) & np.uint64(1)
        by = (cy >> np.uint64(bit)) & np.uint64(1)
        rx = np.where(swap, by, bx) ^ flip
        ry = np.where(swap, bx, by) ^ flip
        digits = (digits << np.uint64(2)) | ((np.uint64(3) * rx) ^ ry)
        turn = ry == 0
        flip, swap = flip ^ (turn & (rx == 1)), swap ^ turn
    return digits, flip.astype(np.uint64) | (swap.astype(np.uint64) << np.uint64(1))


def _hilbert_index(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance along the Hilbert curve of cells (x, y) of the 2**LEVEL grid, the curve that
    starts at (0, 0) and ends at (2**LEVEL - 1, 0) (the classic one, as in geopandas): four
    table look-ups, not sixteen rounds of bit twiddling (0.14 ms on a few rows, 22 ms on
    100,000; now 0.025 and 1.6)."""
    digits, turns = _hilbert_table()
    x, y = x.astype(np.uint64), y.astype(np.uint64)
    d = np.zeros_like(x)
    state = np.zeros_like(x)
    mask, width = np.uint64((1 << _STEP) - 1), np.uint64(_STEP)
    for shift in range(LEVEL - _STEP, -1, -_STEP):
        at = np.uint64(shift)
        i = (state << (width + width)) | (((x >> at) & mask) << width) | ((y >> at) & mask)
        d = (d << (width + width)) | digits[i]
        state = turns[i]
    return d


def _scale(low: float, high: float) -> float:
    """Grid cells per unit along one axis of the extent: 0 where it has no width (every value
    its first cell); inf where it is a few ulps wide, as in geopandas (each value its first
    cell, 0 x inf, or its last, clipped)."""
    if not high > low:
        return 0.0
    return ((1 << LEVEL) - 1) / (float(high) - float(low))  # Python's floats: inf, no error


def _cells(values: np.ndarray, low: float, scale: float) -> np.ndarray:
    """Grid cells of coordinates along one axis of the extent (`_scale`)."""
    with np.errstate(over="ignore", invalid="ignore"):  # beyond a double, 0 x inf
        cells = np.nan_to_num((values - low) * scale)  # NaN: a row without bbox
    return np.clip(cells, 0, (1 << LEVEL) - 1).astype(np.uint64)


def _corners(bbox: pa.Array | pa.ChunkedArray) -> list[np.ndarray]:
    """xmin, ymin, xmax, ymax of a bbox covering's boxes in double precision, as geopandas'
    hilbert_distance takes them; NaN where a row has no bbox."""
    if isinstance(bbox, pa.ChunkedArray):
        bbox = bbox.combine_chunks()
    return [c.to_numpy(zero_copy_only=False).astype(np.float64) for c in bbox.flatten()]


def _hilbert_distances(x: np.ndarray, y: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """The sort keys of rows whose bbox centres are (x, y): each centre's Hilbert distance on
    the grid over `extent` (xmin, ymin, xmax, ymax); NaN (no bbox) gets the last key."""
    low_x, low_y = float(extent[0]), float(extent[1])
    scale_x, scale_y = _scale(low_x, extent[2]), _scale(low_y, extent[3])
    if hilbert is not None:
        digits, turns = _hilbert_table()
        return hilbert.distances(
            x, y, low_x, scale_x, low_y, scale_y, digits, turns, LEVEL, _STEP, _NULL_KEY
        )
    distances = _hilbert_index(_cells(x, low_x, scale_x), _cells(y, low_y, scale_y))
    distances[np.isnan(x)] = _NULL_KEY
    return distances


def hilbert_keys(bbox: pa.Array | pa.ChunkedArray, extent: np.ndarray) -> np.ndarray:
    """Sort keys of rows from their bbox covering: the Hilbert distance of each bbox's centre
    on the grid over `extent` (xmin, ymin, xmax, ymax); rows without a bbox sort last."""
    xmin, ymin, xmax, ymax = _corners(bbox)
    return _hilbert_distances((xmin + xmax) / 2.0, (ymin + ymax) / 2.0, extent)


class OrderedWriter:
    """A `GeoParquetWriter` for a table with a bbox covering (features) that receives a
    source's batches in any order and writes its rows in Hilbert order, in row groups of
    `row_group_rows` (if None: as many as take `ROW_GROUP_BYTES` on the source's average).

    Used as a context manager: on an exception nothing is sorted and nothing is written (the
    run's staging folder is removed with whatever it holds); a sealed writer's file is shut
    without its footer once its thread is done with it. A sealed writer's `close` hands the
    footer and the file's flush to its thread, behind the rows (`wait`), as `BesideWriter`'s.
    """

    def __init__(
        self,
        path: Path,
        table: schemas.Table,
        empty_file: bool = True,
        memory_budget: int = MEMORY_BUDGET,
        bucket_bytes: int = BUCKET_BYTES,
        row_group_rows: int | None = None,
    ) -> None:
        self.path = path
        self.table = table
        self.empty_file = empty_file
        self.metadata: dict[str, bytes] = {}
        """More footer key-value metadata, given to the GeoParquet writer."""
        self.rows = 0
        self.covering = next(c.name for c in table.columns if c.covers)
        self._budget = memory_budget
        self._bucket_bytes = bucket_bytes
        self._given_rows = row_group_rows
        self.row_group_rows = 0
        """Rows per row group, known once the source is read (at `close`)."""
        self._batches: list[pa.RecordBatch] = []
        self._bytes = 0
        self._source_bytes = 0
        self._extent = np.array([np.inf, np.inf, -np.inf, -np.inf])
        self._centres: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        """The bbox centres (x, y) of every row written, batch by batch: the keys are made of
        them once the extent is known, without reading the covering again."""
        self._spill: pa.ipc.RecordBatchFileWriter | None = None
        self._valueless = {c.name for c in table.columns}
        """The columns no row written so far holds a value in (stored uncompressed)."""
        self._sealed: tuple[GeoParquetWriter, Future[None]] | None = None
        """The file a sealed writer's thread writes the rows into, and that thread's work."""
        self._closing: Future[None] | None = None
        """A sealed writer's footer and flush, on its thread once closed (`wait`)."""
        self.flushed = False
        """The file is whole and on disk (a sealed writer's thread flushed it)."""

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
        elif self._sealed is not None:
            self._shut_sealed()
        elif self._spill is not None:
            self._spill.close()

    @property
    def _spill_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.unsorted.arrow")

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self.rows += batch.num_rows
        self._valueless = {
            c for c in self._valueless if batch.column(c).null_count == batch.num_rows
        }
        size = batch.nbytes  # summed over every buffer of every column: once a batch
        self._source_bytes += size
        xmin, ymin, xmax, ymax = _corners(batch.column(self.covering))
        low, high = np.fmin.reduce, np.fmax.reduce  # nulls are NaN, which these pass over
        extent = [low(xmin, initial=np.inf), low(ymin, initial=np.inf)]
        self._extent[:2] = np.fmin(self._extent[:2], extent)
        self._extent[2:] = np.fmax(
            self._extent[2:], [high(xmax, initial=-np.inf), high(ymax, initial=-np.inf)]
        )
        self._centres[0].append((xmin + xmax) / 2.0)
        self._centres[1].append((ymin + ymax) / 2.0)
        if self._spill is not None:
            self._spill.write_batch(batch)
            return
        self._batches.append(batch)
        self._bytes += size
        if self._bytes > self._budget:
            self._spill = pa.ipc.new_file(str(self._spill_path), batch.schema)
            for held in self._batches:
                self._spill.write_batch(held)
            self._batches = []

    def seal(self) -> None:
        """No more rows come: those held in memory, from `SEALED_FROM` bytes, are sorted and
        their row groups encoded on a thread from now (Arrow's take and Parquet encoding run
        without the GIL), while the run's thread does the rest (the input's hash, validation:
        Den Haag CityJSON's 16 ms of features beside them); `close` hands their footer to the
        thread too, and `wait` returns once it is written and flushed. A smaller source, or a
        spilled one, is sorted at `close`, as unsealed (a spilled one's row groups encoded on
        a thread then). The thread's row groups and pages take memory the run's thread has
        freed but the allocator does not hand to another thread: a peak of one row group more
        (Delft CityJSON's 65 -> 77 MB, bench/run.py --measure, 3 fresh processes each; bounded
        by ROW_GROUP_BYTES as before)."""
        if self._sealed is None and self._spill is None and self._source_bytes >= SEALED_FROM:
            parquet = self._parquet()
            self._sealed = parquet, _ENCODING.submit(self._write_ordered, parquet)

    def _write_ordered(self, writer: GeoParquetWriter | BesideWriter) -> None:
        for batch in self._ordered():
            writer.write(batch)

    def _parquet(self) -> GeoParquetWriter:
        """The file's writer, once every row is given (their row groups' size known)."""
        average = self._source_bytes / max(self.rows, 1)
        self.row_group_rows = self._given_rows or max(1, round(ROW_GROUP_BYTES / max(average, 1)))
        return GeoParquetWriter(
            self.path,
            self.table,
            source_bytes=self._source_bytes,
            valueless=frozenset(self._valueless),
            extent=self._extent,  # the covering's, read as the rows came
        )

    def _shut_sealed(self) -> None:
        """The sealed file shut without its footer, once its thread is done with it."""
        assert self._sealed is not None
        (parquet, encoded), self._sealed = self._sealed, None
        with suppress(Exception):  # the run's error (or the thread's, raised already) is raised
            encoded.result()
        parquet.shut()

    def close(self) -> None:
        """The file written whole; a sealed writer's footer and flush handed to its thread,
        behind its rows, without waiting for them (`wait`)."""
        if self._sealed is not None:
            (parquet, encoded), self._sealed = self._sealed, None
            parquet.metadata = {**self.metadata, **self._sort_metadata()}
            self._closing = _ENCODING.submit(self._close_flushed, parquet, encoded)
            return
        if self.rows == 0 and not self.empty_file:
            return
        parquet = self._parquet()
        # a spilled source's row groups are encoded on a thread while the next is sorted: both
        # are Arrow's work without the GIL, done after the source is read, so on two cores
        writer = parquet if self._spill is None else BesideWriter(parquet, from_rows=0)
        try:
            self._write_ordered(writer)
        finally:
            parquet.metadata = {**self.metadata, **self._sort_metadata()}
            try:
                writer.close()
            finally:
                if isinstance(writer, BesideWriter):
                    writer.wait()
                    self._spill_path.unlink(missing_ok=True)

    def _close_flushed(self, parquet: GeoParquetWriter, encoded: Future[None]) -> None:
        """On the thread, after its rows (one thread takes them in order)."""
        close_flushed(parquet, encoded)
        self.flushed = True

    def wait(self) -> bool:
        """Whether the file is flushed (`flushed`), once a sealed writer's thread has written
        its footer and flushed it (the commit waits here, after the run's history row is
        encoded: Delft CityJSON's footer and flush beside it), raising the thread's error; a
        wait interrupted (Ctrl-C) returns only once the thread is done with the file. Again,
        at once."""
        closing, self._closing = self._closing, None
        if closing is not None:
            try:
                closing.result()
            except BaseException:
                with suppress(Exception):  # raised already, or the thread still writes
                    closing.result()
                raise
        return self.flushed

    def _sort_metadata(self) -> dict[str, bytes]:
        if not np.isfinite(self._extent).all():
            return {}
        sort = {
            "order": "hilbert",
            "key": f"centre of {self.covering}",
            "level": LEVEL,
            "extent": self._extent.tolist(),
            "row_group_rows": self.row_group_rows,
        }
        return {SORT_KEY: orjson.dumps(sort)}

    def _row_distances(self) -> np.ndarray:
        """Every row's sort key (`_hilbert_distances`), in the order the rows came; the centres
        are freed."""
        (x, y), self._centres = self._centres, ([], [])
        if not x:
            return np.empty(0, np.uint64)
        return _hilbert_distances(np.concatenate(x), np.concatenate(y), self._extent)

    def _ordered(self) -> Iterator[pa.RecordBatch | pa.Table]:
        """The rows in key order, a row group at a time."""
        if self._spill is not None:
            yield from self._out_of_core()
            return
        if not self._batches:
            return
        # the held rows as one batch, which each row group takes from: a Table's take joins
        # the chunks of every column again at each call (fountains, 50 MB: 217 -> 32 ms); a
        # source read in one batch (most small files) is taken from as it is
        held, self._batches = self._batches, []
        rows = (
            held[0]
            if len(held) == 1
            else pa.Table.from_batches(held, self.table.arrow).combine_chunks().to_batches()[0]
        )
        del held
        order = np.argsort(self._row_distances(), kind="stable")
        in_order = bool((order[1:] > order[:-1]).all())  # one row, or rows sorted already
        for start in range(0, len(order), self.row_group_rows):
            if in_order:  # a slice shares the rows' buffers: take copied every column
                yield rows.slice(start, self.row_group_rows)
            else:
                yield rows.take(order[start : start + self.row_group_rows])

    def _out_of_core(self) -> Iterator[pa.Table]:
        """The spilled rows by key, bucket by bucket (pipelines.core.external_sort), in row
        groups, each the buckets' batches it spans (the writer takes their chunks as they are:
        joined first, every row was copied once more); the buckets go to a file beside the
        spill, in the run's staging."""
        assert self._spill is not None
        self._spill.close()
        distances = self._row_distances()
        buckets = self.path.with_name(f"{self.path.stem}.buckets.arrow")
        batches = sorted_batches(self._spill_path, distances, self._bucket_bytes, buckets)
        del distances
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in batches:
            pending.append(batch)
            held += batch.num_rows
            while held >= self.row_group_rows:
                group = pa.Table.from_batches(pending, self.table.arrow)
                yield group.slice(0, self.row_group_rows)
                rest = group.slice(self.row_group_rows)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield pa.Table.from_batches(pending, self.table.arrow)
