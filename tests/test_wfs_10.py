"""A WFS that speaks only 1.0.0 (old MapServer, GeoServer and ArcIMS installs): the real
MapServer behind the fault proxy, every request rewritten to VERSION=1.0.0, as such a server
answers whatever is asked. WFS 1.0 has no count (no resultType=hits, no numberOfFeatures), no
SRSNAME (the answer is in the feature type's one `<SRS>`), a BBOX without its CRS and GML 2,
whose EPSG:4326 is x/y. Expected values come from the sample files."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import shapely
from lxml import etree
from servers.facts import FONTS, PARKPLAETZE, SAMPLES, Layer
from servers.faults import retarget, short
from servers.reading import PARSER
from test_wfs_mapserver import assert_same, harvested

from citypipe.connectors.base import Query
from citypipe.connectors.service_documents import capabilities_layers
from citypipe.connectors.wfs import WFSConnector
from citypipe.core.ingest import ingest
from citypipe.geo.errors import ConfigurationError

ONLY_10 = retarget(r"(?i)(ACCEPTVERSIONS|VERSION)=[^&]*", "VERSION=1.0.0")
"""Every request answered as a 1.0.0 request: the server that speaks nothing later."""


def _only_10(mapserver_wfs, fault_proxy):
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(ONLY_10, times=0)
    return proxy


def _get_features(proxy) -> list[dict[str, str]]:
    """The GetFeature requests' parameters, keys upper-cased."""
    asked = [{k.upper(): v for k, v in parse_qsl(urlsplit(s.target).query)} for s in proxy.seen]
    return [a for a in asked if a.get("REQUEST", "").lower() == "getfeature"]


def _harvest(proxy, layer: Layer, lake):
    options = {"query": Query(layer=layer.name)}
    return ingest(f"{proxy.url}?SERVICE=WFS", layer.name, lake, options=options, validate=False)


def _fonts() -> list[dict]:
    return json.loads((SAMPLES / FONTS.sample).read_text(encoding="utf-8"))["features"]


@pytest.mark.parametrize("layer", [FONTS, PARKPLAETZE], ids=lambda v: v.name)
def test_a_server_of_wfs_1_0_only_is_harvested_whole(
    mapserver_wfs, fault_proxy, lake, layer: Layer
) -> None:
    """Every feature, where the sample has it (EPSG:4326 read x/y, as GML 2 writes it); asked in
    1.0.0 with TYPENAME, without SRSNAME or RESULTTYPE, and read on to an empty page."""
    proxy = _only_10(mapserver_wfs, fault_proxy)
    report = _harvest(proxy, layer, lake)
    assert report.records == layer.with_geometry
    assert_same(harvested(lake, layer.name), layer)
    asked = _get_features(proxy)
    assert all(a["VERSION"] == "1.0.0" and a["TYPENAME"] == layer.name for a in asked)
    assert not any("SRSNAME" in a or "RESULTTYPE" in a or "TYPENAMES" in a for a in asked)
    assert asked[-1]["STARTINDEX"] == str(layer.with_geometry)  # the empty page that ends it


def test_wfs_1_0_inspect_names_the_feature_types_srs(mapserver_wfs, fault_proxy) -> None:
    proxy = _only_10(mapserver_wfs, fault_proxy)
    info = WFSConnector(f"{proxy.url}?SERVICE=WFS", query=Query(layer=PARKPLAETZE.name)).inspect()
    assert info.version == "1.0.0" and info.crs == "EPSG:25832"
    assert set(info.layers) == {FONTS.name, PARKPLAETZE.name}
    assert info.declared_count is None  # WFS 1.0 counts nothing
    assert info.details["filters"] == "Simple_Comparisons, Like, Between"  # as MapServer lists


def test_a_box_and_a_filter_go_to_a_wfs_1_0_as_it_writes_them(mapserver_wfs, fault_proxy) -> None:
    """A box in the feature type's SRS, x/y and without a CRS; a comparison as Filter 1.0."""
    features = _fonts()
    proxy = _only_10(mapserver_wfs, fault_proxy)
    url = f"{proxy.url}?SERVICE=WFS"
    box = (2.15, 41.37, 2.19, 41.40)
    area = shapely.box(*box)
    inside = [f for f in features if area.intersects(shapely.geometry.shape(f["geometry"]))]
    read = WFSConnector(url, query=Query(layer=FONTS.name, bbox=box)).read()
    assert sum(map(len, read)) == len(inside) > 0
    assert _get_features(proxy)[0]["BBOX"] == "2.15,41.37,2.19,41.4"
    kind = "Font ornamental/Llac"
    query = Query(layer=FONTS.name, filter=f"INVENTARI_TIPUS LIKE '{kind[:-1]}%'")
    read = [p for b in WFSConnector(url, query=query).read() for p in b.properties]
    assert len(read) == sum(f["properties"]["INVENTARI_TIPUS"] == kind for f in features) > 0
    sent = _get_features(proxy)[-1]["FILTER"]
    assert "PropertyIsLike" in sent and ' escape="' in sent and "escapeChar" not in sent


def test_a_wfs_1_0_answer_cut_short_is_paged_on_by_startindex(
    mapserver_wfs, fault_proxy, lake
) -> None:
    """The one answer holds 1000 of the 1988 features (a server's cap, unstated in 1.0): the
    harvest pages on from feature 1000 in pages of 1000."""
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(short(1000), match="REQUEST=GetFeature")  # asked in 1.0.0 already
    proxy.inject(ONLY_10, times=0)
    _harvest(proxy, FONTS, lake)
    assert_same(harvested(lake, "fonts"), FONTS)
    starts = [a.get("STARTINDEX") for a in _get_features(proxy)]
    assert starts == [None, "1000", "1988"]


def test_a_wfs_1_0_that_ignores_startindex_is_read_by_tiles_without_counts(
    mapserver_wfs, fault_proxy, lake
) -> None:
    """STARTINDEX answered as 0 and no count to tile by: the extent's quarters are read, each
    whole where its answer holds fewer features than the one answer did (the server's cap is
    not below it), so every feature is read once."""
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(retarget(r"STARTINDEX=\d+", "STARTINDEX=0"), match="STARTINDEX", times=0)
    proxy.inject(ONLY_10, times=0)
    _harvest(proxy, FONTS, lake)
    assert_same(harvested(lake, "fonts"), FONTS)
    tiles = [a for a in _get_features(proxy) if "BBOX" in a]
    assert len(tiles) >= 4 and all(len(t["BBOX"].split(",")) == 4 for t in tiles)


def test_a_wfs_1_0_extent_is_read_in_degrees_whichever_way_the_server_writes_it(
    mapserver_wfs,
) -> None:
    """WFS 1.0's LatLongBoundingBox is in degrees (GeoServer writes it so); MapServer writes it
    in the feature type's SRS (`parkplaetze`: EPSG:25832). Both are read as the extent in
    degrees: MapServer's within the sample's own (facts), the degrees as written."""
    asked = f"{mapserver_wfs.url}?SERVICE=WFS&VERSION=1.0.0&REQUEST=GetCapabilities"
    root = etree.fromstring(requests.get(asked, timeout=30).content, PARSER)
    box = next(
        t.find("{*}LatLongBoundingBox")
        for t in root.iter("{*}FeatureType")
        if t.findtext("{*}Name") == PARKPLAETZE.name
    )
    assert float(box.get("minx")) > 1000  # the premise: MapServer's metres
    west, south, east, north = PARKPLAETZE.wgs84_bbox
    read = _extent(etree.tostring(root), PARKPLAETZE.name)
    assert west <= read[0] <= read[2] <= east and south <= read[1] <= read[3] <= north
    for key, value in zip(("minx", "miny", "maxx", "maxy"), PARKPLAETZE.wgs84_bbox, strict=True):
        box.set(key, str(value))
    assert _extent(etree.tostring(root), PARKPLAETZE.name) == PARKPLAETZE.wgs84_bbox


def _extent(capabilities: bytes, name: str):
    _, _, layers = capabilities_layers(capabilities)
    return next(layer.bbox for layer in layers if layer.name == name)


def test_a_wfs_1_0_crs_other_than_the_srs_is_read_in_the_srs_and_transformed(
    mapserver_wfs, fault_proxy, lake
) -> None:
    """`--crs EPSG:4326` on `parkplaetze`, whose one `<SRS>` is EPSG:25832 (MapServer ignores a
    1.0 SRSNAME): asked without SRSNAME, read in EPSG:25832 and landed in the lake's CRS84 as
    the sample's features; a CRS pyproj does not know is still refused."""
    proxy = _only_10(mapserver_wfs, fault_proxy)
    url = f"{proxy.url}?SERVICE=WFS"
    options = {"query": Query(layer=PARKPLAETZE.name, crs="EPSG:4326")}
    report = ingest(url, PARKPLAETZE.name, lake, options=options, validate=False)
    assert report.records == PARKPLAETZE.with_geometry
    assert_same(harvested(lake, PARKPLAETZE.name), PARKPLAETZE)
    assert not any("SRSNAME" in a for a in _get_features(proxy))
    with pytest.raises(ConfigurationError, match="EPSG:999999"):
        WFSConnector(url, query=Query(layer=PARKPLAETZE.name, crs="EPSG:999999")).inspect()
