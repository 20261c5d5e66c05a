"""Helpers shared by the ordered writer's tests (test_order, test_order_threads)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pyarrow.parquet as pq
from conftest import ROOT

from citypipe import schemas
from citypipe.core.order import SORT_KEY, OrderedWriter


def bench_module(name: str):
    """bench/<name>.py imported by its path (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def footers_of(path) -> dict[str, dict]:
    """The file's GeoParquet and sort-key metadata."""
    meta = pq.read_metadata(path).metadata
    return {k: json.loads(meta[k.encode()]) for k in ("geo", SORT_KEY)}


def write_ordered(path, batches, **options) -> None:
    """`batches` written through an ordered writer of 500-row groups."""
    with OrderedWriter(path, schemas.feature_schema(), row_group_rows=500, **options) as writer:
        for batch in batches:
            writer.write(batch)
