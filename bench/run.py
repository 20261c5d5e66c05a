"""Benchmark: citypipe against the floor and against what a user would otherwise run.

For each group of corpus files, in one run and one process tree:
  floor     the least any reader must do: orjson.loads (JSON), lxml iterparse clearing
            elements (XML)
  other     what a user would otherwise run: GeoJSON -> pyogrio.read_dataframe + to_parquet
            (GDAL); CityGML -> the same for every layer GDAL's GML reader finds; CityJSON ->
            cjio's reader (load only)
  citypipe  connector -> harmonise -> GeoParquet, in-process, without validation
  validate  the validation suite's extra time (ingest with validation minus without)
Each measurement runs in a fresh child process (best of N after a warm-up), which also reports
its peak memory above what its imports took; each round takes every file and every tool in
turn, and each tool keeps its best round per file. Generated large files (the fountains GeoJSON
at two sizes, the NRW CityGML tile repeated with new ids) show whether memory grows with the file.
The memory section compares citypipe's peak on one 72 MB property string of escaped quotes
with its peak on 100 MB of ordinary features: memory is bounded by records, not by strings.

The harvest section (bench/harvest.py) harvests the test servers' layers (pygeoapi, MapServer
WFS 2.0 and 1.1 on loopback) with citypipe, GDAL's WFS / OAPIF drivers and OWSLib + json.loads.

The ngsi section (bench/ngsi.py) harvests the NGSI test broker's 10,500 entities with citypipe
(validated) and with requests + json.loads over the same pages, and its 105,000 history values.

The lake section (bench/lake.py) writes one large source spread over a region with citypipe and
with geopandas' defaults, and times the same 1 km2 box query in DuckDB on each file.

    python bench/run.py [--group tabular|cityjson|citygml|memory|lake|harvest|ngsi|listen ...]
                        [--repeat 10] [--rounds 3] [--cpu]

--cpu times each run by its process's CPU time (all its threads) instead of the wall clock: on
a machine that others load, the wall clock times them too. Work done in other processes (the
test servers of harvest and ngsi) is then not counted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CITYPIPE_CORPUS", ROOT.parent / "shared" / "data"))
WORK = ROOT / "bench" / "work"
FOUNTAINS = "geojson/barcelona_drinking_fountains.geojson"
CPU = False
"""Runs timed by CPU time (--cpu), not the wall clock."""


@dataclass(frozen=True)
class Group:
    files: tuple[str, ...]
    """Glob patterns in the corpus."""
    floor: str
    other: str
    big: tuple[tuple[str, int], ...] = ()
    """Generated files: (which, MB)."""


GROUPS = {
    "tabular": Group(
        files=(
            "geojson/barcelona_barris.geojson",
            "oapif/nrw_kataster_ldproxy_items_verwaltungseinheit.json",
            "geojson/barcelona_drinking_fountains.geojson",
            "geojson/barcelona_districtes.geojson",
            "wfs/karlsruhe_geoserver_wfs_GetFeature_disabled_parking.geojson",
        ),
        floor="orjson",
        other="gdal",
        big=(("fountains", 50), ("fountains", 200)),
    ),
    "cityjson": Group(files=("cityjson/*.city.json",), floor="orjson", other="cjio"),
    "citygml": Group(
        files=("citygml/*.gml", "citygml3/*.gml"),
        floor="iterparse",
        other="gdal-layers",
        big=(("nrw", 400),),
    ),
}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _runner(tool: str, target: str, out_dir: Path) -> Callable[[], object]:
    """The work one tool does on one file or service layer (imports happen here, before
    timing)."""
    if tool.split("-")[0] in ("harvest", "ngsi"):  # bench/harvest.py, bench/ngsi.py
        return importlib.import_module(tool.split("-")[0]).TOOLS[tool](target, out_dir)
    path = Path(target)
    if tool == "orjson":
        import orjson

        return lambda: orjson.loads(path.read_bytes())
    if tool == "iterparse":
        from lxml import etree

        def parse() -> None:
            for _, elem in etree.iterparse(
                str(path), events=("end",), resolve_entities=False, no_network=True
            ):
                elem.clear()

        return parse
    if tool in ("gdal", "gdal-layers"):
        import pyogrio

        def gdal() -> None:
            layers = (
                [row[0] for row in pyogrio.list_layers(path)] if tool == "gdal-layers" else [None]
            )
            for i, layer in enumerate(layers):
                pyogrio.read_dataframe(path, layer=layer).to_parquet(out_dir / f"out{i}.parquet")

        return gdal
    if tool.startswith("harmonise"):
        from validation_memory import runner  # bench/validation_memory.py

        return runner(tool, path, _source(FOUNTAINS))
    if tool == "cjio":
        from cjio import cityjson

        def cjio_load() -> None:
            with open(path, encoding="utf-8") as f:
                cityjson.reader(file=f)

        return cjio_load
    from citypipe.core.ingest import ingest
    from citypipe.core.lake import Lake

    lake, validate = Lake(out_dir), tool == "citypipe+validate"
    return lambda: ingest(path, "bench", lake, validate=validate)


def measure(tool: str, target: str, repeat: int, out: Path | None = None) -> dict[str, float]:
    """Runs in the child: import, warm up, time `repeat` runs, report best time and memory.
    `out` keeps what the tool writes (else a temporary folder)."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    once = _runner(tool, target, out or Path(tempfile.mkdtemp(prefix="citypipe-bench-")))
    clock = time.process_time if CPU else time.perf_counter
    baseline = _rss_mb()
    best = float("inf")
    for i in range(repeat + 1):
        t = clock()
        once()
        if i or repeat == 0:  # the first run warms caches and lazy imports
            best = min(best, clock() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": best, "peak_mb": peak - baseline}


def big_fountains(mb: int, dest: Path | None = None) -> Path:
    """The fountains GeoJSON repeated (the same features) to about `mb` MB."""
    import orjson

    dest = dest or WORK / f"fountains_x_{mb}mb.geojson"
    if not dest.exists():
        doc = orjson.loads(_source(FOUNTAINS).read_bytes())
        features = [orjson.dumps(f) for f in doc["features"]]
        with open(dest, "wb") as f:
            f.write(b'{"type":"FeatureCollection","features":[')
            written = 0
            while written < mb * 1024 * 1024:
                for feat in features:
                    f.write(b"," + feat if written else feat)
                    written += len(feat) + 1
            f.write(b"]}")
    return dest


def escaped_string(mb: int, dest: Path | None = None) -> Path:
    """One fountain whose description is `mb` MB of escaped quotes (\\"), the string that
    costs a JSON scanner most: every other byte of it is a quote that does not end it."""
    dest = dest or WORK / f"escaped_string_{mb}mb.geojson"
    if not dest.exists():
        with open(dest, "wb") as f:
            f.write(b'{"type":"FeatureCollection","features":[{"type":"Feature","geometry":')
            f.write(b'{"type":"Point","coordinates":[2.1899,41.3877]},"properties":{"text":"')
            f.write(b'\\"' * (mb * 1024 * 1024 // 2))
            f.write(b'"}}]}')
    return dest


MEMORY = ((escaped_string, 72), (big_fountains, 100))
"""The memory section: (generator, MB) per file, the pathological one first."""


def run_memory() -> None:
    """citypipe's peak memory above its imports on each MEMORY file, and their ratio."""
    WORK.mkdir(parents=True, exist_ok=True)
    peaks = []
    print(f"\nmemory\n{'file':44} {'MB':>6} {'citypipe ms':>12} {'peak MB':>8}")
    for make, mb in MEMORY:
        path = make(mb)
        r = child("citypipe", path, 0)
        peaks.append(r["peak_mb"])
        size = path.stat().st_size / 1e6
        print(f"{path.name[:44]:44} {size:6.1f} {r['seconds'] * 1000:12.0f} {r['peak_mb']:8.0f}")
    print(f"peak ratio, string / ordinary: {peaks[0] / peaks[1]:.2f} (target: at most 2)")
    from validation_memory import run_validation  # bench/validation_memory.py

    run_validation(child, WORK, _source(FOUNTAINS))


def big_nrw(mb: int) -> Path:
    """The NRW CityGML tile's city objects repeated, with new gml:ids, to about `mb` MB."""
    dest = WORK / f"nrw_x_{mb}mb.gml"
    if not dest.exists():
        text = _source("citygml/nrw_LoD2_32_326_5727_1_NW.gml").read_text(encoding="utf-8")
        start = text.index("<core:cityObjectMember")
        end = text.rindex("</core:cityObjectMember>") + len("</core:cityObjectMember>")
        head, members, tail = text[:start], text[start:end], text[end:]
        ids = re.compile(r'(gml:id="|xlink:href="#?)([^"]+)"')
        with open(dest, "w", encoding="utf-8") as f:
            f.write(head)
            copy = 0
            while f.tell() < mb * 1024 * 1024:
                f.write(ids.sub(lambda m, c=copy: f'{m.group(1)}{m.group(2)}_{c}"', members))
                copy += 1
            f.write(tail)
    return dest


def _source(relative: str) -> Path:
    path = CORPUS / relative
    return path if path.exists() else ROOT / "data" / "samples" / Path(relative).name


def child(
    tool: str, target: str | Path, repeat: int, out_dir: Path | None = None
) -> dict[str, float]:
    keep = (["--out", str(out_dir)] if out_dir else []) + (["--cpu"] if CPU else [])
    out = subprocess.run(
        [sys.executable, __file__, "--measure", tool, str(target), "--repeat", str(repeat), *keep],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if out.returncode:
        last = (
            out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        )
        return {"seconds": float("nan"), "peak_mb": float("nan"), "error": last[:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of_rounds(
    tools: tuple[str, ...], runs: list[tuple[Any, int]], rounds: int
) -> dict[Any, dict[str, dict]]:
    """Each tool's best on each file over `rounds` rounds, each round taking every file and every
    tool in turn: a machine that slows down for a while then slows every tool, and no file has
    all its rounds in that while. Files timed once (`repeat` 0: the large ones) take one round."""
    best: dict[Any, dict[str, dict]] = {path: {} for path, _ in runs}
    for i in range(rounds):
        for path, repeat in runs:
            if i and not repeat:
                continue
            for tool in tools:
                r = child(tool, path, repeat)
                if tool not in best[path] or r["seconds"] < best[path][tool]["seconds"]:
                    best[path][tool] = r
    return best


def run_group(name: str, group: Group, repeat: int, rounds: int) -> None:
    files = {p for pattern in group.files for p in CORPUS.glob(pattern)}
    if not files:
        print(f"{name}: no corpus files at {CORPUS}")
        return
    WORK.mkdir(parents=True, exist_ok=True)
    makers = {"fountains": big_fountains, "nrw": big_nrw}
    runs = [(f, repeat) for f in sorted(files, key=lambda p: -p.stat().st_size)]
    runs += [(makers[which](mb), 0) for which, mb in group.big]
    floor, other = group.floor, group.other
    tools = (floor, other, "citypipe", "citypipe+validate")
    head = (
        f"{'file':44} {'MB':>6} {floor + ' ms':>12} {other + ' ms':>15} {'citypipe ms':>12}"
        f" {'validate ms':>12} {'other/floor':>11} {'cp/floor':>9} {'other/cp':>9}"
        "  peak MB floor/other/citypipe"
    )
    print(f"\n{name}\n{head}\n{'-' * len(head)}")
    results = best_of_rounds(tools, runs, rounds)
    for path, _ in runs:
        r = results[path]
        ms = {t: r[t]["seconds"] * 1000 for t in tools}
        print(
            f"{path.name[:44]:44} {path.stat().st_size / 1e6:6.1f}"
            f" {ms[floor]:12.1f} {ms[other]:15.1f}"
            f" {ms['citypipe']:12.1f} {ms['citypipe+validate'] - ms['citypipe']:12.1f}"
            f" {ms[other] / ms[floor]:11.1f} {ms['citypipe'] / ms[floor]:9.1f}"
            f" {ms[other] / ms['citypipe']:9.1f}"
            f"  {r[floor]['peak_mb']:.0f} / {r[other]['peak_mb']:.0f}"
            f" / {r['citypipe']['peak_mb']:.0f}"
        )
        for tool in tools:
            if "error" in r[tool]:
                print(f"  {tool} failed: {r[tool]['error']}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--measure", nargs=2, metavar=("TOOL", "PATH"))
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--cpu", action="store_true", help="time runs by CPU time, not wall clock")
    sections = ["memory", "lake", "harvest", "ngsi", "listen"]
    p.add_argument("--group", action="append", choices=[*GROUPS, *sections])
    args = p.parse_args()
    global CPU
    CPU = args.cpu
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], args.repeat, args.out)))
        return
    for name in args.group or [*GROUPS, *sections]:
        if name == "memory":
            run_memory()
        elif name == "harvest":
            from harvest import run_harvest  # bench/harvest.py

            run_harvest(ROOT, args.rounds, best_of_rounds)
        elif name == "ngsi":
            from ngsi import run_ngsi  # bench/ngsi.py

            run_ngsi(ROOT, args.rounds, best_of_rounds)
        elif name == "listen":
            from listen import run_listen  # bench/listen.py

            run_listen(ROOT, args.rounds)
        elif name == "lake":
            from lake import run_lake  # bench/lake.py

            run_lake(args.rounds, child, WORK, _source(FOUNTAINS))
        else:
            run_group(name, GROUPS[name], args.repeat, args.rounds)


if __name__ == "__main__":
    main()
