"""The lake section of the benchmark: does a spatially ordered file answer a box query faster?

One large source spread over a region (the Barcelona fountains repeated over a grid of shifted
copies) is written by citypipe (`ingest`: Hilbert-ordered rows, bbox covering, row groups
sized for pruning) and by what a user would otherwise run with its defaults (GDAL through
`pyogrio.read_dataframe` + geopandas `to_parquet`: source order, no covering). The same 1 km2
box query then runs in DuckDB on each file: the citypipe file filtered on its `bbox` columns
first (as the README shows), the other on its geometry alone, both ending with the exact
`ST_Intersects` so that both count the same features. Reported per file: write time, file
size, row groups whose statistics the box overlaps, rows and bytes DuckDB read, query time
(best of the rounds, the files taken in turn in each round).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

GRID = (20, 15)
"""Copies of the fountains along longitude and latitude: 300 copies, 596,400 features over
about 340 x 200 km."""
CENTRE = (2.1700, 41.3870)
"""Plaça de Catalunya: the box is the 1 km2 around it in the copy in the middle of the grid."""
QUERY_ROUNDS = 20


def _fountains(source: Path) -> tuple[list[dict], tuple[float, float]]:
    """The features of `source`, and how far apart its copies are: its extent and a margin."""
    features = orjson.loads(source.read_bytes())["features"]
    lon, lat = zip(*(f["geometry"]["coordinates"][:2] for f in features), strict=True)
    return features, (1.05 * (max(lon) - min(lon)), 1.05 * (max(lat) - min(lat)))


def fountains_grid(source: Path, dest: Path, grid: tuple[int, int] = GRID) -> Path:
    """The fountains of `source` repeated over `grid` copies side by side, tiling a region.

    Each copy is what a region-wide source holds: its own places and its own records. Codes
    get the copy's number and the UTM coordinate attributes move with the point by whole metres
    (keeping the source's millimetres, as a real source's coordinates would), so no attribute
    row repeats (300 identical copies would let a dictionary encode every attribute
    column to almost nothing, a file no real source makes)."""
    if dest.exists():
        return dest
    features, step = _fountains(source)
    metres = (
        round(step[0] * 111_320 * math.cos(math.radians(CENTRE[1]))),
        round(step[1] * 110_574),
    )
    tmp = dest.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(b'{"type":"FeatureCollection","features":[')
        first = True
        for i in range(grid[0]):
            for j in range(grid[1]):
                for feature in features:
                    x, y = feature["geometry"]["coordinates"][:2]
                    props = dict(feature["properties"])
                    props["INVENTARI_CODI"] = f"{props['INVENTARI_CODI']}/{i}.{j}"
                    props["INVENTARI_COORDENADA_X"] += i * metres[0]
                    props["INVENTARI_COORDENADA_Y"] += j * metres[1]
                    moved = {
                        **feature,
                        "properties": props,
                        "geometry": {
                            "type": "Point",
                            "coordinates": [x + i * step[0], y + j * step[1]],
                        },
                    }
                    f.write(orjson.dumps(moved) if first else b"," + orjson.dumps(moved))
                    first = False
        f.write(b"]}")
    tmp.replace(dest)
    return dest


def query_box(source: Path, grid: tuple[int, int] = GRID) -> tuple[float, ...]:
    """(xmin, ymin, xmax, ymax) of the 1 km x 1 km box around CENTRE in the copy in the middle
    of the grid, measured on the ellipsoid."""
    from pyproj import Geod

    _, step = _fountains(source)
    lon, lat = (c + n // 2 * s for c, n, s in zip(CENTRE, grid, step, strict=True))
    geod = Geod(ellps="WGS84")
    east, west, north, south = (geod.fwd(lon, lat, az, 500)[:2] for az in (90, 270, 0, 180))
    return (west[0], south[1], east[0], north[1])


def _sql(path: Path, box: tuple[float, ...], covering: bool) -> str:
    x0, y0, x1, y1 = box
    prefilter = (
        f"bbox.xmin <= {x1} AND bbox.xmax >= {x0} AND bbox.ymin <= {y1} AND bbox.ymax >= {y0} AND "
        if covering
        else ""
    )
    return (
        f"SELECT count(*) FROM read_parquet('{path}') WHERE {prefilter}"
        f"ST_Intersects(geometry, ST_MakeEnvelope({x0}, {y0}, {x1}, {y1}))"
    )


def overlapping_row_groups(path: Path, box: tuple[float, ...]) -> tuple[int, int]:
    """(row groups whose bbox statistics overlap `box`, row groups): what a reader that prunes
    on the covering must read. A file without a covering: every row group."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    columns = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    if "bbox.xmin" not in columns:
        return meta.num_row_groups, meta.num_row_groups
    x0, y0, x1, y1 = box
    hit = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        lo = {k: group.column(columns[f"bbox.{k}"]).statistics for k in ("xmin", "ymin")}
        hi = {k: group.column(columns[f"bbox.{k}"]).statistics for k in ("xmax", "ymax")}
        hit += (
            lo["xmin"].min <= x1
            and hi["xmax"].max >= x0
            and lo["ymin"].min <= y1
            and hi["ymax"].max >= y0
        )
    return hit, meta.num_row_groups


def _connection() -> Any:
    import duckdb

    from citypipe.core.warehouse import spatial_extension

    con = duckdb.connect()
    con.load_extension(str(spatial_extension()))
    return con


def profile(path: Path, box: tuple[float, ...], covering: bool) -> dict[str, Any]:
    """The query's answer, and the rows and bytes DuckDB's profiler says it read."""
    con = _connection()
    out = path.with_suffix(".profile.json")
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{out}'")
    con.execute(
        "SET custom_profiling_settings = '"
        '{"CUMULATIVE_ROWS_SCANNED": "true", "TOTAL_BYTES_READ": "true"}\''
    )
    [(count,)] = con.execute(_sql(path, box, covering)).fetchall()
    con.close()
    prof = json.loads(out.read_text())
    out.unlink()
    return {
        "count": count,
        "rows_read": prof["cumulative_rows_scanned"],
        "bytes_read": prof["total_bytes_read"],
    }


def query_seconds(path: Path, box: tuple[float, ...], covering: bool) -> float:
    """One run of the query on a fresh connection (the spatial extension loaded beforehand)."""
    con = _connection()
    sql = _sql(path, box, covering)
    t = time.perf_counter()
    con.execute(sql).fetchall()
    seconds = time.perf_counter() - t
    con.close()
    return seconds


def run_lake(rounds: int, child: Callable[..., dict], work: Path, source: Path) -> None:
    """Write the grid with both tools (in fresh processes, as the other groups), then query."""
    work.mkdir(parents=True, exist_ok=True)
    grid = fountains_grid(source, work / f"fountains_region_{GRID[0]}x{GRID[1]}.geojson")
    box = query_box(source)
    written = {
        "citypipe": (
            child("citypipe", grid, 0, work / "lake-citypipe"),
            work / "lake-citypipe" / "features" / "bench" / "part-0.parquet",
        ),
        "geopandas": (
            child("gdal", grid, 0, work / "lake-geopandas"),
            work / "lake-geopandas" / "out0.parquet",
        ),
    }
    for tool, (result, _) in written.items():
        if "error" in result:
            raise RuntimeError(f"{tool} could not write {grid.name}: {result['error']}")
    files = {tool: path.resolve() for tool, (_, path) in written.items()}
    best = dict.fromkeys(files, float("inf"))
    for _ in range(max(rounds, 1) * QUERY_ROUNDS):
        for tool, path in files.items():
            best[tool] = min(best[tool], query_seconds(path, box, tool == "citypipe"))
    print(f"\nlake: {grid.name}, {grid.stat().st_size / 1e6:.0f} MB; box {box}")
    head = (
        f"{'file':10} {'write s':>8} {'MB':>7} {'row groups':>12} {'rows read':>10}"
        f" {'MB read':>8} {'query ms':>9} {'features':>9}"
    )
    # rows and MB read are what DuckDB 1.5's profiler reports (cumulative over its operators):
    # they do not show the row groups it skips; the row groups column does
    print(f"{head}\n{'-' * len(head)}")
    for tool, path in files.items():
        p = profile(path, box, tool == "citypipe")
        hit, groups = overlapping_row_groups(path, box)
        print(
            f"{tool:10} {written[tool][0]['seconds']:8.1f} {path.stat().st_size / 1e6:7.1f}"
            f" {f'{hit} / {groups}':>12} {p['rows_read']:10d} {p['bytes_read'] / 1e6:8.2f}"
            f" {best[tool] * 1000:9.2f} {p['count']:9d}"
        )
    ratio = best["geopandas"] / best["citypipe"]
    size = files["citypipe"].stat().st_size / files["geopandas"].stat().st_size
    print(
        f"query: citypipe {ratio:.1f}x faster (target: 10x); file size citypipe / geopandas "
        f"{size:.2f} (target: at most 1)"
    )
