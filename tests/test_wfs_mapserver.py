"""WFS harvests from a real MapServer 8 on 127.0.0.1 (tests/servers): every feature it serves,
with the same ids, geometries within 1e-7 degrees of the samples' own, in WFS 2.0.0 and 1.1.0
and every CRS it offers; the faults of the proxy in front of it end in a complete harvest or
in a clear error with the lake as it was. Expected values come from the sample files."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import requests
import shapely
from lxml import etree
from pyproj import Transformer
from servers.facts import FONTS, PARKPLAETZE, SAMPLES, Layer
from servers.faults import answer, reset, retarget, short, slow, status, truncate
from servers.reading import NS, PARSER

from citypipe.connectors.base import Query
from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.connectors.wfs import WFSConnector
from citypipe.connectors.wfs_gml import read_feature_collection
from citypipe.core.ingest import ingest
from citypipe.geo.errors import UnavailableError

TOLERANCE = 1e-7
READ_TIMEOUT = 4.0
"""Degrees."""


def expected(layer: Layer) -> dict[str, Any]:
    """The sample's features MapServer serves (those with a geometry), by the gml:id it gives
    them (`fonts.<position in the file>`, `parkplaetze.<fid>`), in OGC:CRS84."""
    features = json.loads((SAMPLES / layer.sample).read_text(encoding="utf-8"))["features"]
    to_crs84 = None
    if layer is PARKPLAETZE:  # stored in EPSG:25832
        to_crs84 = Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    out = {}
    for n, f in enumerate(features):
        if not (f["geometry"] and f["geometry"]["coordinates"]):
            continue
        shape = shapely.geometry.shape(f["geometry"])
        if to_crs84 is not None:
            shape = shapely.transform(shape, lambda xy: _apply(to_crs84, xy))
        key = f["properties"][layer.id_property] if layer.id_property else n
        out[f"{layer.name}.{key}"] = shape
    return out


def _apply(transformer: Transformer, xy: np.ndarray) -> np.ndarray:
    return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))


def harvested(lake, source: str) -> dict[str, Any]:
    table = pq.read_table(lake.partition("features", source))
    ids, shapes = table.column("source_id").to_pylist(), table.column("geometry").to_pylist()
    return {sid: shapely.from_wkb(wkb) for sid, wkb in zip(ids, shapes, strict=True)}


def assert_same(read: dict[str, Any], layer: Layer) -> None:
    want = expected(layer)
    assert len(read) == layer.with_geometry and set(read) == set(want)
    far = [s for s, shape in read.items() if shapely.hausdorff_distance(shape, want[s]) > TOLERANCE]
    assert not far, f"{len(far)} features moved, e.g. {far[:3]}"


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
@pytest.mark.parametrize(
    ("layer", "crs"),
    [
        (FONTS, "EPSG:4326"),  # latitude first, labelled EPSG:4326 in 1.1.0
        (FONTS, "EPSG:25831"),
        (FONTS, "EPSG:3857"),
        (PARKPLAETZE, "EPSG:25832"),
        (PARKPLAETZE, "EPSG:4326"),
        (PARKPLAETZE, "EPSG:3857"),
    ],
    ids=lambda v: getattr(v, "name", v),
)
def test_a_harvest_equals_what_mapserver_serves(mapserver_wfs, lake, version, layer, crs) -> None:
    url = f"{mapserver_wfs.url}?SERVICE=WFS&VERSION={version}"
    query = Query(layer=layer.name, crs=crs)
    report = ingest(url, layer.name, lake, options={"query": query}, validate=False)
    assert report.declared_count == report.records == layer.with_geometry
    assert_same(harvested(lake, layer.name), layer)


def _client() -> HttpClient:
    """Quick retries; a read timeout that MapServer's CGI keeps even on a loaded machine."""
    return HttpClient(HttpPolicy(retries=2, backoff=0.01, read_timeout=READ_TIMEOUT))


@pytest.mark.parametrize(
    "fault",
    [
        short(10),  # a short page mid-harvest
        status(503),
        status(429, retry_after="1"),
        reset(after=2000),
        truncate(after=3000),
        slow(READ_TIMEOUT + 1),  # slower than the read timeout: asked again
    ],
    ids=["short", "503", "429", "reset", "truncated", "slow"],
)
def test_a_fault_mid_harvest_ends_in_a_complete_harvest(
    mapserver_wfs, fault_proxy, lake, fault
) -> None:
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(fault, match="STARTINDEX=500")
    query = Query(layer="fonts", page_size=500)
    options = {"query": query, "client": _client()}
    ingest(f"{proxy.url}?SERVICE=WFS", "fonts", lake, options=options, validate=False)
    assert_same(harvested(lake, "fonts"), FONTS)
    assert [s.fault for s in proxy.seen if s.fault]  # the fault did happen


def test_a_fault_that_lasts_fails_the_harvest_and_the_lake_keeps_its_output(
    mapserver_wfs, fault_proxy, lake
) -> None:
    query = Query(layer="fonts", page_size=500)
    url = f"{mapserver_wfs.url}?SERVICE=WFS"
    ingest(url, "fonts", lake, options={"query": query}, validate=False)
    part = lake.partition("features", "fonts") / "part-0.parquet"
    before = part.read_bytes()
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(status(503), match="STARTINDEX=1000", times=0)
    with pytest.raises(UnavailableError, match="HTTP 503 after 3 tries"):
        options = {"query": query, "client": _client()}
        ingest(f"{proxy.url}?SERVICE=WFS", "fonts", lake, options=options, validate=False)
    assert part.read_bytes() == before


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_a_filter_goes_to_mapserver_and_a_box_too(mapserver_wfs, version) -> None:
    """A comparison as FES 2.0 / Filter 1.1 KVP; a box in EPSG:4326's own order, with its URN."""
    features = json.loads((SAMPLES / FONTS.sample).read_text(encoding="utf-8"))["features"]
    kind = "Font ornamental/Llac"  # 313 of the 1988 fountains
    url = f"{mapserver_wfs.url}?SERVICE=WFS&VERSION={version}"
    query = Query(layer="fonts", filter=f"INVENTARI_TIPUS = '{kind}'")
    connector = WFSConnector(url, query=query)
    read = [p for b in connector.read() for p in b.properties]
    assert connector.inspect().details["filter"] == "sent to the server"
    assert (
        len(read)
        == connector.hits
        == sum(f["properties"]["INVENTARI_TIPUS"] == kind for f in features)
    )
    box = (2.15, 41.37, 2.19, 41.40)
    inside = [
        f for f in features if shapely.box(*box).intersects(shapely.geometry.shape(f["geometry"]))
    ]
    connector = WFSConnector(url, query=Query(layer="fonts", bbox=box))
    assert sum(map(len, connector.read())) == connector.hits == len(inside) > 0


def test_mapservers_geojson_has_no_ids_so_its_pages_are_gml(mapserver_wfs, fault_proxy) -> None:
    """The GeoJSON probe (one feature) finds no id in MapServer's OGR output: every page is GML;
    its first page says numberMatched="unknown", so hits is asked, once."""
    proxy = fault_proxy(mapserver_wfs.url)
    connector = WFSConnector(f"{proxy.url}?SERVICE=WFS", query=Query(layer="fonts", page_size=500))
    read = {sid for batch in connector.read() for sid in batch.source_ids}
    assert len(read) == FONTS.with_geometry == connector.inspect().declared_count
    targets = [s.target.lower() for s in proxy.seen if "request=getfeature" in s.target.lower()]
    probes = [t for t in targets if "count=1&" in t or t.endswith("count=1")]
    assert len(probes) == 1 and "json" in probes[0]
    assert sum("resulttype=hits" in t for t in targets) == 1
    pages = [t for t in targets if "count=500" in t]
    assert len(pages) == 4 and all("gml" in t and "json" not in t for t in pages)


def test_a_second_geometry_property_is_kept_as_wkt_in_crs84(mapserver_wfs) -> None:
    """MapServer serves one geometry per feature: its real GML 3.2 page of `parkplaetze`, with
    a second geometry property added to each feature (a Point at the first position of its
    polygon in the sample), reads as the polygon plus that Point as WKT in OGC:CRS84."""
    url = (
        f"{mapserver_wfs.url}?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature"
        "&TYPENAMES=ms:parkplaetze&COUNT=500"
    )
    root = etree.fromstring(requests.get(url, timeout=30).content, PARSER)
    gml, ms = NS["gml32"], NS["ms"]
    features = json.loads((SAMPLES / PARKPLAETZE.sample).read_text(encoding="utf-8"))["features"]
    first_position = {
        f"parkplaetze.{f['properties']['fid']}": f["geometry"]["coordinates"][0][0]
        for f in features
        if f["geometry"] and f["geometry"]["coordinates"]
    }
    for feature in root.iterfind(f".//{{{ms}}}parkplaetze"):
        x, y = first_position[feature.get(f"{{{gml}}}id")]
        entrance = etree.SubElement(feature, f"{{{ms}}}einfahrt")
        point = etree.SubElement(entrance, f"{{{gml}}}Point")
        point.set("srsName", "urn:ogc:def:crs:EPSG::25832")
        etree.SubElement(point, f"{{{gml}}}pos").text = f"{x!r} {y!r}"
    page = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    batches = list(read_feature_collection(page, wfs_version="2.0.0"))
    to_crs84 = Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    read = 0
    for batch in batches:
        for sid, shape, props in zip(
            batch.source_ids, batch.geometries, batch.properties, strict=True
        ):
            assert shape.geom_type == "Polygon"
            lon, lat = to_crs84.transform(*first_position[sid])
            kept = shapely.from_wkt(props["einfahrt"])
            assert kept.geom_type == "Point"
            assert (kept.x, kept.y) == pytest.approx((lon, lat), abs=TOLERANCE)
            read += 1
    assert read == PARKPLAETZE.with_geometry


def test_a_server_that_ignores_startindex_and_counts_nothing_is_read_by_tiles(
    mapserver_wfs, fault_proxy, lake
) -> None:
    """`parkplaetze`'s 2.0.0 pages say numberMatched="unknown"; with resultType=hits refused
    (an exception report) and STARTINDEX answered as 0 there is no count to tile by: the
    extent's quarters are read, each split again where its answer is a full page."""
    proxy = fault_proxy(mapserver_wfs.url)
    report = (
        b'<?xml version="1.0"?><ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" '
        b'version="2.0.0"><ows:Exception exceptionCode="OperationProcessingFailed">'
        b"<ows:ExceptionText>hits are not counted here</ows:ExceptionText></ows:Exception>"
        b"</ows:ExceptionReport>"
    )
    proxy.inject(answer(report, "text/xml"), match="(?i)RESULTTYPE=hits", times=0)
    proxy.inject(retarget(r"STARTINDEX=\d+", "STARTINDEX=0"), match="STARTINDEX", times=0)
    query = Query(layer=PARKPLAETZE.name, page_size=100)
    url = f"{proxy.url}?SERVICE=WFS&VERSION=2.0.0"
    ingest(url, "parking", lake, options={"query": query}, validate=False)
    assert_same(harvested(lake, "parking"), PARKPLAETZE)
    assert sum("BBOX=" in s.target for s in proxy.seen) >= 4
