"""The lake section of the benchmark: does a spatially ordered file answer a box query faster?

Two large sources spread over a region: the Barcelona fountains repeated over a grid of shifted
copies (GeoJSON points), and the NRW CityGML tile repeated over a grid of neighbouring tiles
(LoD2 buildings). Each is written by citypipe (`ingest`: Hilbert-ordered rows, bbox covering,
row groups sized for pruning) and by what a user would otherwise run with its defaults (GDAL
through `pyogrio.read_dataframe` + geopandas `to_parquet`: source order, no covering). The same
1 km2 query then runs in DuckDB on each file: the citypipe file filtered on its `bbox` columns
first (as the README shows), the other on its geometry alone, both ending with the exact
`ST_Intersects`. Reported per file: write time, file size, row groups whose statistics the box
overlaps, rows and bytes DuckDB read, query time (best of the rounds, the files taken in turn in
each round).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

GRID = (20, 15)
"""Copies of the fountains along longitude and latitude: 300 copies, 596,400 features over
about 340 x 200 km."""
CENTRE = (2.1700, 41.3870)
"""Plaça de Catalunya: the box is the 1 km2 around it in the copy in the middle of the grid."""
NRW_GRID = (32, 32)
"""Copies of the NRW tile (1 km2, 264 city objects: 194 buildings and 70 parts): 1,024 tiles,
270,336 city objects, a 4.1 GB CityGML file (about 6 minutes for citypipe and GDAL here)."""
NRW_CRS = "EPSG:25832"
"""The tile's horizontal CRS (its srsName is the AdV URN of ETRS89 / UTM 32N + DHHN2016)."""
NRW_KM = (326, 5727)
"""The tile's south-west corner in km of UTM 32N (its name: LoD2_32_326_5727)."""
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


def _sql(path: Path, box: tuple[float, ...], covering: bool, area: str | None = None) -> str:
    """The query: rows whose geometry intersects `area` (WKT; the box itself if None), on a
    file with a covering first those whose bbox overlaps `box`."""
    x0, y0, x1, y1 = box
    shape = f"ST_GeomFromText('{area}')" if area else f"ST_MakeEnvelope({x0}, {y0}, {x1}, {y1})"
    prefilter = (
        f"bbox.xmin <= {x1} AND bbox.xmax >= {x0} AND bbox.ymin <= {y1} AND bbox.ymax >= {y0} AND "
        if covering
        else ""
    )
    return (
        f"SELECT count(*) FROM read_parquet('{path}') WHERE {prefilter}"
        f"ST_Intersects(geometry, {shape})"
    )


def overlapping_row_groups(path: Path, box: tuple[float, ...]) -> tuple[int, int]:
    """(row groups whose bbox statistics overlap `box`, row groups): what a reader that prunes
    on the covering must read. A file without a covering: every row group; a row group of rows
    without a bbox only (they sort last) has no statistics and meets no box."""
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
        if not all(s.has_min_max for s in (*lo.values(), *hi.values())):
            continue
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
    con.execute("SET enable_progress_bar = false")
    con.load_extension(str(spatial_extension()))
    return con


def profile(
    path: Path, box: tuple[float, ...], covering: bool, area: str | None = None
) -> dict[str, Any]:
    """The query's answer, and the rows and bytes DuckDB's profiler says it read."""
    con = _connection()
    out = path.with_suffix(".profile.json")
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{out}'")
    con.execute(
        "SET custom_profiling_settings = '"
        '{"CUMULATIVE_ROWS_SCANNED": "true", "TOTAL_BYTES_READ": "true"}\''
    )
    [(count,)] = con.execute(_sql(path, box, covering, area)).fetchall()
    con.close()
    prof = json.loads(out.read_text())
    out.unlink()
    return {
        "count": count,
        "rows_read": prof["cumulative_rows_scanned"],
        "bytes_read": prof["total_bytes_read"],
    }


def query_seconds(
    path: Path, box: tuple[float, ...], covering: bool, area: str | None = None
) -> float:
    """One run of the query on a fresh connection (the spatial extension loaded beforehand)."""
    con = _connection()
    sql = _sql(path, box, covering, area)
    t = time.perf_counter()
    con.execute(sql).fetchall()
    seconds = time.perf_counter() - t
    con.close()
    return seconds


@dataclass(frozen=True)
class Query:
    """The 1 km2 query in one file's coordinates: its envelope (`box`), and the area itself as
    WKT where it is not that box."""

    box: tuple[float, ...]
    area: str | None = None


@dataclass(frozen=True)
class Case:
    """One large source over a region, the tool that writes the other file, and the query in
    each file (by tool: citypipe, geopandas)."""

    name: str
    source: Path
    other: str
    queries: dict[str, Query]


def fountains_case(work: Path, source: Path) -> Case:
    box = query_box(source)
    grid = fountains_grid(source, work / f"fountains_region_{GRID[0]}x{GRID[1]}.geojson")
    return Case("fountains", grid, "gdal", {"citypipe": Query(box), "geopandas": Query(box)})


def nrw_case(source: Path, grid: tuple[int, int] = NRW_GRID) -> Case:
    """The tile in the middle of the grid, as a 1 km square in UTM in GDAL's file (GDAL reads
    no CRS from the AdV srsName: geopandas writes none and keeps the source's coordinates), the
    same square in CRS84 (a point every 50 m of its edges) in citypipe's."""
    import numpy as np
    import pyproj
    import shapely

    x0, y0 = (km * 1000 + n // 2 * 1000 for km, n in zip(NRW_KM, grid, strict=True))
    square = shapely.box(x0, y0, x0 + 1000, y0 + 1000)
    to_crs84 = pyproj.Transformer.from_crs(NRW_CRS, "OGC:CRS84", always_xy=True)
    lonlat = shapely.transform(
        shapely.segmentize(square, 50),
        lambda xy: np.column_stack(to_crs84.transform(xy[:, 0], xy[:, 1])),
    )
    return Case(
        "nrw",
        source,
        "gdal-layers",
        {
            "citypipe": Query(lonlat.bounds, shapely.to_wkt(lonlat, rounding_precision=-1)),
            "geopandas": Query(square.bounds),
        },
    )


def run_case(case: Case, rounds: int, child: Callable[..., dict], work: Path) -> None:
    """Write `case.source` with both tools (in fresh processes, as the other groups), then
    query each file."""
    written = {
        "citypipe": (
            child("citypipe", case.source, 0, work / f"lake-{case.name}-citypipe"),
            work / f"lake-{case.name}-citypipe" / "features" / "bench" / "part-0.parquet",
        ),
        "geopandas": (
            child(case.other, case.source, 0, work / f"lake-{case.name}-geopandas"),
            work / f"lake-{case.name}-geopandas" / "out0.parquet",
        ),
    }
    for tool, (result, _) in written.items():
        if "error" in result:
            raise RuntimeError(f"{tool} could not write {case.source.name}: {result['error']}")
    files = {tool: path.resolve() for tool, (_, path) in written.items()}
    queries = {tool: (case.queries[tool], tool == "citypipe") for tool in files}
    best = dict.fromkeys(files, float("inf"))
    for _ in range(max(rounds, 1) * QUERY_ROUNDS):
        for tool, path in files.items():
            (q, covering) = queries[tool]
            best[tool] = min(best[tool], query_seconds(path, q.box, covering, q.area))
    size = case.source.stat().st_size
    print(f"\nlake: {case.source.name}, {size / 1e6:.0f} MB; box {case.queries['citypipe'].box}")
    head = (
        f"{'file':10} {'write s':>8} {'MB':>7} {'row groups':>12} {'rows read':>10}"
        f" {'MB read':>8} {'query ms':>9} {'features':>9}"
    )
    # rows and MB read are what DuckDB 1.5's profiler reports (cumulative over its operators):
    # they do not show the row groups it skips; the row groups column does
    print(f"{head}\n{'-' * len(head)}")
    for tool, path in files.items():
        q, covering = queries[tool]
        p = profile(path, q.box, covering, q.area)
        hit, groups = overlapping_row_groups(path, q.box)
        print(
            f"{tool:10} {written[tool][0]['seconds']:8.1f} {path.stat().st_size / 1e6:7.1f}"
            f" {f'{hit} / {groups}':>12} {p['rows_read']:10d} {p['bytes_read'] / 1e6:8.2f}"
            f" {best[tool] * 1000:9.2f} {p['count']:9d}"
        )
    ratio = best["geopandas"] / best["citypipe"]
    size_ratio = files["citypipe"].stat().st_size / files["geopandas"].stat().st_size
    print(
        f"query: citypipe {ratio:.1f}x faster (target: 10x); file size citypipe / geopandas "
        f"{size_ratio:.2f} (target: at most 1)"
    )


def run_lake(
    rounds: int,
    child: Callable[..., dict],
    work: Path,
    source: Path,
    nrw: Callable[..., Path],
) -> None:
    """Both cases: the fountains grid (from the fountains `source`) and the NRW tiles (`nrw`
    makes them: bench/run.py's `big_nrw`)."""
    work.mkdir(parents=True, exist_ok=True)
    for case in (fountains_case(work, source), nrw_case(nrw(grid=NRW_GRID))):
        run_case(case, rounds, child, work)
