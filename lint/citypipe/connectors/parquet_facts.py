"""What `citypipe inspect` says of a (Geo)Parquet file beyond its format, CRS and count: how a
reader will meet it. Its geometry columns with their types and CRS, what the heights of a lake
file's `geometry_3d` refer to (`HEIGHTS_KEY`), the bbox covering readers prune row groups with,
the row groups and compression, and the order of its rows where the writer recorded one
(`SORT_KEY`). Everything comes from the footer: no row is read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow.parquet as pq

__all__ = ["HEIGHTS_KEY", "SORT_KEY", "facts"]

HEIGHTS_KEY = "citypipe:crs_3d"
"""Footer key of a lake file whose `geometry_3d` heights refer to a CRS the source names: the
PROJJSON of OGC:CRS84 + the source's vertical CRS (or OGC:CRS84h). Not the column's `crs` in
`geo`, which stays OGC:CRS84: DuckDB refuses to read one column in two CRSs, and a lake folder
holds sources of different height datums (and 2D sources)."""

SORT_KEY = b"citypipe:sort"
"""Footer key in which a writer records how it ordered the rows (JSON: `order`, `key`, ...);
citypipe's lake files carry it when spatially ordered."""


def _crs_name(column: Mapping[str, Any]) -> str:
    """A column's CRS as a person reads it: the PROJJSON's name, an absent `crs` being OGC:CRS84
    (GeoParquet) and `crs: null` undefined."""
    if "crs" not in column:
        return "OGC:CRS84"
    crs = column["crs"]
    if crs is None:
        return "undefined"
    ident = crs.get("id") if isinstance(crs, Mapping) else None
    if isinstance(ident, Mapping) and {"authority", "code"} <= ident.keys():
        return f"{ident['authority']}:{ident['code']}"
    return str(crs.get("name", "PROJJSON")) if isinstance(crs, Mapping) else str(crs)


def _geometries(columns: Mapping[str, Any]) -> str:
    shown = []
    for name, column in columns.items():
        if isinstance(column, Mapping):
            types = ", ".join(column.get("geometry_types") or []) or "any type"
            shown.append(f"{name} ({column.get('encoding')}; {types}; {_crs_name(column)})")
    return "; ".join(shown) or "-"


def _covering(columns: Mapping[str, Any]) -> str:
    found = []
    for name, column in columns.items():
        bbox = (column.get("covering") or {}).get("bbox") if isinstance(column, Mapping) else None
        if isinstance(bbox, Mapping):
            paths = ", ".join(".".join(map(str, p)) for p in bbox.values() if isinstance(p, list))
            found.append(f"{name}: bbox {paths}")
    return "; ".join(found) or "none"


def _sort(raw: bytes | None) -> str:
    if raw is None:
        return "as written (not recorded)"
    try:
        sort = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
    if isinstance(sort, Mapping) and "order" in sort:
        return f"{sort['order']}" + (f" ({sort['key']})" if "key" in sort else "")
    return json.dumps(sort)


def facts(pf: pq.ParquetFile, geo: Mapping[str, Any] | None) -> dict[str, str]:
    """Footer facts of an open Parquet file whose `geo` metadata is `geo` (None without)."""
    meta = pf.metadata
    columns = geo.get("columns") if isinstance(geo, Mapping) else None
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    codecs = sorted(
        {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} if sizes else []
    )
    out: dict[str, str] = {}
    if isinstance(columns, Mapping):
        out["geometry"] = _geometries(columns)
        out["covering"] = _covering(columns)
    heights = (meta.metadata or {}).get(HEIGHTS_KEY.encode())
    if heights is not None:
        out["heights"] = _crs_name({"crs": json.loads(heights)})
    out["row groups"] = f"{len(sizes)}" + (f" (up to {max(sizes)} rows each)" if sizes else "")
    out["compression"] = ", ".join(codecs) or "-"
    out["sort order"] = _sort((meta.metadata or {}).get(SORT_KEY))
    return out
