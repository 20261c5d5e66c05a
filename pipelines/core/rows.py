"""Rows of the lake's tables built against schemas/feature-v1.yaml.

Every row is made of exactly the columns the schema file names, in its order and types: a
column renamed, added or removed on one side only raises `schemas.SchemaMismatch` when the
harmoniser is made (before the first batch), never a column of nulls in the lake. So does a
geometry column whose `crs:` is not the OGC:CRS84 that harmonising takes coordinates to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from citypipe import schemas
from citypipe.core.measure import Measures
from citypipe.core.properties import record_text
from citypipe.geo.crs import CRS84

__all__ = ["CONSTANT", "FILLED", "FeatureRows", "bbox", "reject", "surfaces"]

FILLED = (
    "feature_id", "source_id", "theme", "feature_class", "parent_id", "name", "geometry",
    "geometry_3d", "height_m", "lod", "observed_at", "properties", "bbox",
)  # fmt: skip
"""The features columns a batch fills record by record."""
CONSTANT = ("source", "source_crs", "source_format", "ingested_at")
"""The features columns with one value for a whole batch."""
_SURFACES = (
    "feature_id", "source", "surface_type", "area_m2", "tilt_deg", "azimuth_deg", "geometry_3d",
)  # fmt: skip
_REJECTS = ("source", "source_id", "reason", "record", "ingested_at", "run_id")


def conform() -> None:
    """Raise `SchemaMismatch` where the schema file's tables are not the ones built here."""
    schema = schemas.feature_schema()
    schema.conform(FILLED + CONSTANT)
    schema.table("surfaces").conform(_SURFACES)
    schema.table("rejects").conform(_REJECTS)
    for table in (schema, schema.table("surfaces")):
        for c in table.geometry_columns:
            if c.crs is None or not _is_crs84(c.crs):
                raise schemas.SchemaMismatch(
                    f"the {table.name} table: geometry column {c.name!r} in {c.crs}, "
                    "but harmonised coordinates are in OGC:CRS84"
                )


@cache
def _is_crs84(crs: str) -> bool:
    """Whether a schema file's `crs:` is OGC:CRS84: pyproj parses the name once per process,
    not once per run (0.1 ms a column)."""
    return CRS84.equals(crs)


class FeatureRows:
    """Builds the features table's record batches: the columns a batch fills (lists, Arrow
    arrays, or None for nulls) and the values shared by all of its rows."""

    def __init__(self) -> None:
        conform()
        self.schema = schemas.feature_schema().arrow

    def batch(
        self, m: int, filled: Mapping[str, Any], constant: Mapping[str, Any]
    ) -> pa.RecordBatch:
        """`m` rows; `filled` maps every name of `FILLED`, `constant` every one of `CONSTANT`."""
        columns = []
        for f in self.schema:
            if f.name in constant:
                columns.append(pa.repeat(pa.scalar(constant[f.name], type=f.type), m))
                continue
            value = filled[f.name]
            if value is None:
                columns.append(pa.nulls(m, f.type))
            else:
                columns.append(
                    value if isinstance(value, pa.Array) else pa.array(value, type=f.type)
                )
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


def surfaces(
    source: str, measures: Measures | None, keep: Sequence[int], feature_ids: pa.Array
) -> pa.RecordBatch | None:
    """Rows of the surfaces table for the kept features' semantic surfaces. Where every record
    is kept (`keep` as long as `feature_ids`, one a record) so is every surface: its columns
    are taken whole, not looked up row by row (Den Haag's 16,209 surfaces)."""
    owner = measures.surface_owner if measures is not None else None
    if measures is None or owner is None or not len(owner):
        return None
    rows = slice(None) if len(keep) == len(feature_ids) else np.flatnonzero(np.isin(owner, keep))

    def floats(values: np.ndarray | None) -> pa.Array:
        assert values is not None  # measured with the surfaces
        return pa.array(values[rows], type=pa.float64(), from_pandas=True)

    ids = feature_ids.take(owner[rows])
    columns = {
        "feature_id": ids,
        "source": pa.repeat(pa.scalar(source), len(ids)),
        "surface_type": pa.array(np.asarray(measures.surface_types, object)[rows], pa.string()),
        "area_m2": floats(measures.surface_area),
        "tilt_deg": floats(measures.surface_tilt),
        "azimuth_deg": floats(measures.surface_azimuth),
        "geometry_3d": measures.surface_wkb_of(rows),
    }
    table = schemas.feature_schema().table("surfaces").arrow
    # cast only where a column is not of the schema's type: each cast is a compute call (every
    # column's were 14 us of Melbourne's 53, none of them needed)
    typed = [c if (c := columns[f.name]).type == f.type else c.cast(f.type) for f in table]
    return pa.RecordBatch.from_arrays(typed, schema=table)


def reject(
    source: str,
    source_id: str | None,
    reason: str,
    record: Any,
    ingested_at: datetime,
    run_id: str,
) -> dict[str, Any]:
    """A row of the rejects table."""
    return dict(
        zip(
            _REJECTS,
            (source, source_id, reason, record_text(record), ingested_at, run_id),
            strict=True,
        )
    )


def _outwards_f32(bounds: np.ndarray) -> np.ndarray:
    """The xmin, ymin, xmax and ymax columns of (xmin, ymin, xmax, ymax) rows in float32, each
    rounded outwards so each box still holds its geometry (a float32 nearest to a minimum may
    lie above it). Column by column, each contiguous: numpy's passes run over packed values
    (half the time of the rows' strided columns: Karlsruhe's 693 boxes 51 -> 27 us warm) and Arrow
    takes each column without a copy."""
    corners = bounds.T
    box = corners.astype(np.float32)
    for i, column in enumerate(box):
        low = i < 2
        out = column > corners[i] if low else column < corners[i]
        np.copyto(column, np.nextafter(column, np.float32(-np.inf if low else np.inf)), where=out)
    return box


def bbox(bounds: np.ndarray) -> pa.StructArray:
    """The bbox covering of geometries with these bounds; null where a geometry has none."""
    box = _outwards_f32(bounds)
    no_box = np.isnan(box).any(axis=0)  # over the packed columns: the rows' any was 8x slower
    return pa.StructArray.from_arrays(
        [pa.array(c) for c in box],
        fields=list(schemas.BBOX_TYPE),
        mask=pa.array(no_box) if no_box.any() else None,
    )
