"""The rows of an Arrow IPC file in the order of their keys, in bounded memory: a bucket sort.

A source too large to sort in memory is spilled to an Arrow IPC file (pipelines.core.order).
Sorting the whole payload (WKB, JSON) in one engine makes memory grow with the source, so only
the keys are held (8 bytes a row, twice that while rows are distributed): every so many of them
in sorted order cut the key range into buckets of about `bucket_bytes` of rows each; one pass
appends each batch's rows, grouped by bucket, to one file beside the spill, each group a record
batch of it; then each bucket, in key order, is read whole (its groups, by their places in
that file) and sorted in memory. Buckets receive their rows in the spill's order and are
sorted stably, so ties keep it: the order is exactly that of one stable sort of the whole
file. A key that more rows share than a bucket holds (rows without a bbox, many features at
one address) gets a bucket of its own, already in order, streamed batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

__all__ = ["MAX_BUCKETS", "sorted_batches"]

MAX_BUCKETS = 256
"""At most about this many buckets (twice as many where many keys repeat): beyond
`MAX_BUCKETS * bucket_bytes` of spill, buckets grow with the file."""
BUFFER = 1 << 20
"""Bytes gathered before each write to the buckets' file: Arrow's IPC writer writes each buffer
of each batch (and its padding) on its own, a system call each on a file it opens itself."""


@contextmanager
def _open(path: Path) -> Iterator[pa.ipc.RecordBatchFileReader]:
    """An IPC file read, not mapped: mapped pages would count as the process's memory."""
    with pa.OSFile(str(path)) as file:
        yield pa.ipc.open_file(file)


def _bounds(keys: np.ndarray, rows_per_bucket: int) -> np.ndarray:
    """Lower bounds of the buckets, ascending: every `rows_per_bucket`-th key in sorted order
    opens one. A key that holds the next `rows_per_bucket` places too gets a bucket of its own
    (k to k + 1), so that every other bucket holds fewer than twice `rows_per_bucket` rows."""
    ordered = np.sort(keys)
    at = np.arange(0, len(ordered), rows_per_bucket)
    cuts = ordered[at]
    heavy = cuts[ordered[np.minimum(at + rows_per_bucket, len(ordered) - 1)] == cuts]
    return np.unique(np.concatenate([cuts, heavy + np.uint64(1)]))


def _distribute(
    spill: pa.ipc.RecordBatchFileReader, keys: np.ndarray, bounds: np.ndarray, path: Path
) -> tuple[list[list[int]], list[list[np.ndarray]]]:
    """Each batch's rows appended to the file `path`, a record batch per bucket they fall in
    (one file, not one per bucket: 20-60 ms less of creating, opening and removing files on
    the 422 MB CityGML file's 21 buckets); each bucket's record batches (their places in the
    file) and keys. The file is written through a buffer (`BUFFER`): on the 422 MB CityGML
    file's spill replayed (85 MB, 20 batches in 21 buckets: 420 batches of 17 columns), this
    pass took 121 -> 82 ms of thread CPU."""
    places: list[list[int]] = [[] for _ in bounds]
    bucket_keys: list[list[np.ndarray]] = [[] for _ in bounds]
    with (
        pa.output_stream(str(path), buffer_size=BUFFER) as sink,
        pa.ipc.new_file(sink, spill.schema) as writer,
    ):
        start = 0
        for i in range(spill.num_record_batches):
            batch = spill.get_batch(i)
            own = keys[start : start + batch.num_rows]
            start += batch.num_rows
            bucket = np.searchsorted(bounds, own, side="right") - 1
            order = np.argsort(bucket, kind="stable")
            present, first = np.unique(bucket[order], return_index=True)
            # the batch in bucket order in one take, each bucket's rows a slice of it: a take
            # per bucket cost 0.25 ms a call on top of its bytes (fountains, 50 MB: 210 calls)
            grouped = batch.take(order)
            ends = [*first[1:].tolist(), len(order)]
            for b, begin, end in zip(present.tolist(), first.tolist(), ends, strict=True):
                places[b].append(writer.stats.num_record_batches)
                writer.write_batch(grouped.slice(begin, end - begin))
                bucket_keys[b].append(own[order[begin:end]])
    return places, bucket_keys


def _bucket(
    buckets: pa.ipc.RecordBatchFileReader, places: list[int], keys: np.ndarray, single_key: bool
) -> Iterator[pa.RecordBatch]:
    """The rows of one bucket (its record batches at `places`) in key order, ties in the order
    they came."""
    if single_key:
        yield from (buckets.get_batch(i) for i in places)
        return
    # taken from its chunks in one call, not joined first (1.1 -> 0.8 ms on 10,000 fountains
    # in 13 chunks)
    table = pa.Table.from_batches([buckets.get_batch(i) for i in places], buckets.schema)
    yield from table.take(np.argsort(keys, kind="stable")).to_batches()


def sorted_batches(
    path: Path, keys: np.ndarray, bucket_bytes: int, buckets: Path
) -> Iterator[pa.RecordBatch]:
    """The rows of the IPC file `path` in the order of `keys` (one per row, in the file's
    order; stable), using the file `buckets` (written, then removed) for buckets of about
    `bucket_bytes`."""
    rows = len(keys)
    if not rows:
        return
    row_bytes = max(path.stat().st_size / rows, 1.0)
    rows_per_bucket = max(int(bucket_bytes / row_bytes), -(-rows // MAX_BUCKETS), 1)
    bounds = _bounds(keys, rows_per_bucket)
    try:
        with _open(path) as spill:
            places, bucket_keys = _distribute(spill, keys, bounds, buckets)
        del keys
        with _open(buckets) as reader:
            for b, where in enumerate(places):
                if not where:
                    continue
                single = b + 1 < len(bounds) and bounds[b + 1] == bounds[b] + np.uint64(1)
                yield from _bucket(reader, where, np.concatenate(bucket_keys[b]), single)
                bucket_keys[b] = []
    finally:
        buckets.unlink(missing_ok=True)
