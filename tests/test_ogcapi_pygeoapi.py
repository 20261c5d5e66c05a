"""Harvests from a real pygeoapi on 127.0.0.1 (tests/servers) equal the samples it serves:
the same count, the same ids, geometries within 1e-7 degrees, in every CRS a collection
offers; filters, bbox and the faults of the fault proxy end complete or in a clear error
with the lake untouched. Expected values come from the sample files, never from the server."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely
from pyproj import Transformer
from servers.facts import FONTS, PARKPLAETZE, SAMPLES, Layer
from servers.faults import reset, short, slow, status, truncate
from servers.pygeoapi_server import COLLECTIONS, MAX_LIMIT

from citypipe.cli import main
from citypipe.connectors.base import Query
from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.core.ingest import ingest
from citypipe.geo.errors import CitypipeError

OFFERED = [(c.layer, crs) for c in COLLECTIONS for crs in c.crs]


@cache
def expected(layer: Layer) -> dict[str, shapely.Geometry]:
    """The sample's features by the id pygeoapi gives them, in OGC:CRS84 (pyproj)."""
    doc = json.loads((SAMPLES / layer.sample).read_text(encoding="utf-8"))
    to_lonlat = Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    found = {}
    for n, f in enumerate(doc["features"]):
        key = str(n if layer.id_property is None else f["properties"][layer.id_property])
        geometry = shapely.geometry.shape(f["geometry"])
        if layer is PARKPLAETZE:
            geometry = shapely.transform(
                geometry, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))
            )
        found[key] = geometry
    return found


def harvest(url: str, lake: Any, layer: Layer, client: HttpClient | None = None, **query: Any):
    options = {"query": Query(layer=layer.name, **query), "client": client or HttpClient()}
    return ingest(url, layer.name, lake, options=options)


def landed(lake: Any, layer: Layer) -> dict[str, shapely.Geometry | None]:
    table = pq.read_table(lake.partition("features", layer.name))
    ids = table.column("source_id").to_pylist()
    return dict(zip(ids, shapely.from_wkb(table.column("geometry").to_pylist()), strict=True))


def assert_equal_to_sample(lake: Any, layer: Layer, ids: set[str] | None = None) -> None:
    want = expected(layer)
    got = landed(lake, layer)
    assert set(got) == (ids if ids is not None else set(want))
    for key, geometry in got.items():
        if want[key].is_empty:  # parkplaetze's six polygons without coordinates
            assert geometry is None or geometry.is_empty
        else:
            assert shapely.equals_exact(geometry, want[key], tolerance=1e-7), key


@pytest.mark.parametrize(
    ("layer", "crs"), OFFERED, ids=[f"{la.name}-{c[-5:]}" for la, c in OFFERED]
)
def test_a_harvest_equals_the_sample_in_every_crs_offered(pygeoapi_server, lake, layer, crs):
    report = harvest(pygeoapi_server.url, lake, layer, crs=crs)
    assert report.records == report.declared_count == layer.count
    assert report.declared_crs == crs  # pygeoapi's Content-Crs: the CRS asked for
    assert_equal_to_sample(lake, layer)


def test_without_a_crs_the_storage_crs_is_harvested(pygeoapi_server, fault_proxy, lake):
    proxy = fault_proxy(pygeoapi_server.url)
    report = harvest(proxy.url, lake, PARKPLAETZE, page_size=100)
    items = [s.target for s in proxy.seen if "/items" in s.target]
    assert all(
        "crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FEPSG%2F0%2F25832" in t for t in items
    )
    assert len(items) == 3 and report.declared_crs.endswith("/25832")  # 250 in pages of 100
    assert_equal_to_sample(lake, PARKPLAETZE)


def test_a_filter_pygeoapi_does_not_declare_is_applied_by_citypipe(pygeoapi_server, lake):
    """pygeoapi 0.21 declares no filtering class; on parkplaetze it would ignore a filter."""
    doc = json.loads((SAMPLES / PARKPLAETZE.sample).read_text(encoding="utf-8"))
    big = {str(f["properties"]["fid"]) for f in doc["features"] if f["properties"]["fid"] > 200}
    assert len(big) == 50
    report = harvest(pygeoapi_server.url, lake, PARKPLAETZE, filter="fid > 200")
    assert report.records == 50 and report.declared_count is None
    assert_equal_to_sample(lake, PARKPLAETZE, big)


def test_a_bbox_harvest_holds_the_fountains_in_the_box(pygeoapi_server, lake):
    box = (2.15, 41.38, 2.17, 41.40)
    inside = {k for k, g in expected(FONTS).items() if shapely.intersects(g, shapely.box(*box))}
    assert 0 < len(inside) < FONTS.count
    harvest(pygeoapi_server.url, lake, FONTS, bbox=box, page_size=MAX_LIMIT)
    assert_equal_to_sample(lake, FONTS, inside)


@pytest.mark.parametrize(
    "fault",
    [status(503), status(429, retry_after="1"), reset(after=2048), truncate(after=2048), slow(3)],
    ids=["503", "429", "reset", "truncated", "slow"],
)
def test_a_fault_in_passing_ends_in_a_complete_harvest(pygeoapi_server, fault_proxy, lake, fault):
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(fault, match="/items.*offset=500")
    client = HttpClient(HttpPolicy(read_timeout=1.5, backoff=0.05))
    report = harvest(proxy.url, lake, FONTS, client, page_size=MAX_LIMIT)
    assert [s.fault for s in proxy.faulted()] == [fault.kind]
    assert report.records == FONTS.count
    assert_equal_to_sample(lake, FONTS)


def test_a_short_page_fails_the_harvest_and_leaves_the_lake(pygeoapi_server, fault_proxy, lake):
    harvest(pygeoapi_server.url, lake, FONTS, page_size=MAX_LIMIT)
    before = {p: p.read_bytes() for p in lake.files("features")}
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(short(10), match="/items.*offset=500")
    with pytest.raises(CitypipeError, match=f"numberMatched {FONTS.count}, .* held 1498 features"):
        harvest(proxy.url, lake, FONTS, page_size=MAX_LIMIT)
    assert {p: p.read_bytes() for p in lake.files("features")} == before


def test_a_fault_that_lasts_is_a_clear_error_and_the_lake_is_untouched(
    pygeoapi_server, fault_proxy, lake, capsys
):
    harvest(pygeoapi_server.url, lake, FONTS, page_size=MAX_LIMIT)
    before = {p: p.read_bytes() for p in lake.files("features")}
    proxy = fault_proxy(pygeoapi_server.url)
    proxy.inject(status(503), match="/items.*offset=1000", times=0)
    code = main(["ingest", proxy.url, "--source", "fonts", "--layer", "fonts", "--lake",
                 str(lake.root), "--page-size", str(MAX_LIMIT)])  # fmt: skip
    assert code == 2 and "HTTP 503 after 5 tries" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in lake.files("features")} == before


def test_inspect_names_pygeoapis_collections_titles_and_crs(pygeoapi_server, capsys):
    assert main(["inspect", pygeoapi_server.url, "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    layers = {layer["name"]: layer for layer in facts["layer info"]}
    assert layers["parkplaetze"]["title"] == PARKPLAETZE.title == "Parkplätze Esslingen am Neckar"
    assert layers["fonts"]["title"] == FONTS.title
    storage = "http://www.opengis.net/def/crs/EPSG/0/25832"
    assert layers["parkplaetze"]["crs"][0] == storage  # the storage CRS first
    assert "crs" in facts["conformance"].split(", ")
