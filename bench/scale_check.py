"""`make scale-check`: the lake read by Apache SedonaDB (Apache Sedona's single-node engine,
PyPI `sedonadb`, in .venv-sedona) and by DuckDB through citypipe's warehouse, the same
questions asked of both: per source the count, areas, lengths, vertices and extent of the
geometries, and every pair of sources' intersecting features (a spatial join). Any difference
fails the check; both engines' times are printed.

    python bench/scale_check.py [--lake data/lake]              # DuckDB, then SedonaDB, compared
    .venv-sedona/bin/python bench/scale_check.py --sedona FILE ...  # SedonaDB alone, JSON out
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEDONA_PYTHON = ROOT / ".venv-sedona" / "bin" / "python"
REL_TOLERANCE = 1e-9
"""Sums of areas and lengths agree to this relative difference (summation order differs)."""

QUERIES = {
    "per source": """SELECT source, count(*) AS n, sum(ST_Area(geometry)) AS area,
        sum(ST_Length(geometry)) AS length, sum(ST_NPoints(geometry)) AS points,
        min(ST_XMin(geometry)) AS xmin, min(ST_YMin(geometry)) AS ymin,
        max(ST_XMax(geometry)) AS xmax, max(ST_YMax(geometry)) AS ymax
        FROM features GROUP BY source ORDER BY source""",
    "spatial join": """SELECT a.source AS a, b.source AS b, count(*) AS n
        FROM features a JOIN features b ON ST_Intersects(a.geometry, b.geometry)
        WHERE a.source < b.source GROUP BY a.source, b.source ORDER BY 1, 2""",
}

Answers = dict[str, dict[str, Any]]
"""query name -> {"seconds": float, "rows": [[...], ...]}"""


def _timed(run: Any) -> dict[str, Any]:
    started = time.perf_counter()
    rows = run()
    return {"seconds": time.perf_counter() - started, "rows": rows}


def sedona(files: list[str]) -> Answers:
    """The answers of SedonaDB over `files` (it lists no folders below a path: given each file)."""
    import warnings

    warnings.simplefilter("ignore")  # no GDAL or PROJ library: neither is needed here
    import sedonadb

    con = sedonadb.connect()
    con.read_parquet(files).to_view("features")
    return {
        name: _timed(
            lambda sql=sql: [list(r.values()) for r in con.sql(sql).to_arrow_table().to_pylist()]
        )
        for name, sql in QUERIES.items()
    }


def duckdb_answers(lake: Path) -> tuple[Answers, list[str]]:
    """The answers of DuckDB through citypipe's warehouse, and the files its view reads."""
    from citypipe.core import warehouse
    from citypipe.core.lake import Lake

    con = warehouse.connect(Lake(lake))
    con.execute("SET file_search_path = ?", [str(lake.resolve())])  # the views' paths are relative
    files = [str(p) for p in Lake(lake).files("features")]
    answers = {
        name: _timed(lambda sql=sql: [list(r) for r in con.execute(sql).fetchall()])
        for name, sql in QUERIES.items()
    }
    return answers, files


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=1e-12)
    return bool(a == b)


def differences(one: Answers, other: Answers) -> list[str]:
    found = []
    for name in QUERIES:
        rows, others = one[name]["rows"], other[name]["rows"]
        if len(rows) != len(others):
            found.append(f"{name}: {len(rows)} rows against {len(others)}")
        for row, theirs in zip(rows, others, strict=False):
            if not all(_same(a, b) for a, b in zip(row, theirs, strict=True)):
                found.append(f"{name}: {row} against {theirs}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=ROOT / "data" / "lake")
    parser.add_argument("--sedona", nargs="+", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sedona:
        print(json.dumps(sedona(args.sedona)))
        return 0
    theirs, files = duckdb_answers(args.lake)
    if not files:
        print(f"scale-check: no features in {args.lake}: run `citypipe run` first", file=sys.stderr)
        return 1
    out = subprocess.run(
        [str(SEDONA_PYTHON), __file__, "--sedona", *files],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    ours = json.loads(out.stdout)
    rows = sum(r[1] for r in theirs["per source"]["rows"])
    print(f"{len(files)} sources, {rows:,} features ({args.lake})")
    for name in QUERIES:
        print(
            f"  {name}: DuckDB {theirs[name]['seconds'] * 1000:.0f} ms, "
            f"SedonaDB {ours[name]['seconds'] * 1000:.0f} ms, {len(ours[name]['rows'])} rows"
        )
    found = differences(theirs, ours)
    for line in found:
        print(f"  differs: {line}")
    print("scale-check: " + ("FAILED" if found else "DuckDB and SedonaDB agree"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
