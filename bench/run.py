"""Benchmark: citypipe against the floor and against what a user would otherwise run.

For each of the largest tabular (GeoJSON) files, in one run and one process tree:
  floor     orjson.loads of the file: the least any reader must do
  gdal      pyogrio.read_dataframe + GeoDataFrame.to_parquet: what a user would otherwise run
  citypipe  connector -> harmonise -> GeoParquet, in-process, without validation
  validate  the validation suite's extra time (ingest with validation minus without)
Each measurement runs in a fresh child process (best of N, after one warm-up), which also
reports its peak memory above what the imports took. A generated file of many MB (the
fountains repeated, at two sizes) shows whether memory grows with the file or stays flat.

    python bench/run.py [--big-mb 50 200] [--repeat 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CITYPIPE_CORPUS", ROOT.parent / "shared" / "data"))
WORK = ROOT / "bench" / "work"
FILES = [
    "geojson/barcelona_barris.geojson",
    "oapif/nrw_kataster_ldproxy_items_verwaltungseinheit.json",
    "geojson/barcelona_drinking_fountains.geojson",
    "geojson/barcelona_districtes.geojson",
    "wfs/karlsruhe_geoserver_wfs_GetFeature_disabled_parking.geojson",
]
TOOLS = ("floor", "gdal", "citypipe", "citypipe+validate")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(tool: str, path: Path, repeat: int) -> dict[str, float]:
    """Runs in the child: import, warm up, time `repeat` runs, report best time and memory."""
    import orjson

    out_dir = Path(tempfile.mkdtemp(prefix="citypipe-bench-"))
    if tool == "floor":

        def once() -> None:
            orjson.loads(path.read_bytes())

    elif tool == "gdal":
        import pyogrio

        def once() -> None:
            pyogrio.read_dataframe(path).to_parquet(out_dir / "out.parquet")

    else:
        from pipelines.ingest import ingest
        from pipelines.lake import Lake

        validate = tool == "citypipe+validate"
        lake = Lake(out_dir)

        def once() -> None:
            ingest(path, "bench", lake, validate=validate)

    baseline = _rss_mb()
    best = float("inf")
    for i in range(repeat + 1):
        t = time.perf_counter()
        once()
        if i:  # the first run warms caches and lazy imports
            best = min(best, time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": best, "peak_mb": peak - baseline}


def big_file(mb: int) -> Path:
    """The fountains file repeated (same features, so ids come from content) to about `mb` MB."""
    src = CORPUS / "geojson/barcelona_drinking_fountains.geojson"
    if not src.exists():
        src = ROOT / "data/samples/barcelona_drinking_fountains.geojson"
    dest = WORK / f"fountains_x_{mb}mb.geojson"
    if dest.exists():
        return dest
    import orjson

    doc = orjson.loads(src.read_bytes())
    features = [orjson.dumps(f) for f in doc["features"]]
    WORK.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as f:
        f.write(b'{"type":"FeatureCollection","features":[')
        written, first = 0, True
        while written < mb * 1024 * 1024:
            for feat in features:
                f.write(feat if first else b"," + feat)
                first = False
                written += len(feat) + 1
        f.write(b"]}")
    return dest


def child(tool: str, path: Path, repeat: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", tool, str(path), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode:
        return {"seconds": float("nan"), "peak_mb": float("nan"), "error": out.stderr.strip()[-300:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--measure", nargs=2, metavar=("TOOL", "PATH"))
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--big-mb", type=int, nargs="*", default=[50, 200])
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args.repeat)))
        return

    files = [CORPUS / f for f in FILES if (CORPUS / f).exists()]
    if not files:
        files = sorted((ROOT / "data/samples").glob("*.geojson"), key=lambda f: -f.stat().st_size)[:4]
    runs = [(f, args.repeat) for f in files] + [(big_file(mb), 1) for mb in args.big_mb]
    head = (
        f"{'file':44} {'MB':>6} {'floor ms':>9} {'gdal ms':>9} {'citypipe ms':>12} {'validate ms':>12}"
        f" {'gdal/floor':>10} {'cp/floor':>9} {'gdal/cp':>8}  peak MB floor/gdal/citypipe"
    )
    print(head)
    print("-" * len(head))
    for path, repeat in runs:
        r = {tool: child(tool, path, repeat) for tool in TOOLS}
        ms = {t: r[t]["seconds"] * 1000 for t in TOOLS}
        mb = path.stat().st_size / 1e6
        print(
            f"{path.name[:44]:44} {mb:6.1f} {ms['floor']:9.1f} {ms['gdal']:9.1f} {ms['citypipe']:12.1f}"
            f" {ms['citypipe+validate'] - ms['citypipe']:12.1f} {ms['gdal'] / ms['floor']:10.1f}"
            f" {ms['citypipe'] / ms['floor']:9.1f} {ms['gdal'] / ms['citypipe']:8.1f}"
            f"  {r['floor']['peak_mb']:.0f} / {r['gdal']['peak_mb']:.0f} / {r['citypipe']['peak_mb']:.0f}"
        )
        for tool in TOOLS:
            if "error" in r[tool]:
                print(f"  {tool} failed: {r[tool]['error']}")


if __name__ == "__main__":
    main()
