"""GeoParquet 1.0 / 1.1 (and later versions whose encoding is known), and plain Parquet.

The `geo` key of the footer says which columns hold geometries, in which encoding and CRS:
WKB, or the GeoArrow native encodings (nested lists of x/y[/z] structs or interleaved
fixed-size lists). Files are read batch by batch with `ParquetFile.iter_batches`, so memory
holds one batch, never the file. A Parquet file without `geo` metadata is read too: columns
that Parquet itself types as GEOMETRY / GEOGRAPHY are WKB by the Parquet format (the GeoParquet
2.0 direction); else, as GDAL's Parquet driver reads such files, the first column named
geometry, wkb_geometry, wkt_geometry, geom, the_geom or wkt (any case) holds the geometry: WKB
where it is binary, WKT where it is text. Columns of other names stay attributes unless the
`geometry` option names them. Without `geo` metadata nothing declares a CRS (neither WKB nor WKT
defines one): such a source is refused until `--crs` names it.

What the footer says is parquet_metadata's, how geometries are read parquet_geometry's, and
how attributes become JSON values parquet_values'.

Options: `id` (column of source ids), `geometry` (primary column), `batch_size` (rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.parquet_facts import facts
from citypipe.connectors.parquet_geometry import to_shapely
from citypipe.connectors.parquet_metadata import Layout, geo_raw, read_layout
from citypipe.connectors.parquet_values import Records, values
from citypipe.geo.crs import is_lonlat, resolve, to_crs84
from citypipe.geo.errors import ConfigurationError, DataError

__all__ = ["GeoParquetConnector"]

_BATCH_ROWS = 10_000


def _lonlat(geoms: np.ndarray, crs: str | None) -> np.ndarray:
    """Geometries of a further geometry column in OGC:CRS84 (longitude first, as the lake's
    geometry and WFS's further geometries are); as written where their CRS is undefined or
    one citypipe cannot place."""
    if crs is None:
        return geoms
    try:
        placed = resolve(crs)
    except ConfigurationError:
        return geoms
    if is_lonlat(placed, "xy"):  # GeoParquet's WKB is x/y whatever the CRS's order
        return geoms
    # each in its own dimension
    return shapely.transform(geoms, to_crs84(placed, "xy"), include_z=None)


def _properties(batch: pa.RecordBatch, layout: Layout) -> list[dict[str, Any]]:
    """Each row's attributes as JSON values; geometry columns other than the primary as WKT,
    in OGC:CRS84."""
    columns: dict[str, list[Any]] = {}
    for name, array in zip(batch.schema.names, batch.columns, strict=False):
        if name == layout.primary or name in layout.hidden:
            continue
        if name in layout.geometries:
            column = layout.geometries[name]
            geoms, _ = to_shapely(array, column.encoding)
            geoms = _lonlat(geoms, column.crs)
            columns[name] = shapely.to_wkt(geoms, rounding_precision=-1).tolist()
        else:
            columns[name] = values(array)
    if not columns:
        return [{} for _ in range(batch.num_rows)]
    names = list(columns)
    return [dict(zip(names, row, strict=False)) for row in zip(*columns.values(), strict=False)]


class GeoParquetConnector(FileConnector):
    name = "geoparquet"
    known_options = frozenset({"id", "geometry", "batch_size"})
    title = "GeoParquet"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        # Parquet's footer carries the schema, and it is not in the head: the magic is all there is
        return 0.9 if head.startswith(b"PAR1") else 0.0

    def _fail(self, reason: str) -> DataError:
        return DataError(f"{self.path}: {reason}")

    def _open(self) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as e:
            raise self._fail(f"not a readable Parquet file: {e}") from e

    def _layout(self, pf: pq.ParquetFile) -> Layout:
        return read_layout(pf, self.path, self.options)

    def inspect(self) -> SourceInfo:
        with self._open() as pf:
            layout = self._layout(pf)
            count = pf.metadata.num_rows
            geo = json.loads(raw) if (raw := geo_raw(pf)) is not None else None
            details = facts(pf, geo)
        primary = layout.geometries.get(layout.primary) if layout.primary else None
        return SourceInfo(
            format=layout.format,
            version=layout.version,
            crs=primary.crs if primary else None,
            layers=(layout.primary,) if layout.primary else (),
            count=count,
            details=details,
        )

    def read(self) -> Iterator[SourceBatch]:
        with self._open() as pf:
            layout = self._layout(pf)
            size = int(self.options.get("batch_size") or _BATCH_ROWS)
            try:
                for batch in pf.iter_batches(batch_size=size):
                    yield self._batch(batch, layout)
            except (pa.ArrowException, OSError) as e:
                raise self._fail(f"cannot be read: {e}") from e

    def _batch(self, batch: pa.RecordBatch, layout: Layout) -> SourceBatch:
        n = batch.num_rows
        properties = _properties(batch, layout)
        errors: list[str | None] | None = None
        crs: str | None = None
        records: Sequence[dict[str, Any]] = properties
        geoms = np.full(n, None, dtype=object)
        if layout.primary is not None:
            raw = batch.column(layout.primary)
            column = layout.geometries[layout.primary]
            geoms, unreadable = to_shapely(raw, column.encoding)
            crs = column.crs
            records = Records(properties, layout.primary, geoms, raw)
            if unreadable.any():
                why = f"geometry is not valid {column.encoding}"
                errors = [why if bad else None for bad in unreadable]
        ids = (
            [None if v is None else str(v) for v in batch.column(self.options["id"]).to_pylist()]
            if self.options.get("id")
            else [None] * n
        )
        return SourceBatch(
            source_ids=ids,
            geometries=geoms,
            properties=properties,
            records=records,
            crs=crs,
            axis_order="xy",
            errors=errors,
        )
