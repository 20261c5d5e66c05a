"""Benchmark: citypipe against the floor and against what a user would otherwise run.

For each group of corpus files, in one run and one process tree:
  floor     the least any reader must do: orjson.loads (JSON), lxml iterparse clearing
            elements (XML)
  other     what a user would otherwise run: GeoJSON -> pyogrio.read_dataframe + to_parquet
            (GDAL); CityGML -> the same for every layer GDAL's GML reader finds; CityJSON ->
            cjio's reader (load only)
  citypipe  connector -> harmonise -> GeoParquet, in-process, without validation (a large
            CityGML file's walk in a forked child while a core is spare: its CPU time and peak
            memory are counted with the measuring process's)
  validate  the validation suite's extra CPU time (ingest with validation minus without; the Data
            Docs pages are rendered once per run, not per source: the run section times them),
            its ratio to the ingest's CPU time and the target it is held to (at most 1x the
            ingest on a file of 1 MB or more, at most 50 ms on a smaller one)
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

The run section (bench/runjob.py) times `citypipe run` of the sample catalog against one process
that ingests and validates the same sources one after another.

The lake section (bench/lake.py) writes two large sources spread over a region (the fountains
over a grid of shifted copies, the NRW tile over a grid of neighbouring tiles) with citypipe and
with geopandas' defaults, and times the same 1 km2 query in DuckDB on each file.

The tiles section (bench/tiles.py) ingests 100 CityGML tiles (the NRW tile copied over a
10 x 10 km grid, new gml:ids) as one partitioned source with 1 and with 2 worker processes.

The days section (bench/days.py) backfills four days of the NGSI test broker's history as a
source partitioned by day, with 1 and 2 workers and as a plain loop of the same harvests.

    python bench/run.py [--group tabular|cityjson|citygml|memory|lake|harvest|ngsi|listen|run|
                                 tiles|days ...] [--repeat 10] [--rounds 3] [--tiles 100]
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CITYPIPE_CORPUS", ROOT.parent / "shared" / "data"))
WORK = ROOT / "bench" / "work"
FOUNTAINS = "geojson/barcelona_drinking_fountains.geojson"


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


GIVEN_CRS = {
    "3dbag_multi_lod_v2.0.city.json": "EPSG:7415",
    "denhaag_DH_01_subset_v1.1.city.json": "EPSG:7415",
}
"""Corpus files that declare no CRS, with the one a catalog entry gives them (data/catalog.yaml
for Den Haag's subset; the 3D BAG's for its buildings, MANIFEST.md): ingested as a user would."""


def _rss_mb(pid: str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # a child that ended meanwhile
        pass
    return 0.0


def iterparse_floor(path: Path) -> None:
    """The XML floor: lxml's iterparse over the whole file, each element cleared as it ends."""
    from lxml import etree

    for _, elem in etree.iterparse(
        str(path), events=("end",), resolve_entities=False, no_network=True
    ):
        elem.clear()


def _runner(
    tool: str, target: str, out_dir: Path, options: dict | None = None
) -> Callable[[], object]:
    """The work one tool does on one file or service layer (imports happen here, before
    timing)."""
    if tool.split("-")[0] in ("harvest", "ngsi"):  # bench/harvest.py, bench/ngsi.py
        return importlib.import_module(tool.split("-")[0]).TOOLS[tool](target, out_dir)
    path = Path(target)
    if tool == "orjson":
        import orjson

        return lambda: orjson.loads(path.read_bytes())
    if tool == "iterparse":
        return lambda: iterparse_floor(path)
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
    return _citypipe(path, out_dir, validate=tool == "citypipe+validate", options=options)


def _citypipe(
    path: Path, out_dir: Path, *, validate: bool, options: dict | None = None
) -> Callable[[], object]:
    """citypipe's ingest of `path`, validated or not; GX is imported on first use: here,
    before timing, as every tool's imports."""
    from citypipe.core import gxenv
    from citypipe.core.ingest import ingest
    from citypipe.core.lake import Lake

    if validate:
        gxenv.context()
    lake = Lake(out_dir)
    crs = GIVEN_CRS.get(path.name)
    return lambda: ingest(
        path, "bench", lake, crs=crs, validate=validate, render_docs=False, options=options
    )


def measure(
    tool: str, target: str, repeat: int, out: Path | None = None, options: dict | None = None
) -> dict[str, float]:
    """Runs in the child: import, warm up, time `repeat` runs, report best time and memory.
    `out` keeps what the tool writes (else a temporary folder); `options` are citypipe's
    connector options (`--option`)."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    once = _runner(tool, target, out or Path(tempfile.mkdtemp(prefix="citypipe-bench-")), options)
    baseline = _rss_mb()
    best = cpu = float("inf")
    with _TreePeak(baseline) as tree:
        for i in range(repeat + 1):
            t, c = time.perf_counter(), time.process_time() + _children_cpu()
            once()
            if i or repeat == 0:  # the first run warms caches and lazy imports
                best = min(best, time.perf_counter() - t)
                cpu = min(cpu, time.process_time() + _children_cpu() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if child:  # a process the tool forked (citypipe's CityGML reader on a large file)
        peak += max(child - baseline, 0.0)
    return {"seconds": best, "cpu_seconds": cpu, "peak_mb": max(peak, tree.peak)}


class _TreePeak:
    """The peak of this process's and its children's resident memory above `baseline` each
    (a forked child starts with its parent's pages), sampled every 20 ms: the CityGML reader
    forks one process per range, and the kernel's peaks count only the largest child."""

    def __init__(self, baseline: float) -> None:
        self.baseline = baseline
        self.peak = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        pid = os.getpid()
        while not self._done.wait(0.02):
            try:
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:  # not Linux, or no such file: the kernel's peaks stand
                return
            rss = [_rss_mb(kid) for kid in kids]
            total = _rss_mb() - self.baseline + sum(max(r - self.baseline, 0.0) for r in rss)
            self.peak = max(self.peak, total)


def _children_cpu() -> float:
    """CPU time of the child processes the tool started and waited for (counted as its own)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def big_fountains(mb: int, dest: Path | None = None) -> Path:
    """The fountains GeoJSON repeated (the same features) to about `mb` MB."""
    import orjson

    dest = dest or WORK / f"fountains_x_{mb}mb.geojson"
    dest.parent.mkdir(parents=True, exist_ok=True)
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


NRW_TILE = "citygml/nrw_LoD2_32_326_5727_1_NW.gml"
_COORDINATES = re.compile(
    r'(<gml:(?:posList|pos|lowerCorner|upperCorner)(?: srsDimension="(\d)")?>)([^<]*)<'
)


def by_kilometre(members: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """`members` with the kilometres of every easting and northing (all but the last three
    digits of the whole part, such as 326 of 326849.768) replaced by a marker character, and
    what each marker stands for: (axis, kilometres). Moving a copy by whole kilometres is then
    one `str.replace` per marker, not a number parsed and printed per coordinate."""
    markers: dict[tuple[int, int], str] = {}

    def mark(m: re.Match[str]) -> str:
        dim = int(m.group(2) or 3)
        tokens = m.group(3).split()
        for i in range(0, len(tokens), dim):
            for axis in (0, 1):
                whole, dot, fraction = tokens[i + axis].partition(".")
                if not (whole.isdigit() and len(whole) > 3):
                    raise ValueError(f"not a projected coordinate: {tokens[i + axis]}")
                key = (axis, int(whole[:-3]))
                marker = markers.setdefault(key, chr(0xE000 + len(markers)))
                tokens[i + axis] = f"{marker}{whole[-3:]}{dot}{fraction}"
        return f"{m.group(1)}{' '.join(tokens)}<"

    marked = _COORDINATES.sub(mark, members)
    return marked, {marker: key for key, marker in markers.items()}


def big_nrw(mb: int = 0, grid: tuple[int, int] | None = None, dest: Path | None = None) -> Path:
    """The NRW CityGML tile's city objects repeated, with new gml:ids, to about `mb` MB; with
    `grid`, as `grid[0]` x `grid[1]` copies instead, each moved by whole tiles (1 km) east and
    north: a region of tiles, as the state publishes them."""
    name = f"nrw_x_{mb}mb.gml" if grid is None else f"nrw_region_{grid[0]}x{grid[1]}.gml"
    dest = dest or WORK / name
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    head, members, tail = nrw_parts()
    marked, markers = by_kilometre(members) if grid else (members, {})
    copies = itertools.product(range(grid[0]), range(grid[1])) if grid else itertools.repeat((0, 0))
    tmp = dest.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(head)
        for copy, shift in enumerate(copies):
            if grid is None and f.tell() >= mb * 1024 * 1024:
                break
            f.write(moved_copy(marked, markers, shift, copy))
        f.write(tail)
    tmp.replace(dest)
    return dest


def nrw_parts() -> tuple[str, str, str]:
    """The NRW tile's text before its city objects, the city objects, and the text after."""
    text = _source(NRW_TILE).read_text(encoding="utf-8")
    start = text.index("<core:cityObjectMember")
    end = text.rindex("</core:cityObjectMember>") + len("</core:cityObjectMember>")
    return text[:start], text[start:end], text[end:]


_IDS = re.compile(r'(gml:id="|xlink:href="#?)([^"]+)"')


def moved_copy(
    marked: str, markers: dict[str, tuple[int, int]], shift: tuple[int, int], copy: int
) -> str:
    """City objects marked by `by_kilometre` moved `shift` km east and north, every gml:id
    (and the links to it) suffixed with `_<copy>`."""
    for marker, (axis, km) in markers.items():
        marked = marked.replace(marker, str(km + shift[axis]))
    return _IDS.sub(lambda m: f'{m.group(1)}{m.group(2)}_{copy}"', marked)


def _source(relative: str) -> Path:
    path = CORPUS / relative
    return path if path.exists() else ROOT / "data" / "samples" / Path(relative).name


def child(
    tool: str, target: str | Path, repeat: int, out_dir: Path | None = None
) -> dict[str, float]:
    keep = ["--out", str(out_dir)] if out_dir else []
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
        nan = float("nan")
        return {"seconds": nan, "cpu_seconds": nan, "peak_mb": nan, "error": last[:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of_rounds(
    tools: tuple[str, ...], runs: list[tuple[Any, int]], rounds: int
) -> dict[Any, dict[str, dict]]:
    """Each tool's best on each file over `rounds` rounds, each round taking every file and every
    tool in turn: a machine that slows down for a while then slows every tool, and no file has
    all its rounds in that while. Files timed once (`repeat` 0: the large ones) take one round."""
    best: dict[Any, dict[str, dict]] = {path: {} for path, _ in runs}
    nan = float("nan")
    for i in range(rounds):
        for path, repeat in runs:
            if i and not repeat:
                continue
            for tool in tools:
                r = child(tool, path, repeat)
                kept = best[path].get(tool)
                if kept is None or r["seconds"] < kept["seconds"]:
                    best[path][tool], kept, r = r, r, kept or r
                # CPU time too is each tool's best, whichever round gave it
                kept["cpu_seconds"] = min(kept.get("cpu_seconds", nan), r.get("cpu_seconds", nan))
    return best


def _validation_target(size: int, validate_ms: float, ingest_ms: float) -> str:
    """Whether validation holds its target: at most 1x the ingest on a file of 1 MB or more,
    at most 50 ms on a smaller one; a file citypipe refuses (no CRS it can know) has none."""
    if math.isnan(validate_ms):  # not ingested
        return "refused"
    ok = validate_ms <= ingest_ms if size >= 1_000_000 else validate_ms <= 50
    return ("<=1x " if size >= 1_000_000 else "<=50ms ") + ("ok" if ok else "MISSED")


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
        f" {'val CPU ms':>12} {'other/floor':>11} {'cp/floor':>9} {'other/cp':>9}"
        f" {'CPU: cp/floor':>13} {'other/cp':>9} {'val/cp':>7} {'target':>8}"
        "  peak MB floor/other/citypipe"
    )
    print(f"\n{name}\n{head}\n{'-' * len(head)}")
    results = best_of_rounds(tools, runs, rounds)
    for path, _ in runs:
        r = results[path]
        ms = {t: r[t]["seconds"] * 1000 for t in tools}
        cpu = {t: r[t]["cpu_seconds"] * 1000 for t in tools}
        # validation against the ingest in CPU time: on a shared machine a difference of two
        # wall-clock times is mostly the load
        validate = cpu["citypipe+validate"] - cpu["citypipe"]
        print(
            f"{path.name[:44]:44} {path.stat().st_size / 1e6:6.1f}"
            f" {ms[floor]:12.1f} {ms[other]:15.1f}"
            f" {ms['citypipe']:12.1f} {validate:12.1f}"
            f" {ms[other] / ms[floor]:11.1f} {ms['citypipe'] / ms[floor]:9.1f}"
            f" {ms[other] / ms['citypipe']:9.1f}"
            f" {cpu['citypipe'] / cpu[floor]:13.1f} {cpu[other] / cpu['citypipe']:9.1f}"
            f" {validate / cpu['citypipe']:7.2f}"
            f" {_validation_target(path.stat().st_size, validate, cpu['citypipe']):>8}"
            f"  {r[floor]['peak_mb']:.0f} / {r[other]['peak_mb']:.0f}"
            f" / {r['citypipe']['peak_mb']:.0f}"
        )
        for tool in tools:
            if "error" in r[tool]:
                print(f"  {tool} failed: {r[tool]['error']}")
    if name == "citygml":
        _citygml_targets(runs, results, group)


def _citygml_targets(
    runs: list[tuple[Path, int]], results: dict[Any, dict[str, dict]], group: Group
) -> None:
    """Issue 17's targets for CityGML, each with the figure it is judged on: at most 2.5x the
    floor on every corpus file of 1 MB or more, a fixed cost (citypipe minus floor) under 10 ms
    on the smaller ones, the generated large file faster than GDAL with a peak under 1 GiB.
    Judged on CPU time where each side is one process (timed in its best round): wall-clock
    times on a machine shared with other work vary by more than the margins judged. The large
    file, which citypipe reads in a second process, is judged on wall-clock time, its CPU time
    (both processes) printed beside it."""
    ms = {p: {t: r["cpu_seconds"] * 1000 for t, r in results[p].items()} for p, _ in runs}
    read = [p for p, _ in runs if "error" not in results[p]["citypipe"]]  # not a refused CRS
    corpus = [p for p, repeat in runs if repeat and p in read]
    large = [p for p in corpus if p.stat().st_size >= 1e6]
    small = [p for p in corpus if p.stat().st_size < 1e6]
    worst = max(large, key=lambda p: ms[p]["citypipe"] / ms[p][group.floor], default=None)
    if worst is not None:
        ratio = ms[worst]["citypipe"] / ms[worst][group.floor]
        print(f"citypipe / floor, files of 1 MB or more: at most {ratio:.1f} ({worst.name}; "
              "target 2.5)")  # fmt: skip
    fixed = max(small, key=lambda p: ms[p]["citypipe"] - ms[p][group.floor], default=None)
    if fixed is not None:
        cost = ms[fixed]["citypipe"] - ms[fixed][group.floor]
        print(f"fixed cost (citypipe - floor), smaller files: at most {cost:.1f} ms "
              f"({fixed.name}; target under 10)")  # fmt: skip
    for path in read:
        if path not in corpus:  # read in two processes: judged on wall-clock time
            r = results[path]
            wall = {t: r[t]["seconds"] * 1000 for t in r}
            print(f"{path.name}: GDAL / citypipe {wall[group.other] / wall['citypipe']:.2f} wall "
                  f"(target over 1), {ms[path][group.other] / ms[path]['citypipe']:.2f} CPU (both "
                  f"processes); citypipe / floor {wall['citypipe'] / wall[group.floor]:.1f} wall, "
                  f"{ms[path]['citypipe'] / ms[path][group.floor]:.1f} CPU; citypipe's peak "
                  f"{r['citypipe']['peak_mb']:.0f} MB above its imports, both processes (target "
                  "under 1024)")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--measure", nargs=2, metavar=("TOOL", "PATH"))
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="a connector option for --measure citypipe (split_bytes=1: read a CityGML file "
        "in split processes whatever its size and the load: by ranges (on two cores, the first "
        "walked by this process), else one child)",
    )  # fmt: skip
    sections = ["memory", "lake", "harvest", "ngsi", "listen", "run", "tiles", "days"]
    p.add_argument("--tiles", type=int, default=100, help="tiles of the tiles section")
    p.add_argument("--group", action="append", choices=[*GROUPS, *sections])
    args = p.parse_args()
    if args.measure:
        options = dict(o.split("=", 1) for o in args.option) or None
        print(json.dumps(measure(args.measure[0], args.measure[1], args.repeat, args.out, options)))
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
        elif name == "run":
            from runjob import run_job  # bench/runjob.py

            run_job(ROOT, args.rounds)
        elif name == "tiles":
            from tiles import run_tiles  # bench/tiles.py

            run_tiles(ROOT, args.rounds, args.tiles)
        elif name == "days":
            from days import run_days  # bench/days.py

            run_days(ROOT, args.rounds)
        elif name == "lake":
            from lake import run_lake  # bench/lake.py

            run_lake(args.rounds, child, WORK, _source(FOUNTAINS), big_nrw)
        else:
            run_group(name, GROUPS[name], args.repeat, args.rounds)


if __name__ == "__main__":
    main()
