"""The harvest section of the benchmark: a service's layer harvested into GeoParquet.

The test servers (tests/servers: pygeoapi and MapServer 8 on 127.0.0.1, the same as the
harvest tests use) serve the samples' layers; each layer is harvested, in one run and with the
tools taken in turn, by:
  floor     the least a harvester must do: OWSLib's client for every page (WFS GetFeature in
            GeoJSON, OGC API items), `json.loads` of each, paging by offset until a short page
  gdal      what a user would otherwise run: GDAL's own WFS / OAPIF driver through
            `pyogrio.read_dataframe` on the URL, then geopandas `to_parquet`
  citypipe  `ingest` of the URL (connector -> harmonise -> GeoParquet, without validation)
All ask for pages of PAGE features, except from the WFS 1.1, which has no paging in the spec:
there each asks as it does by default, the layer in one GetFeature (GDAL's 1.1 driver does, and
citypipe without --page-size; the floor as the least a harvester must do). A target is
`KIND URL LAYER` in one string, KIND one of oapif, wfs (2.0.0), wfs11 (1.1.0), so that
bench/run.py's children can take it as their path.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

PAGE = 500
"""Features per request, for every tool (pygeoapi serves at most 500)."""
LAYERS = ("fonts", "parkplaetze")
KINDS = ("oapif", "wfs", "wfs11")
_VERSION = {"wfs": "2.0.0", "wfs11": "1.1.0"}
_GEOJSON = "application/json; subtype=geojson"


@contextmanager
def serving(root: Path) -> Iterator[dict[str, str]]:
    """The test servers for the duration: their base URL by kind."""
    sys.path.insert(0, str(root / "tests"))
    from servers.mapserver import serve_mapserver
    from servers.pygeoapi_server import serve_pygeoapi

    with ExitStack() as stack:
        work = Path(stack.enter_context(TemporaryDirectory(prefix="citypipe-bench-")))
        oapif = stack.enter_context(serve_pygeoapi(work)).url
        wfs = stack.enter_context(serve_mapserver()).url
        yield {"oapif": oapif, "wfs": wfs, "wfs11": wfs}


def _parts(target: str) -> tuple[str, str, str]:
    kind, url, layer = target.split(" ")
    return kind, url, layer


def _floor(target: str, out: Path) -> Callable[[], object]:
    kind, url, layer = _parts(target)
    if kind == "oapif":
        from owslib.ogcapi.features import Features

        def pages() -> Iterator[list]:
            api = Features(url)
            offset = 0
            while True:
                page = api.collection_items(layer, limit=PAGE, offset=offset)
                yield page["features"]
                if len(page["features"]) < PAGE:
                    return
                offset += PAGE

    else:
        from owslib.wfs import WebFeatureService

        def pages() -> Iterator[list]:
            service = WebFeatureService(url, version=_VERSION[kind])
            start = 0
            while True:
                size = None if kind == "wfs11" else PAGE  # 1.1: the layer in one request
                reply = service.getfeature(
                    typename=[layer], outputFormat=_GEOJSON, startindex=start, maxfeatures=size
                )
                features = json.loads(reply.read())["features"]
                yield features
                if size is None or len(features) < size:
                    return
                start += size

    return lambda: sum(len(p) for p in pages())


def _gdal(target: str, out: Path) -> Callable[[], object]:
    import pyogrio

    kind, url, layer = _parts(target)
    if kind == "oapif":
        source, options = f"OAPIF:{url}", {"PAGE_SIZE": PAGE}
    else:
        source = f"WFS:{url}?SERVICE=WFS&VERSION={_VERSION[kind]}"
        options = {"PAGE_SIZE": PAGE, "PAGING_ALLOWED": "ON"}  # 1.1: one request whatever
    return lambda: pyogrio.read_dataframe(source, layer=layer, **options).to_parquet(
        out / "out.parquet"
    )


def _citypipe(target: str, out: Path) -> Callable[[], object]:
    from citypipe.connectors.base import Query
    from citypipe.core.ingest import ingest
    from citypipe.core.lake import Lake

    kind, url, layer = _parts(target)
    if kind != "oapif":
        url = f"{url}?SERVICE=WFS&VERSION={_VERSION[kind]}"
    query = Query(layer=layer, page_size=None if kind == "wfs11" else PAGE)
    lake = Lake(out)
    return lambda: ingest(url, "bench", lake, options={"query": query}, validate=False)


TOOLS: dict[str, Callable[[str, Path], Callable[[], object]]] = {
    "harvest-floor": _floor,
    "harvest-gdal": _gdal,
    "harvest-citypipe": _citypipe,
}
"""The tools bench/run.py's children run on a target."""


def run_harvest(root: Path, rounds: int, best_of_rounds: Callable[..., dict]) -> None:
    """Times and ratios of each tool on each layer of each server, best of `rounds` rounds
    (bench/run.py's `best_of_rounds`: the tools in turn, each in a child process)."""
    tools = tuple(TOOLS)
    head = (
        f"{'service':8} {'layer':12} {'floor ms':>9} {'gdal ms':>9} {'citypipe ms':>12}"
        f" {'gdal/cp':>8} {'cp/floor':>9}"
    )
    print(f"\nharvest (pages of {PAGE})\n{head}\n{'-' * len(head)}")
    with serving(root) as urls:
        targets = [f"{k} {urls[k]} {layer}" for k in KINDS for layer in LAYERS]
        best = best_of_rounds(tools, [(t, 3) for t in targets], rounds)
    for target in targets:
        kind, _, layer = _parts(target)
        ms = {t: best[target][t]["seconds"] * 1000 for t in tools}
        floor, gdal, cp = ms["harvest-floor"], ms["harvest-gdal"], ms["harvest-citypipe"]
        print(
            f"{kind:8} {layer:12} {floor:9.1f} {gdal:9.1f} {cp:12.1f}"
            f" {gdal / cp:8.2f} {cp / floor:9.2f}"
        )
        for tool in tools:
            if "error" in best[target][tool]:
                print(f"  {tool} failed: {best[target][tool]['error']}")
    print("targets: citypipe faster than GDAL (gdal/cp above 1), within 1.5x of the floor")
