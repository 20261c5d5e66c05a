"""GeoParquet metadata in the Arrow schema a Parquet file stores, beside the footer's `geo` key.

Arrow readers (`pq.read_table`, `pq.read_schema`, pyarrow datasets, `GeoDataFrame.from_arrow`,
GDAL's Arrow-based drivers) take a file's schema from its `ARROW:schema` footer key, not from the
footer's other keys: without `geo` in that schema they find no geometry. pyarrow serialises
`ARROW:schema` when a writer opens, but `geo` holds the bbox and geometry types, known only when
the last batch is written. So the writer opens without it (`store_schema` off) and stores it at
close (`ParquetWriter.add_key_value_metadata`), with `geo` as its metadata and each geometry
column tagged as GeoArrow WKB with its CRS (the GeoArrow extension that `from_arrow` looks for):
the footer and the Arrow schema say the same, in one pass, with memory of one batch.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pyarrow as pa

__all__ = ["ARROW_SCHEMA", "arrow_schema"]

ARROW_SCHEMA = "ARROW:schema"
"""The footer key pyarrow (and Arrow C++, so GDAL) read a file's Arrow schema from."""
WKB_EXTENSION = "geoarrow.wkb"


def _crs(projjson: dict[str, Any]) -> dict[str, Any]:
    """A CRS as GeoArrow metadata: its authority code where it has one (`OGC:CRS84`, 9 bytes
    where its PROJJSON takes 1.4 kB, in the footer of every file: most of a small file's
    footer), else the PROJJSON (a compound CRS built for a source's heights)."""
    if isinstance(code := projjson.get("id"), dict):
        return {"crs": f"{code['authority']}:{code['code']}", "crs_type": "authority_code"}
    return {"crs": projjson, "crs_type": "projjson"}


def _tagged(field: pa.Field, column: dict[str, Any]) -> pa.Field:
    """A WKB geometry field as a GeoArrow extension: its CRS is the `geo` column's (GeoArrow has
    no default CRS, so OGC:CRS84 is written out too)."""
    meta = _crs(column["crs"])
    return field.with_metadata(
        {"ARROW:extension:name": WKB_EXTENSION, "ARROW:extension:metadata": orjson.dumps(meta)}
    )


def arrow_schema(schema: pa.Schema, geo: dict[str, Any]) -> bytes:
    """The `ARROW:schema` value of a file written with `schema` whose `geo` metadata is `geo`:
    base64 of the IPC-serialised schema, as Arrow's Parquet writer encodes it."""
    columns = geo["columns"]
    tagged = pa.schema(
        [_tagged(f, columns[f.name]) if f.name in columns else f for f in schema],
        metadata={"geo": orjson.dumps(geo)},
    )
    return base64.b64encode(tagged.serialize().to_pybytes())
