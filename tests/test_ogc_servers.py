"""The test servers serve what their fixtures claim (tests/servers/README.md). Expected values
come from the sample files (counted here) and MANIFEST.md."""

from __future__ import annotations

import math

import pytest
import requests
from lxml import etree
from owslib.wfs import WebFeatureService
from pyproj import Transformer
from servers.facts import FONTS, PARKPLAETZE
from servers.mapserver import COUNT_DEFAULT, OUTPUT_FORMATS
from servers.pygeoapi_server import MAX_LIMIT
from servers.reading import NS, PARSER, get_json, in_crs84, kvp, members, sample, wfs, with_geometry
from shapely.geometry import box

FILTER_CLASS = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter"


# --- pygeoapi ------------------------------------------------------------------------------


def test_the_samples_hold_what_the_facts_say() -> None:
    assert len(sample(FONTS)) == FONTS.count == 1988
    assert len(sample(PARKPLAETZE)) == PARKPLAETZE.count == 250
    assert len(with_geometry(PARKPLAETZE)) == PARKPLAETZE.with_geometry == 244
    for layer in (FONTS, PARKPLAETZE):
        extent = box(*layer.wgs84_bbox)
        assert all(extent.contains(in_crs84(layer, f["geometry"])) for f in with_geometry(layer))


def test_pygeoapi_lists_both_collections_with_titles_and_crs(pygeoapi_server) -> None:
    _, doc = get_json(f"{pygeoapi_server.url}/collections")
    listed = {c["id"]: c for c in doc["collections"]}
    assert listed["parkplaetze"]["title"] == "Parkplätze Esslingen am Neckar"
    assert listed["fonts"]["title"] == "Fonts d'aigua de Barcelona"
    for cid, collection in pygeoapi_server.collections.items():
        assert listed[cid]["crs"] == list(collection.crs)
        assert listed[cid]["storageCrs"] == collection.storage_crs


def test_pygeoapi_counts_equal_the_samples(pygeoapi_server) -> None:
    for layer in (FONTS, PARKPLAETZE):
        _, doc = get_json(f"{pygeoapi_server.url}/collections/{layer.name}/items", limit=1)
        assert doc["numberMatched"] == len(sample(layer))


def test_pygeoapi_next_links_page_through_every_fountain(pygeoapi_server) -> None:
    url: str | None = f"{pygeoapi_server.url}/collections/fonts/items?f=json&limit=700"
    pages, ids = [], []
    while url:
        doc = requests.get(url, timeout=30).json()
        pages.append(doc["numberReturned"])
        ids += [f["id"] for f in doc["features"]]
        url = next((link["href"] for link in doc["links"] if link["rel"] == "next"), None)
        if not doc["features"]:
            break
    # limit=700 is above the server's 500: pages of 500 and the rest
    assert pages[:4] == [MAX_LIMIT, MAX_LIMIT, MAX_LIMIT, 1988 - 3 * MAX_LIMIT]
    assert ids == list(range(1988))


def test_pygeoapi_features_equal_the_samples(pygeoapi_server) -> None:
    _, doc = get_json(f"{pygeoapi_server.url}/collections/fonts/items", limit=MAX_LIMIT)
    for served, source in zip(doc["features"], sample(FONTS)[:MAX_LIMIT], strict=True):
        assert served["geometry"] == source["geometry"]
        assert served["properties"] == source["properties"]
    _, doc = get_json(f"{pygeoapi_server.url}/collections/parkplaetze/items/93")
    assert doc["geometry"]["coordinates"] == []  # one of the six empty polygons, served


def test_pygeoapi_part2_crs_and_storage_crs(pygeoapi_server) -> None:
    url = f"{pygeoapi_server.url}/collections/parkplaetze/items"
    epsg25832 = "http://www.opengis.net/def/crs/EPSG/0/25832"
    reply, doc = get_json(url, crs=epsg25832, limit=MAX_LIMIT)
    assert reply.headers["Content-Crs"] == f"<{epsg25832}>"
    assert [f["geometry"] for f in doc["features"]] == [f["geometry"] for f in sample(PARKPLAETZE)]
    reply, doc = get_json(url, limit=1)  # no crs: CRS84, longitude first
    assert reply.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    # the body's crs member is the file's own, copied by the GeoJSON provider: a lie
    assert doc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::25832"
    to_lonlat = Transformer.from_crs(25832, "OGC:CRS84", always_xy=True)
    source = sample(PARKPLAETZE)[0]["geometry"]["coordinates"][0]
    for (x, y), (lon, lat) in zip(
        source, doc["features"][0]["geometry"]["coordinates"][0], strict=True
    ):
        assert math.dist(to_lonlat.transform(x, y), (lon, lat)) < 1e-9


def test_pygeoapi_epsg_4326_is_latitude_first(pygeoapi_server) -> None:
    url = f"{pygeoapi_server.url}/collections/fonts/items"
    reply, doc = get_json(url, crs="http://www.opengis.net/def/crs/EPSG/0/4326", limit=5)
    assert reply.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    for served, source in zip(doc["features"], sample(FONTS)[:5], strict=True):
        lon, lat = source["geometry"]["coordinates"]
        assert served["geometry"]["coordinates"] == [lat, lon]


def test_pygeoapi_utm31_matches_the_fountains_own_coordinates(pygeoapi_server) -> None:
    """MANIFEST: INVENTARI_COORDENADA_X/Y are the fountains' ETRS89 / UTM 31N coordinates."""
    url = f"{pygeoapi_server.url}/collections/fonts/items"
    _, doc = get_json(url, crs="http://www.opengis.net/def/crs/EPSG/0/25831", limit=MAX_LIMIT)
    gaps = [
        math.dist(
            f["geometry"]["coordinates"],
            (f["properties"]["INVENTARI_COORDENADA_X"], f["properties"]["INVENTARI_COORDENADA_Y"]),
        )
        for f in doc["features"]
    ]
    assert max(gaps) < 1.0  # metres: the CRS84 copy keeps 6 decimals of a degree


def test_pygeoapi_cql2_filter_on_fonts_only(pygeoapi_server) -> None:
    ornamental = "INVENTARI_TIPUS='Font ornamental/Llac'"
    expected = sum(
        f["properties"]["INVENTARI_TIPUS"] == "Font ornamental/Llac" for f in sample(FONTS)
    )
    assert expected == 313
    url = f"{pygeoapi_server.url}/collections/fonts/items"
    _, doc = get_json(url, filter=ornamental, limit=MAX_LIMIT)
    assert doc["numberMatched"] == expected
    assert {f["properties"]["INVENTARI_TIPUS"] for f in doc["features"]} == {"Font ornamental/Llac"}
    # the stock GeoJSON provider ignores a filter silently, and pygeoapi 0.21 declares no
    # filter conformance class: a harvest must filter such a collection itself
    url = f"{pygeoapi_server.url}/collections/parkplaetze/items"
    _, doc = get_json(url, filter="fid=1", limit=1)
    assert doc["numberMatched"] == PARKPLAETZE.count
    _, conformance = get_json(f"{pygeoapi_server.url}/conformance")
    assert FILTER_CLASS not in conformance["conformsTo"]


@pytest.mark.parametrize(
    ("layer", "bbox"),
    [(FONTS, (2.17, 41.38, 2.19, 41.40)), (PARKPLAETZE, (9.30, 48.73, 9.305, 48.74))],
)
def test_pygeoapi_bbox_is_crs84_on_either_storage_crs(pygeoapi_server, layer, bbox) -> None:
    inside = [
        f for f in with_geometry(layer) if in_crs84(layer, f["geometry"]).intersects(box(*bbox))
    ]
    url = f"{pygeoapi_server.url}/collections/{layer.name}/items"
    _, doc = get_json(url, bbox=",".join(map(str, bbox)), limit=MAX_LIMIT)
    assert doc["numberMatched"] == len(inside) > 0


def test_pygeoapi_queryables_as_query_parameters_on_both(pygeoapi_server) -> None:
    """Part 3's queryables-query-parameters: `?name=value`, honoured by every provider."""
    url = f"{pygeoapi_server.url}/collections"
    _, doc = get_json(f"{url}/fonts/items", INVENTARI_TIPUS="Font ornamental/Llac", limit=1)
    assert doc["numberMatched"] == 313
    _, doc = get_json(f"{url}/parkplaetze/items", Ausrichtung="quer", limit=1)
    quer = sum(f["properties"]["Ausrichtung"] == "quer" for f in sample(PARKPLAETZE))
    assert doc["numberMatched"] == quer == 95
    _, queryables = get_json(f"{url}/parkplaetze/queryables")
    assert "Anzahl der Stellplätze" in queryables["properties"]


# --- MapServer -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1.0", "2.0.0"])
def test_mapserver_capabilities_through_owslib(mapserver_wfs, version: str) -> None:
    service = WebFeatureService(mapserver_wfs.url, version=version, timeout=30)
    prefix = "ms:" if version == "2.0.0" else ""  # MapServer names 1.1.0 types unprefixed
    assert set(service.contents) == {f"{prefix}fonts", f"{prefix}parkplaetze"}
    assert service.contents[f"{prefix}parkplaetze"].title == "Parkplätze Esslingen am Neckar"
    for name, feature_type in mapserver_wfs.feature_types.items():
        codes = [f"EPSG:{crs.code}" for crs in service.contents[prefix + name].crsOptions]
        assert codes == [feature_type.default_crs, *feature_type.other_crs]


@pytest.mark.parametrize("version", ["1.1.0", "2.0.0"])
def test_mapserver_hits_count_the_features_with_geometry(mapserver_wfs, version: str) -> None:
    attribute = "numberMatched" if version == "2.0.0" else "numberOfFeatures"
    type_key = "TYPENAMES" if version == "2.0.0" else "TYPENAME"
    for layer in (FONTS, PARKPLAETZE):
        reply = wfs(mapserver_wfs.url, version, **{type_key: layer.name, "RESULTTYPE": "hits"})
        root = etree.fromstring(reply.content, PARSER)
        assert int(root.get(attribute)) == len(with_geometry(layer))


def test_mapserver_pages_with_startindex_and_count(mapserver_wfs) -> None:
    ids: list[str] = []
    for start in range(0, 2000, 500):
        page = wfs(
            mapserver_wfs.url, "2.0.0", TYPENAMES="fonts", COUNT="500", STARTINDEX=str(start)
        )
        found = members(page)
        assert len(found) == min(500, 1988 - start)
        ids += [m.get("{http://www.opengis.net/gml/3.2}id") for m in found]
    assert ids == [f"fonts.{n}" for n in range(1988)]  # the 0-based position in the file


def test_mapserver_answers_an_unpaged_request_whole_below_count_default(mapserver_wfs) -> None:
    capabilities = requests.get(
        mapserver_wfs.url, params=kvp("2.0.0", "GetCapabilities"), timeout=30
    )
    default = etree.fromstring(capabilities.content, PARSER).xpath(
        "//*[local-name()='Constraint'][@name='CountDefault']/*[local-name()='DefaultValue']"
    )
    assert int(default[0].text) == COUNT_DEFAULT
    reply = wfs(mapserver_wfs.url, "2.0.0", TYPENAMES="fonts")
    assert len(members(reply)) == FONTS.count < COUNT_DEFAULT


@pytest.mark.parametrize(
    ("version", "srs_name", "position"),
    [("1.1.0", "EPSG:4326", "gml:pos"), ("2.0.0", "urn:ogc:def:crs:EPSG::4326", "gml32:pos")],
)
def test_mapserver_writes_epsg_4326_latitude_first(
    mapserver_wfs, version: str, srs_name: str, position: str
) -> None:
    type_key = "TYPENAMES" if version == "2.0.0" else "TYPENAME"
    count_key = "COUNT" if version == "2.0.0" else "MAXFEATURES"
    reply = wfs(mapserver_wfs.url, version, **{type_key: "fonts", count_key: "20"})
    found = members(reply)
    assert len(found) == 20
    for member, source in zip(found, sample(FONTS)[:20], strict=True):
        point = member.xpath(f".//{position}", namespaces=NS)[0]
        assert point.getparent().get("srsName") == srs_name
        lat, lon = map(float, point.text.split())
        assert [lon, lat] == source["geometry"]["coordinates"]


@pytest.mark.parametrize("version", ["1.1.0", "2.0.0"])
def test_mapserver_geojson_in_epsg_4326_is_longitude_first(mapserver_wfs, version: str) -> None:
    params = {"TYPENAME": "fonts", "TYPENAMES": "fonts", "MAXFEATURES": "20", "COUNT": "20"}
    format_ = OUTPUT_FORMATS["geojson"]
    doc = wfs(
        mapserver_wfs.url, version, OUTPUTFORMAT=format_, SRSNAME="EPSG:4326", **params
    ).json()
    assert "crs" not in doc
    served = [f["geometry"]["coordinates"] for f in doc["features"]]
    assert served == [f["geometry"]["coordinates"] for f in sample(FONTS)[:20]]


def test_mapserver_projected_layer_in_its_own_crs_and_aliases(mapserver_wfs) -> None:
    reply = wfs(mapserver_wfs.url, "2.0.0", TYPENAMES="parkplaetze", COUNT="5")
    assert etree.fromstring(reply.content, PARSER).get("numberMatched") == "unknown"
    aliases = mapserver_wfs.feature_types["parkplaetze"].aliases
    assert aliases["Anzahl der Stellplätze"] == "Anzahl_der_Stellplätze"
    for member, source in zip(members(reply), with_geometry(PARKPLAETZE)[:5], strict=True):
        assert member.findtext("ms:fid", namespaces=NS) == str(source["properties"]["fid"])
        count = member.findtext("ms:Anzahl_der_Stellplätze", namespaces=NS)
        assert count == str(source["properties"]["Anzahl der Stellplätze"])
        pos_list = member.xpath(".//gml32:posList", namespaces=NS)[0]
        assert pos_list.getparent().getparent().getparent().get("srsName").endswith("25832")
        values = list(map(float, pos_list.text.split()))
        ring = list(zip(values[::2], values[1::2], strict=True))
        assert all(
            math.dist(a, b) < 1e-6
            for a, b in zip(ring, source["geometry"]["coordinates"][0], strict=True)
        )
    schema = requests.get(
        mapserver_wfs.url,
        params=kvp("2.0.0", "DescribeFeatureType", TYPENAMES="parkplaetze"),
        timeout=30,
    )
    names = etree.fromstring(schema.content, PARSER).xpath("//xsd:element/@name", namespaces=NS)
    assert set(aliases.values()) <= set(names)


@pytest.mark.parametrize("version", ["1.1.0", "2.0.0"])
def test_mapserver_geojson_output_pages(mapserver_wfs, version: str) -> None:
    type_key = "TYPENAMES" if version == "2.0.0" else "TYPENAME"
    count_key = "COUNT" if version == "2.0.0" else "MAXFEATURES"
    fids = []
    for start in range(0, 250, 100):
        params = {type_key: "parkplaetze", count_key: "100", "STARTINDEX": str(start)}
        doc = wfs(
            mapserver_wfs.url, version, OUTPUTFORMAT=OUTPUT_FORMATS["geojson"], **params
        ).json()
        fids += [f["properties"]["fid"] for f in doc["features"]]
    assert fids == [f["properties"]["fid"] for f in with_geometry(PARKPLAETZE)]


@pytest.mark.parametrize(
    ("version", "output", "gml"),
    [
        ("1.1.0", None, "http://www.opengis.net/gml"),  # 1.1.0 offers GML 3.1.1 (and 2.1.2)
        ("1.1.0", "gml311", "http://www.opengis.net/gml"),
        ("2.0.0", None, "http://www.opengis.net/gml/3.2"),
        ("2.0.0", "gml311", "http://www.opengis.net/gml"),
        ("2.0.0", "gml32", "http://www.opengis.net/gml/3.2"),
    ],
)
def test_mapserver_writes_the_gml_versions_it_offers(
    mapserver_wfs, version: str, output: str | None, gml: str
) -> None:
    params = {"TYPENAME": "parkplaetze", "TYPENAMES": "parkplaetze", "MAXFEATURES": "1"}
    if output:
        params["OUTPUTFORMAT"] = OUTPUT_FORMATS[output]
    reply = wfs(mapserver_wfs.url, version, COUNT="1", **params)
    (geometry,) = members(reply)[0].find("ms:msGeometry", namespaces=NS)
    assert etree.QName(geometry).namespace == gml
    assert etree.QName(geometry).localname == "Polygon"


def test_mapserver_reprojects_to_epsg_4326_within_1e_7_degrees(mapserver_wfs) -> None:
    reply = wfs(mapserver_wfs.url, "2.0.0", TYPENAMES="parkplaetze", SRSNAME="EPSG:4326")
    to_latlon = Transformer.from_crs(25832, 4326)  # EPSG:4326's own order: latitude first
    found = members(reply)
    assert len(found) == PARKPLAETZE.with_geometry
    for member, source in zip(found, with_geometry(PARKPLAETZE), strict=True):
        values = list(map(float, member.xpath(".//gml32:posList", namespaces=NS)[0].text.split()))
        served = list(zip(values[::2], values[1::2], strict=True))
        expected = [to_latlon.transform(x, y) for x, y in source["geometry"]["coordinates"][0]]
        assert max(map(math.dist, served, expected)) < 1e-7


ORNAMENTAL_HITS = """<?xml version="1.0" encoding="UTF-8"?>
<wfs:GetFeature service="WFS" version="2.0.0" resultType="hits"
    xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:fes="http://www.opengis.net/fes/2.0"
    xmlns:ms="http://mapserver.gis.umn.edu/mapserver">
  <wfs:Query typeNames="ms:fonts"><fes:Filter><fes:PropertyIsEqualTo>
    <fes:ValueReference>INVENTARI_TIPUS</fes:ValueReference>
    <fes:Literal>Font ornamental/Llac</fes:Literal>
  </fes:PropertyIsEqualTo></fes:Filter></wfs:Query>
</wfs:GetFeature>"""


def test_mapserver_takes_a_posted_fes_filter(mapserver_wfs) -> None:
    reply = requests.post(
        mapserver_wfs.url,
        data=ORNAMENTAL_HITS.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=30,
    )
    expected = sum(
        f["properties"]["INVENTARI_TIPUS"] == "Font ornamental/Llac" for f in sample(FONTS)
    )
    assert int(etree.fromstring(reply.content, PARSER).get("numberMatched")) == expected


@pytest.mark.parametrize(
    ("version", "crs"), [("1.1.0", "EPSG:4326"), ("2.0.0", "urn:ogc:def:crs:EPSG::4326")]
)
def test_mapserver_reads_an_epsg_4326_bbox_latitude_first(
    mapserver_wfs, version: str, crs: str
) -> None:
    inside = [
        f
        for f in sample(FONTS)
        if 2.17 <= f["geometry"]["coordinates"][0] <= 2.19
        and 41.38 <= f["geometry"]["coordinates"][1] <= 41.40
    ]
    type_key = "TYPENAMES" if version == "2.0.0" else "TYPENAME"
    params = {type_key: "fonts", "BBOX": f"41.38,2.17,41.40,2.19,{crs}"}
    reply = wfs(mapserver_wfs.url, version, OUTPUTFORMAT=OUTPUT_FORMATS["geojson"], **params)
    assert len(reply.json()["features"]) == len(inside) > 100
