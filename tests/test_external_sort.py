"""The out-of-core sort (pipelines.core.external_sort) gives exactly one stable sort of the whole
file, whatever the keys (many repeated, all alike, far apart) and the bucket size, and leaves
no bucket behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from citypipe.core.external_sort import _bounds, sorted_batches

_keys = st.one_of(
    st.lists(st.integers(0, 5), max_size=300),  # keys many rows share
    st.lists(st.integers(0, 2**32), max_size=300),  # Hilbert keys, nearly all distinct
    st.lists(st.just(7), max_size=300),  # one key for every row (rows without a bbox)
    st.lists(  # runs of a key beside single ones: many features at one address
        st.tuples(st.integers(0, 2**32), st.integers(1, 60)), max_size=20
    ).map(lambda runs: [k for k, n in runs for _ in range(n)]),
)


def _spill(folder: Path, n: int, batch_rows: int) -> Path:
    """An IPC file of `n` rows numbered in order, with a text payload, in batches."""
    path = folder / "spill.arrow"
    rows = pa.array(np.arange(n, dtype=np.int64))
    table = pa.table({"row": rows, "payload": pa.compute.cast(rows, pa.string())})
    with pa.ipc.new_file(str(path), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return path


@settings(max_examples=80, deadline=None)
@given(keys=_keys, batch_rows=st.integers(1, 60), bucket_bytes=st.integers(0, 3000))
def test_the_rows_come_out_as_one_stable_sort(keys, batch_rows, bucket_bytes):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _spill(folder, len(keys), batch_rows)
        keys = np.array(keys, dtype=np.uint64)
        out = list(sorted_batches(path, keys, bucket_bytes, folder / "buckets.arrow"))
        rows = pa.Table.from_batches(out, pa.ipc.open_file(str(path)).schema)
        order = rows.column("row").to_pylist()
        assert order == np.argsort(keys, kind="stable").tolist()
        assert rows.column("payload").to_pylist() == [str(r) for r in order]
        assert sorted(p.name for p in folder.iterdir()) == ["spill.arrow"]


@settings(max_examples=80, deadline=None)
@given(keys=_keys.filter(bool), rows_per_bucket=st.integers(1, 40))
@example(keys=[0] * 10 + [1, 2], rows_per_bucket=4)
def test_a_bucket_holds_fewer_than_twice_its_rows_or_one_key(keys, rows_per_bucket):
    keys = np.array(keys, dtype=np.uint64)
    bounds = _bounds(keys, rows_per_bucket)
    bucket = np.searchsorted(bounds, keys, side="right") - 1
    for b in np.unique(bucket):
        held = keys[bucket == b]
        assert len(held) < 2 * rows_per_bucket or len(np.unique(held)) == 1, (b, held)


def test_an_error_in_the_caller_leaves_no_bucket(tmp_path):
    path = _spill(tmp_path, 1000, 100)
    keys = np.random.default_rng(3).integers(0, 1 << 32, 1000).astype(np.uint64)
    batches = sorted_batches(path, keys, 800, tmp_path / "buckets.arrow")
    next(batches)
    assert (tmp_path / "buckets.arrow").exists()  # the buckets exist while it runs
    with pytest.raises(RuntimeError):
        batches.throw(RuntimeError("the run failed"))
    assert not (tmp_path / "buckets.arrow").exists()
