"""Write harmonised batches as GeoParquet 1.1, one row group per batch.

The `geo` metadata (geometry types, bbox) is only known once every batch is written, so it is
added to the footer when the file is closed; memory holds one batch at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

import schemas
from pipelines.crs import CRS84

__all__ = ["GeoParquetWriter", "write_table", "GEOPARQUET_VERSION"]

GEOPARQUET_VERSION = "1.1.0"
_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


class _ColumnStats:
    """Geometry types and bounding box of one geometry column, gathered batch by batch."""

    def __init__(self, dimensions: int) -> None:
        self.suffix = " Z" if dimensions == 3 else ""
        self.types: set[str] = set()
        self.bbox = np.array([np.inf, np.inf, -np.inf, -np.inf])

    def add(self, wkb: pa.Array) -> None:
        geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
        present = ~shapely.is_missing(geoms)
        if not present.any():
            return
        geoms = geoms[present]
        ids = shapely.get_type_id(geoms)
        # LinearRing (2) is written as LineString
        self.types.update(_TYPE_NAMES[1 if t == 2 else int(t)] + self.suffix for t in np.unique(ids))
        b = shapely.bounds(geoms)
        if not np.isnan(b).all():
            self.bbox = np.r_[
                np.fmin(self.bbox[:2], np.nanmin(b[:, :2], axis=0)),
                np.fmax(self.bbox[2:], np.nanmax(b[:, 2:], axis=0)),
            ]

    def metadata(self, covering: dict[str, Any] | None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "encoding": "WKB",
            "geometry_types": sorted(self.types),
            "crs": CRS84.to_json_dict(),
            "edges": "planar",
        }
        if np.isfinite(self.bbox).all():
            meta["bbox"] = [float(v) for v in self.bbox]
        if covering:
            meta["covering"] = covering
        return meta


class GeoParquetWriter:
    """Streams record batches of shared schema v1 into one GeoParquet 1.1 file."""

    def __init__(self, path: Path) -> None:
        self.schema = schemas.feature_schema()
        self.path = path
        self._writer = pq.ParquetWriter(path, self.schema.arrow, compression="zstd")
        self._stats = {c.name: _ColumnStats(c.dimensions or 2) for c in self.schema.geometry_columns}
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        for name, stats in self._stats.items():
            stats.add(batch.column(name))
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def geo_metadata(self) -> dict[str, Any]:
        coverings = {
            c.covers: {"bbox": {k: [c.name, k] for k in ("xmin", "ymin", "xmax", "ymax")}}
            for c in self.schema.columns
            if c.covers
        }
        primary = self.schema.geometry_columns[0].name
        return {
            "version": GEOPARQUET_VERSION,
            "primary_column": primary,
            "columns": {n: s.metadata(coverings.get(n)) for n, s in self._stats.items()},
        }

    def close(self) -> None:
        self._writer.add_key_value_metadata({"geo": orjson.dumps(self.geo_metadata()).decode()})
        self._writer.close()


def write_table(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    """A small plain Parquet file (rejects, the source summary) from rows of dicts."""
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, compression="zstd")
