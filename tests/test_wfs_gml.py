"""WFS GetFeature responses in GML: the saved real responses land where their towns are, with
the MANIFEST's counts and names; generated GML 2 / 3.1.1 / 3.2 responses cover the axis-order
conventions, every geometry kind (arcs included), properties, counts and hostile documents;
service documents (capabilities, schemas, exception reports) are described, never ingested.

Expected places are the files' own envelopes or the towns' extents; counts and names are the
MANIFEST's or read from the files with lxml / OWSLib, never citypipe's output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from citypipe import cli
from citypipe.connectors.gml_arcs import ARC_TOLERANCE
from citypipe.connectors.registry import detect
from citypipe.connectors.service_documents import ServiceDocumentConnector
from citypipe.connectors.wfs_gml import (
    WFSGMLConnector,
    collection_counts,
    read_feature_collection,
    read_response,
)
from citypipe.core.ingest import ingest
from citypipe.geo.errors import CitypipeError, DataError, NotFeatureData

ADE = "wfs/agenziaentrate_mapserver_wfs200_GetFeature_CadastralParcel.gml"
LARIOJA = "wfs/larioja_mapserver_wfs110_GetFeature_Haro_municipios.gml"
GML2, GML3 = "http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2"


def _lonlat_bounds(table) -> np.ndarray:
    geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    return shapely.total_bounds(geoms)


def _envelope(path: Path) -> tuple[list[float], list[float]]:
    """The collection's gml:Envelope corners as the file writes them."""
    root = etree.parse(str(path)).getroot()
    env = root.find("{*}boundedBy/{*}Envelope")
    return (
        [float(v) for v in env.find("{*}lowerCorner").text.split()],
        [float(v) for v in env.find("{*}upperCorner").text.split()],
    )


# -- the saved responses of the corpus ------------------------------------------------------------


def test_agenzia_entrate_parcel_lands_in_sardinia_lat_lon_first(corpus, lake, read_lake):
    """EPSG:6706 (RDN2008) is latitude first: the parcel's lon/lat bounds are its envelope's
    corners turned round, in Sardinia (about 9.13 E, 39.55 N)."""
    path = corpus / ADE
    report = ingest(path, "ade", lake)
    assert (report.records, report.features, report.declared_count) == (1, 1, 1)  # MANIFEST
    assert all(c.passed for c in report.checks)
    table = read_lake("ade")
    (lat0, lon0), (lat1, lon1) = _envelope(path)
    # the envelope is written to 6 decimals, the ring to 8
    assert _lonlat_bounds(table) == pytest.approx([lon0, lat0, lon1, lat1], abs=1e-6)
    row = table.to_pylist()[0]
    assert row["source_id"] == "CadastralParcel.IT.AGE.PLA.A000W000200.STRADA001"
    assert row["source_crs"] == "EPSG:6706"
    props = json.loads(row["properties"])
    assert props["INSPIREID_LOCALID"] == "IT.AGE.PLA.A000W000200.STRADA001"
    assert props["LABEL"] == "STRADA001" and props["ADMINISTRATIVEUNIT"] == "A000"


def test_la_rioja_short_epsg4326_in_wfs110_is_lat_lon(corpus, lake, read_lake):
    """MapServer's WFS 1.1.0 labels latitude-first coordinates "EPSG:4326": Haro lands in La
    Rioja (2.86 W, 42.57 N), not in the Indian Ocean."""
    path = corpus / LARIOJA
    report = ingest(path, "haro", lake)
    assert (report.records, report.features, report.rejects) == (1, 1, 0)
    table = read_lake("haro")
    (lat0, lon0), (lat1, lon1) = _envelope(path)
    assert _lonlat_bounds(table) == pytest.approx([lon0, lat0, lon1, lat1], abs=1e-9)
    assert -3.0 < lon0 < lon1 < -2.7 and 42.5 < lat0 < lat1 < 42.7
    row = table.to_pylist()[0]
    assert (row["source_id"], row["name"]) == ("municipios.26071", "Haro")


def test_axis_order_flag_overrides_the_convention(corpus, lake, read_lake):
    path = corpus / LARIOJA
    ingest(path, "haro", lake, axis_order="xy")  # taken as lon 42.5, lat -2.9: off Africa
    (lat0, lon0), (lat1, lon1) = _envelope(path)
    assert _lonlat_bounds(read_lake("haro")) == pytest.approx([lat0, lon0, lat1, lon1], abs=1e-9)


@pytest.mark.parametrize("bom", [True, False])
def test_a_bom_wins_over_the_declared_encoding(corpus, tmp_path, lake, read_lake, bom):
    """La Rioja's files are UTF-8 with a BOM yet declare ISO-8859-1; with an accented name the
    BOM must win. Without the BOM the declaration is the truth and is honoured."""
    raw = (corpus / LARIOJA).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b'encoding="ISO-8859-1"' in raw[:80]
    text = raw.decode("utf-8-sig").replace("<ms:NOMBRE>Haro<", "<ms:NOMBRE>Álava<")
    path = tmp_path / "alava.gml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8") if bom else text.encode("latin-1"))
    ingest(path, "alava", lake)
    assert read_lake("alava").column("name").to_pylist() == ["Álava"]


def test_utf8_without_its_bom_wins_over_a_declared_code_page(corpus, tmp_path, lake, read_lake):
    """La Rioja's answer as a tool that drops the BOM writes it: UTF-8 still, declaring
    ISO-8859-1. Read as declared, "Álava" became "Ã\x81lava"; its UTF-8 text wins."""
    text = (corpus / LARIOJA).read_bytes().decode("utf-8-sig")
    assert 'encoding="ISO-8859-1"' in text[:80]
    path = tmp_path / "alava.gml"
    path.write_bytes(text.replace("<ms:NOMBRE>Haro<", "<ms:NOMBRE>Álava<").encode("utf-8"))
    ingest(path, "alava", lake)
    assert read_lake("alava").column("name").to_pylist() == ["Álava"]


@pytest.mark.parametrize(("name", "count"), [(ADE, 1), (LARIOJA, 1)])
def test_counts_are_the_manifests(corpus, name, count):
    assert sum(len(b) for b in read_feature_collection(corpus / name)) == count
    assert WFSGMLConnector.sniff((corpus / name).read_bytes()[:65536]) > 0
    assert detect(corpus / name) is WFSGMLConnector


def test_karlsruhe_geojson_says_4326_urn_but_lands_in_karlsruhe(corpus, lake, read_lake):
    """GeoServer's GeoJSON declares urn:ogc:def:crs:EPSG::4326 and writes lon, lat: GeoJSON
    is lon/lat whatever its crs member says (RFC 7946), so all 693 land in Karlsruhe."""
    path = corpus / "wfs/karlsruhe_geoserver_wfs_GetFeature_disabled_parking.geojson"
    assert ingest(path, "ka", lake).features == 693
    table = read_lake("ka")
    town = [
        json.loads(p)["gemeinde"] == "Karlsruhe" for p in table.column("properties").to_pylist()
    ]
    assert sum(town) == 223  # the rest are in the region: Landau, Haguenau, Saverne ...
    west, south, east, north = _lonlat_bounds(table.filter(town))
    assert 8.27 < west < east < 8.55 and 48.93 < south < north < 49.10  # Karlsruhe's extent
    west, south, east, north = _lonlat_bounds(table)
    assert 7.2 < west < east < 8.8 and 48.6 < south < north < 49.3  # the Upper Rhine


def test_freiburg_geojson_in_utm_lands_in_freiburg(corpus, lake, read_lake):
    path = corpus / "wfs/freiburg_wfs110_GetFeature_parking_live_epsg25832.geojson"
    assert ingest(path, "fr", lake).features == 19
    west, south, east, north = _lonlat_bounds(read_lake("fr"))
    assert 7.70 < west < east < 7.95 and 47.95 < south < north < 48.05  # Freiburg's extent


NRW = (5.86, 50.32, 9.46, 52.53)  # Nordrhein-Westfalen
REGIONS = {
    "nrw_kataster_ldproxy_item_flurstueck.json": (1, NRW),
    "nrw_kataster_ldproxy_items_flurstueck.json": (10, NRW),
    "nrw_kataster_ldproxy_items_gebaeudebauwerk.json": (10, NRW),
    "nrw_kataster_ldproxy_items_verwaltungseinheit.json": (10, NRW),
    "pdok_gokoala_item_4030_geojson.json": (1, (4.73, 52.28, 5.08, 52.43)),  # Amsterdam
    "pdok_gokoala_item_4030_jsonfg.json": (1, (4.73, 52.28, 5.08, 52.43)),
    "vineyards_ldproxy_items_crs84.json": (3, (6.11, 48.97, 8.51, 50.94)),  # Rhineland-Palatinate
}
"""Every saved OGC API response with features: its MANIFEST count, and where the MANIFEST
says it is (NRW's cadastre, a BAG address on Amsterdam's Bickersgracht, RLP's vineyards)."""


@pytest.mark.parametrize("name", sorted(REGIONS))
def test_oapif_responses_land_in_their_regions(corpus, lake, read_lake, name):
    count, (west, south, east, north) = REGIONS[name]
    report = ingest(corpus / "oapif" / name, "o", lake)
    assert (report.features, report.rejects) == (count, 0)
    x0, y0, x1, y1 = _lonlat_bounds(read_lake("o"))
    assert west < x0 <= x1 < east and south < y0 <= y1 < north


# -- service documents ----------------------------------------------------------------------------


def test_koeln_capabilities_list_86_feature_types_with_umlauts():
    path = SAMPLES / "koeln_arcgis_wfs110_GetCapabilities.xml"
    info = ServiceDocumentConnector(path).inspect()
    root = etree.parse(str(path)).getroot()
    titles = [t.text for t in root.iter("{http://www.opengis.net/wfs}Title")]
    assert len(info.layer_info) == 86 == len(titles)  # the MANIFEST: 86 FeatureTypes
    by_name = {x.name: x for x in info.layer_info}
    sued = by_name["adressen_stadtteil:Altstadt_Süd"]
    assert sued.title == "Altstadt_Süd" and sued.crs == ("urn:ogc:def:crs:EPSG::25832",)
    assert "text/xml; subtype=gml/3.1.1" in sued.formats
    assert [x.title for x in info.layer_info] == titles


def test_cli_inspect_prints_feature_types_and_ingest_refuses(tmp_path, capsys):
    path = SAMPLES / "koeln_arcgis_wfs110_GetCapabilities.xml"
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "adressen_stadtteil:Bilderstöckchen: Bilderstöckchen; CRS urn:ogc:def:crs:EPSG::25832"
        in out
    )
    code = cli.main(["ingest", str(path), "--source", "k", "--lake", str(tmp_path / "lake")])
    err = capsys.readouterr().err
    assert code == 2 and "WFS GetCapabilities document" in err and "not feature data" in err
    assert len(err.strip().splitlines()) == 1


def test_describe_feature_type_lists_the_properties():
    path = SAMPLES / "koeln_arcgis_wfs200_DescribeFeatureType.xml"
    info = ServiceDocumentConnector(path).inspect()
    xsd = "{http://www.w3.org/2001/XMLSchema}"
    root = etree.parse(str(path)).getroot()
    names = [e.get("name") for e in root.iter(f"{xsd}element") if e.getparent() is not root]
    assert info.layers == ("Blumenberg",)
    described = info.details["properties of Blumenberg"]
    assert [p.split(" (")[0] for p in described.split(", ")] == names
    assert "Straße (string)" in described and "(PointPropertyType)" in described


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("cuzk_inspire_cp_wfs200_GetCapabilities.xml", 3),
        ("hsrs_gazetteer_wfs110_GetCapabilities.xml", 8),
    ],
)
def test_corpus_capabilities_counts(corpus, name, count):
    assert len(ServiceDocumentConnector(corpus / "wfs" / name).inspect().layer_info) == count


def test_an_exception_report_is_refused_with_its_text(tmp_path, capsys):
    path = tmp_path / "error.xml"
    path.write_text(
        '<?xml version="1.0"?><ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" '
        'version="2.0.0"><ows:Exception exceptionCode="InvalidParameterValue" locator="typeName">'
        "<ows:ExceptionText>Feature type strassen not found</ows:ExceptionText>"
        "</ows:Exception></ows:ExceptionReport>",
        encoding="utf-8",
    )
    code = cli.main(["ingest", str(path), "--source", "e", "--lake", str(tmp_path / "lake")])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err
    assert "InvalidParameterValue: Feature type strassen not found" in err
    assert not (tmp_path / "lake" / "features").exists()


# -- generated responses --------------------------------------------------------------------------


def _doc(members: str, version: str = "2.0.0", attrs: str = "") -> bytes:
    """A FeatureCollection of `members` as a WFS `version` server writes it."""
    if version == "2.0.0":
        ns = f'xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:gml="{GML3}"'
    else:
        ns = f'xmlns:wfs="http://www.opengis.net/wfs" xmlns:gml="{GML2}"'
        attrs += (
            ' xsi:schemaLocation="http://www.opengis.net/wfs '
            f'http://schemas.opengis.net/wfs/{version}/wfs.xsd"'
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection {ns} '
        'xmlns:app="http://example.org/app" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"{attrs}>{members}'
        "</wfs:FeatureCollection>"
    ).encode()


def _member(version: str, body: str, gid: str = "f.1", kind: str = "app:Thing") -> str:
    if version == "1.0.0":
        return f'<gml:featureMember><{kind} fid="{gid}">{body}</{kind}></gml:featureMember>'
    tag = "wfs:member" if version == "2.0.0" else "gml:featureMember"
    return f'<{tag}><{kind} gml:id="{gid}">{body}</{kind}></{tag}>'


def _point(srs: str, position: str, tag: str = "pos") -> str:
    """A geometry property holding a gml:Point."""
    return (
        f'<app:g><gml:Point srsName="{srs}"><gml:{tag}>{position}</gml:{tag}></gml:Point></app:g>'
    )


def _one(data: bytes, **kw):
    batches = list(read_feature_collection(data, **kw))
    assert len(batches) == 1
    return batches[0]


@pytest.mark.parametrize(
    ("version", "pos", "order"),
    [
        ("1.0.0", "<gml:coordinates>7.85,47.99</gml:coordinates>", "xy"),
        ("1.1.0", "<gml:pos>47.99 7.85</gml:pos>", "authority"),
        ("2.0.0", "<gml:pos>47.99 7.85</gml:pos>", "authority"),
    ],
)
def test_short_epsg4326_follows_each_wfs_versions_convention(
    version, pos, order, tmp_path, lake, read_lake
):
    """The same place (Freiburg, 7.85 E 47.99 N) as each version writes it under "EPSG:4326"."""
    body = f'<app:geom><gml:Point srsName="EPSG:4326">{pos}</gml:Point></app:geom>'
    data = _doc(_member(version, body), version)
    assert _one(data).axis_order == order
    path = tmp_path / "p.gml"
    path.write_bytes(data)
    ingest(path, "p", lake)
    assert _lonlat_bounds(read_lake("p"))[:2] == pytest.approx([7.85, 47.99], abs=1e-12)


def test_urn_is_lat_lon_and_gml2_url_is_lon_lat_in_any_version():
    urn = _point("urn:ogc:def:crs:EPSG::4326", "47.99,7.85", "coordinates")
    url = _point("http://www.opengis.net/gml/srs/epsg.xml#4326", "7.85 47.99")
    assert _one(_doc(_member("1.0.0", urn), "1.0.0")).axis_order == "authority"
    assert _one(_doc(_member("2.0.0", url))).axis_order == "xy"


def test_the_callers_wfs_version_decides_for_a_response_that_does_not_say():
    body = _point("EPSG:4326", "7.85,47.99", "coordinates")
    data = (
        f'<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs" xmlns:gml="{GML2}" '
        f'xmlns:app="http://example.org/app"><gml:featureMember><app:T fid="a">{body}'
        "</app:T></gml:featureMember></wfs:FeatureCollection>"
    ).encode()
    assert read_response(data).gml == "2" and _one(data).axis_order == "xy"
    assert _one(data, wfs_version="1.1.0").axis_order == "authority"


def test_gml2_geometries_ids_and_coordinate_separators():
    polygon = (
        '<app:g><gml:MultiPolygon srsName="EPSG:25832"><gml:polygonMember><gml:Polygon>'
        "<gml:outerBoundaryIs><gml:LinearRing><gml:coordinates>0,0 10,0 10,10 0,10 0,0"
        "</gml:coordinates></gml:LinearRing></gml:outerBoundaryIs><gml:innerBoundaryIs>"
        "<gml:LinearRing><gml:coordinates>2,2 4,2 4,4 2,2</gml:coordinates>"
        "</gml:LinearRing></gml:innerBoundaryIs></gml:Polygon></gml:polygonMember>"
        "</gml:MultiPolygon></app:g>"
    )
    lines = (
        '<app:g><gml:MultiLineString srsName="EPSG:25832"><gml:lineStringMember>'
        '<gml:LineString><gml:coordinates decimal="," cs=";" ts="|">1,5;2|3;4,5'
        "</gml:coordinates></gml:LineString></gml:lineStringMember></gml:MultiLineString>"
        "</app:g>"
    )
    members = _member("1.0.0", polygon, "a.1") + _member("1.0.0", lines, "a.2")
    batch = _one(_doc(members, "1.0.0"))
    assert list(batch.source_ids) == ["a.1", "a.2"]
    poly, lines = batch.geometries
    assert poly.geom_type == "MultiPolygon" and poly.area == 100 - 2
    assert lines.geom_type == "MultiLineString"
    assert shapely.get_coordinates(lines).tolist() == [[1.5, 2], [3, 4.5]]


def test_gml32_curves_surfaces_points_and_no_geometry():
    g = '<app:g srsName="EPSG:25832">{}</app:g>'
    bodies = {
        "curve": '<gml:Curve srsName="EPSG:25832"><gml:segments><gml:LineStringSegment>'
        "<gml:posList>0 0 1 0</gml:posList></gml:LineStringSegment><gml:LineStringSegment>"
        "<gml:posList>1 0 1 1</gml:posList></gml:LineStringSegment></gml:segments></gml:Curve>",
        "surface": '<gml:MultiSurface srsName="EPSG:25832"><gml:surfaceMember>'
        "<gml:CompositeSurface>"
        "<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>0 0 1 0 1 1 0 0"
        "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>"
        "<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>5 5 6 5 6 6 5 5"
        "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>"
        "</gml:CompositeSurface></gml:surfaceMember></gml:MultiSurface>",
        "points": '<gml:MultiPoint srsName="EPSG:25832"><gml:pointMember><gml:Point>'
        "<gml:pos>1 2</gml:pos></gml:Point></gml:pointMember><gml:pointMember><gml:Point>"
        "<gml:pos>3 4</gml:pos></gml:Point>"
        "</gml:pointMember></gml:MultiPoint>",
    }
    members = "".join(_member("2.0.0", g.format(b), k) for k, b in bodies.items())
    members += _member("2.0.0", "<app:label>nowhere</app:label>", "none")
    batches = list(read_feature_collection(_doc(members), crs="EPSG:25832"))
    geoms = {
        sid: geom for b in batches for sid, geom in zip(b.source_ids, b.geometries, strict=True)
    }
    assert geoms["curve"].wkt == "LINESTRING (0 0, 1 0, 1 1)"
    assert geoms["surface"].geom_type == "MultiPolygon" and len(geoms["surface"].geoms) == 2
    assert geoms["points"].wkt == "MULTIPOINT ((1 2), (3 4))"
    assert geoms["none"] is None


def test_a_feature_without_geometry_is_ingested(tmp_path, lake, read_lake):
    members = _member("2.0.0", "<app:label>nowhere</app:label>", "n.1") + _member(
        "2.0.0",
        '<app:g><gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>47.99 7.85</gml:pos>'
        "</gml:Point></app:g>",
        "n.2",
    )
    path = tmp_path / "n.gml"
    path.write_bytes(_doc(members, attrs=' numberMatched="2" numberReturned="2"'))
    report = ingest(path, "n", lake)
    assert (report.features, report.rejects, report.declared_count) == (2, 0, 2)
    rows = {r["source_id"]: r for r in read_lake("n").to_pylist()}
    assert rows["n.1"]["geometry"] is None and rows["n.2"]["geometry"] is not None


def test_arcs_are_linearised_within_the_tolerance():
    """A half disc of radius 100 m (an Arc closed by a LineStringSegment) and a Circle."""
    cx, cy, r = 500_000.0, 5_400_000.0, 100.0
    arc = f"{cx + r} {cy} {cx} {cy + r} {cx - r} {cy}"
    ring = (
        '<app:g><gml:Polygon srsName="EPSG:25832"><gml:exterior><gml:Ring><gml:curveMember>'
        f"<gml:Curve><gml:segments><gml:Arc><gml:posList>{arc}</gml:posList></gml:Arc>"
        f"<gml:LineStringSegment><gml:posList>{cx - r} {cy} {cx + r} {cy}</gml:posList>"
        "</gml:LineStringSegment></gml:segments></gml:Curve></gml:curveMember></gml:Ring>"
        "</gml:exterior></gml:Polygon></app:g>"
    )
    circle = (
        '<app:g><gml:Curve srsName="EPSG:25832"><gml:segments><gml:Circle><gml:posList>'
        f"{arc}</gml:posList></gml:Circle></gml:segments></gml:Curve></app:g>"
    )
    batch = _one(_doc(_member("2.0.0", ring, "half") + _member("2.0.0", circle, "full")))
    half, full = batch.geometries
    assert half.geom_type == "Polygon" and full.geom_type == "LineString" and full.is_closed
    for geom, area in (
        (half, math.pi * r * r / 2),
        (shapely.Polygon(full.coords), math.pi * r * r),
    ):
        xy = shapely.get_coordinates(geom)
        on_circle = np.hypot(xy[:, 0] - cx, xy[:, 1] - cy)
        assert np.all((np.abs(on_circle - r) < 1e-6) | (np.abs(xy[:, 1] - cy) < 1e-9))
        mid = (xy[1:] + xy[:-1]) / 2  # the chords' midpoints stray least from the arc at most
        deviation = r - np.hypot(mid[:, 0] - cx, mid[:, 1] - cy)
        assert deviation[np.abs(xy[1:, 1] - cy) > 1e-9].max() <= ARC_TOLERANCE * r * 1.0001
        assert geom.area == pytest.approx(area, rel=2 * ARC_TOLERANCE)
    assert shapely.get_coordinates(half)[0].tolist() == [cx + r, cy]


def test_nested_collections_additional_objects_and_properties():
    inner = (
        "<wfs:member><wfs:FeatureCollection>"
        + _member("2.0.0", "<app:n>2</app:n>", "in.1")
        + "</wfs:FeatureCollection></wfs:member>"
    )
    extra = (
        "<wfs:additionalObjects><wfs:SimpleFeatureCollection>"
        + _member("2.0.0", "<app:n>3</app:n>", "extra.1")
        + "</wfs:SimpleFeatureCollection></wfs:additionalObjects>"
    )
    first = (
        "<gml:name>Erster</gml:name><app:n>1</app:n><app:code>007</app:code>"
        '<app:height uom="m">12.5</app:height><app:tag>a</app:tag><app:tag>b</app:tag>'
        '<app:gone xsi:nil="true"/><app:ok>true</app:ok>'
        '<app:owner xlink:href="#o.1"/><app:address><app:Address>'
        "<app:street>Hauptstraße</app:street>"
        "<app:no>5</app:no></app:Address></app:address>"
    )
    batch = _one(_doc(_member("2.0.0", first, "top.1") + inner + extra))
    assert list(batch.source_ids) == ["top.1", "in.1", "extra.1"]
    props = list(batch.properties)
    assert [p["n"] for p in props] == [1, 2, 3]  # every value of `n` is an integer
    top = props[0]
    assert top["name"] == "Erster" and top["code"] == "007" and top["ok"] is True
    assert top["height"] == {"value": 12.5, "uom": "m"} and top["tag"] == ["a", "b"]
    assert "gone" not in top and top["owner"] == "#o.1"
    assert top["address"] == {"Address": {"street": "Hauptstraße", "no": "5"}}
    assert list(batch.feature_classes) == ["Thing"] * 3


def test_counts_declared_and_checked(tmp_path, lake):
    members = "".join(_member("2.0.0", f"<app:n>{i}</app:n>", f"c.{i}") for i in range(3))
    data = _doc(members, attrs=' numberMatched="10" numberReturned="4"')
    counts = collection_counts(data)
    assert (counts.matched, counts.returned) == (10, 4)
    assert sum(map(len, read_feature_collection(data, batch_size=2))) == 3
    assert [len(b) for b in read_feature_collection(data, batch_size=2)] == [2, 1]
    path = tmp_path / "short.gml"
    path.write_bytes(data)
    with pytest.raises(CitypipeError, match="matches_declared_count"):
        ingest(path, "short", lake)
    assert not lake.partition("features", "short").exists()
    older = _doc(
        members.replace("wfs:member", "gml:featureMember"), "1.1.0", ' numberOfFeatures="3"'
    )
    assert collection_counts(older).returned == 3


def test_a_hits_response_is_not_feature_data(tmp_path, lake):
    path = tmp_path / "hits.gml"
    path.write_bytes(_doc("", attrs=' numberMatched="693" numberReturned="0"'))
    with pytest.raises(NotFeatureData, match="hits response.*693"):
        ingest(path, "hits", lake)


def test_a_record_with_a_broken_geometry_is_rejected_alone(tmp_path, lake, read_lake):
    good = _point("EPSG:25832", "500000 5400000")
    bad = _point("EPSG:25832", "500000 north")
    path = tmp_path / "b.gml"
    path.write_bytes(_doc(_member("2.0.0", good, "g") + _member("2.0.0", bad, "b")))
    report = ingest(path, "b", lake)
    assert (report.features, report.rejects) == (1, 1)
    rejects = read_lake("b", "rejects").to_pylist()
    assert "not numbers" in rejects[0]["reason"] and 'gml:id="b"' in rejects[0]["record"]


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ('<gml:Point srsName="EPSG:25832"><gml:pos> </gml:pos></gml:Point>', "without positions"),
        ('<gml:Point srsName="EPSG:25832"><gml:pos srsDimension="2">1 2 3</gml:pos></gml:Point>',
         "not a multiple"),
        ('<gml:Point srsName="EPSG:25832"><gml:pos>1 2 3 4</gml:pos></gml:Point>', "2 positions"),
        ('<gml:Point srsName="EPSG:25832"><gml:pos>1 nan</gml:pos></gml:Point>', "not finite"),
        ('<gml:LineString srsName="EPSG:25832"><gml:posList>1 2</gml:posList></gml:LineString>',
         "with 1 position"),
        (('<gml:LineString srsName="EPSG:25832"><gml:posList>1 2 x 4</gml:posList>'
          "</gml:LineString>"), "not numbers"),
        ('<gml:Point srsName="EPSG:25832"><gml:coord><gml:X>1</gml:X></gml:coord></gml:Point>',
         "a coord without X and Y"),
        ('<gml:Point srsName="EPSG:25832"><gml:Pos>1 2</gml:Pos></gml:Point>',
         "without posList, pos, coordinates or coord"),
    ],
)  # fmt: skip
def test_points_and_lines_read_per_batch_reject_what_is_not_positions(geometry, reason):
    """A batch's Points and LineStrings are built together: a bad one is its record's error
    alone, and the good ones around it keep their positions."""
    good = _point("EPSG:25832", "500000 5400000")
    line = (
        '<gml:LineString srsName="EPSG:25832"><gml:posList>0 0 3 4</gml:posList></gml:LineString>'
    )
    members = (
        _member("2.0.0", good, "a")
        + _member("2.0.0", f"<app:g>{geometry}</app:g>", "bad")
        + _member("2.0.0", f"<app:g>{line}</app:g>", "c")
    )
    batch = _one(_doc(members))
    assert list(batch.source_ids) == ["a", "bad", "c"]
    assert batch.errors[0] is None and batch.errors[2] is None
    assert reason in batch.errors[1] and batch.geometries[1] is None
    assert batch.geometries[0].wkt == "POINT (500000 5400000)"
    assert batch.geometries[2].wkt == "LINESTRING (0 0, 3 4)"


def test_a_dtd_is_refused(tmp_path, lake):
    data = _doc(_member("2.0.0", "<app:n>&x;</app:n>")).replace(
        b"\n<wfs:", b'\n<!DOCTYPE x [<!ENTITY x "boom">]>\n<wfs:', 1
    )
    path = tmp_path / "dtd.gml"
    path.write_bytes(data)
    with pytest.raises(DataError, match="DTD"):
        ingest(path, "dtd", lake)


# -- property tests -------------------------------------------------------------------------------

_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
lon = st.floats(-179.9, 179.9, allow_nan=False)
lat = st.floats(-89.9, 89.9, allow_nan=False)


@_SETTINGS
@given(
    points=st.lists(st.tuples(lon, lat), min_size=1, max_size=8),
    version=st.sampled_from(["1.0.0", "1.1.0", "2.0.0"]),
)
def test_points_in_every_convention_read_back_as_written(points, version):
    """Each version's writing of EPSG:4326 (x/y in 1.0, lat/lon in 1.1 and 2.0): reading it
    and applying the batch's axis order gives back the longitude and latitude written."""
    members = ""
    for i, (x, y) in enumerate(points):
        pos = f"{x!r},{y!r}" if version == "1.0.0" else f"{y!r} {x!r}"
        tag = "coordinates" if version == "1.0.0" else "pos"
        members += _member(version, _point("EPSG:4326", pos, tag), f"p.{i}")
    batch = _one(_doc(members, version))
    xy = shapely.get_coordinates(np.asarray(batch.geometries, dtype=object))
    if batch.axis_order == "authority":
        xy = xy[:, ::-1]
    assert xy.tolist() == [list(p) for p in points]


@_SETTINGS
@given(
    values=st.lists(
        st.one_of(st.integers(-(2**62), 2**62), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=6,
    )
)
def test_numbers_are_typed_per_property(values):
    members = "".join(
        _member("2.0.0", f"<app:v>{v!r}</app:v>", f"v.{i}") for i, v in enumerate(values)
    )
    got = [p["v"] for p in _one(_doc(members)).properties]
    assert got == pytest.approx(
        [float(v) for v in values] if any(isinstance(v, float) for v in values) else values
    )


@_SETTINGS
@given(
    cx=st.floats(-1e6, 1e6),
    cy=st.floats(-1e6, 1e6),
    r=st.floats(0.01, 1e4),
    angles=st.lists(st.floats(0, 2 * math.pi), min_size=3, max_size=3, unique=True),
)
def test_an_arc_passes_through_its_three_positions(cx, cy, r, angles):
    a, b, c = sorted(angles)
    if min(b - a, c - b) < 1e-3:
        return  # positions too close to one another to define a circle well
    pts = [(cx + r * math.cos(t), cy + r * math.sin(t)) for t in (a, b, c)]
    pos = " ".join(f"{x!r} {y!r}" for x, y in pts)
    body = (
        '<app:g><gml:Curve srsName="EPSG:25832"><gml:segments><gml:Arc><gml:posList>'
        f"{pos}</gml:posList></gml:Arc></gml:segments></gml:Curve></app:g>"
    )
    line = _one(_doc(_member("2.0.0", body))).geometries[0]
    xy = shapely.get_coordinates(line)
    assert xy[0].tolist() == list(pts[0]) and xy[-1].tolist() == list(pts[2])
    assert shapely.distance(line, shapely.Point(pts[1])) <= 2 * ARC_TOLERANCE * r + 1e-6
    assert np.abs(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) - r).max() <= 1e-6 * max(
        r, abs(cx), abs(cy), 1
    )


def test_an_exception_report_as_a_harvested_page_says_what_the_server_said():
    page = (
        b'<?xml version="1.0"?><ServiceExceptionReport version="1.2.0">'
        b'<ServiceException code="InvalidParameterValue">msWFSGetFeature(): WFS server error. '
        b"Invalid typename (ms:strassen).</ServiceException></ServiceExceptionReport>"
    )
    with pytest.raises(NotFeatureData, match=r"InvalidParameterValue: msWFSGetFeature\(\)"):
        list(read_feature_collection(page, name="http://127.0.0.1/wfs?page=2"))


def test_feature_members_and_the_first_of_several_geometries():
    """GML 3.1.1 gml:featureMembers hold several features; of two geometry properties the
    first is the feature's geometry and the second a property, as WKT in OGC:CRS84."""
    line = (
        '<app:route><gml:LineString srsName="EPSG:25832"><gml:posList>0 0 5 5</gml:posList>'
        "</gml:LineString></app:route>"
    )
    first = f'<app:T gml:id="m.1">{_point("EPSG:25832", "1 2")}{line}<app:n>1</app:n></app:T>'
    second = '<app:T gml:id="m.2"><app:n>2</app:n></app:T>'
    data = _doc(f"<gml:featureMembers>{first}{second}</gml:featureMembers>", "1.1.0")
    with_crs, without = read_feature_collection(data)  # the second names no CRS
    assert (with_crs.crs, without.crs) == ("EPSG:25832", None)
    assert list(with_crs.source_ids) + list(without.source_ids) == ["m.1", "m.2"]
    assert with_crs.geometries[0].wkt == "POINT (1 2)" and without.geometries[0] is None
    assert list(without.properties) == [{"n": 2}]
    route = shapely.from_wkt(with_crs.properties[0].pop("route"))
    assert with_crs.properties[0] == {"n": 1}
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    expected = np.column_stack(to_lonlat.transform([0, 5], [0, 5]))
    assert np.allclose(shapely.get_coordinates(route), expected, rtol=0, atol=1e-12)


def test_an_arc_string_in_a_multi_curve_is_one_line():
    arcs = "0 0 1 1 2 0 3 -1 4 0"  # two half circles of radius 1, one up, one down
    body = (
        '<app:g><gml:MultiCurve srsName="EPSG:25832"><gml:curveMember><gml:Curve><gml:segments>'
        f"<gml:ArcString><gml:posList>{arcs}</gml:posList></gml:ArcString></gml:segments>"
        "</gml:Curve></gml:curveMember></gml:MultiCurve></app:g>"
    )
    (line,) = _one(_doc(_member("2.0.0", body))).geometries[0].geoms
    assert line.length == pytest.approx(2 * math.pi, rel=ARC_TOLERANCE)
    assert shapely.get_coordinates(line)[[0, -1]].tolist() == [[0, 0], [4, 0]]
    assert line.distance(shapely.Point(1, 1)) < 1e-9 and line.distance(shapely.Point(3, -1)) < 1e-9


def test_a_3d_crs_without_srs_dimension_reads_three_ordinates():
    """EPSG:4979 positions have three ordinates (pyproj says so) where no srsDimension does."""
    body = (
        '<app:g><gml:LineString srsName="urn:ogc:def:crs:EPSG::4979"><gml:posList>'
        "47.99 7.85 280 48.00 7.86 290</gml:posList></gml:LineString></app:g>"
        '<app:parcel><app:Parcel gml:id="p.9"><app:no>9</app:no><app:shape>'
        '<gml:Point srsName="EPSG:25832"><gml:pos>1 2</gml:pos></gml:Point></app:shape>'
        "</app:Parcel></app:parcel>"
    )
    batch = _one(_doc(_member("2.0.0", body)))
    assert shapely.get_coordinates(batch.geometries[0], include_z=True).tolist() == [
        [47.99, 7.85, 280],
        [48.00, 7.86, 290],
    ]
    assert batch.properties[0] == {"parcel": {"Parcel": {"no": "9"}}}  # nested: as written


_GEOMETRIES = [
    '<gml:Point srsName="{srs}"><gml:pos>{a}</gml:pos></gml:Point>',
    '<gml:LineString srsName="{srs}"><gml:posList>{a} {b}</gml:posList></gml:LineString>',
    (
        '<gml:Polygon srsName="{srs}"><gml:exterior><gml:LinearRing><gml:posList>{a} {b} {a}'
        "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
    ),
    (
        '<gml:Curve srsName="{srs}"><gml:segments><gml:Arc><gml:posList>{a} {b}</gml:posList>'
        "</gml:Arc></gml:segments></gml:Curve>"
    ),
]
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(
    lambda t: t.replace("&", "&amp;").replace("<", "&lt;")
)
_COORDS = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5).map(
        lambda v: " ".join(map(repr, v))
    ),
    _TEXT,
)


@_SETTINGS
@given(
    features=st.lists(
        st.tuples(st.sampled_from(_GEOMETRIES), _COORDS, _COORDS, _TEXT), min_size=1, max_size=5
    ),
    srs=st.sampled_from(["EPSG:25832", "urn:ogc:def:crs:EPSG::4326", "EPSG:999999", "#local"]),
)
def test_any_geometry_text_is_a_record_or_a_reject(features, srs):
    """Whatever the coordinates and property texts hold, every feature is one record: read, or
    carrying its reason; the reader never fails otherwise."""
    members = "".join(
        _member("2.0.0", f"<app:g>{g.format(srs=srs, a=a, b=b)}</app:g><app:t>{t}</app:t>", f"r{i}")
        for i, (g, a, b, t) in enumerate(features)
    )
    batches = list(read_feature_collection(_doc(members)))
    assert sum(map(len, batches)) == len(features)
    for batch in batches:
        for geometry, error in zip(batch.geometries, batch.errors or [], strict=True):
            assert (geometry is None) == (error is not None)
            if geometry is not None:
                assert np.isfinite(shapely.get_coordinates(geometry)).all()


@pytest.mark.parametrize(
    ("srs", "code", "citygml_or_wfs10", "wfs11_or_20"),
    [
        ("EPSG:4326", 4326, "xy", "authority"),
        ("EPSG:6706", 6706, "xy", "authority"),
        ("urn:ogc:def:crs:EPSG::4326", 4326, "authority", "authority"),
        ("urn:x-ogc:def:crs:EPSG:4326", 4326, "authority", "authority"),
        ("http://www.opengis.net/def/crs/EPSG/0/6706", 6706, "authority", "authority"),
        ("http://www.opengis.net/gml/srs/epsg.xml#4326", 4326, "xy", "xy"),
    ],
)
def test_the_one_axis_rule(srs, code, citygml_or_wfs10, wfs11_or_20):
    """crs.axis_order, the rule CityGML and WFS responses share; every spelling names the
    EPSG code pyproj reads from it, whichever order applies."""
    from citypipe.geo import crs

    assert crs.axis_order(srs) == citygml_or_wfs10
    assert crs.axis_order(srs, "authority") == wfs11_or_20
    assert crs.resolve(srs).to_epsg() == code


def test_inspect_names_the_feature_type(corpus):
    info = WFSGMLConnector(corpus / LARIOJA).inspect()
    assert (info.label, info.crs, info.layers) == (
        "WFS FeatureCollection GML 3.1.1",
        "EPSG:4326",
        ("ms:municipios",),
    )
    assert info.declared_count is None  # MapServer 1.1.0 wrote no numberOfFeatures here


def test_a_text_node_over_10_mb_needs_huge_tree(tmp_path, lake):
    """libxml2 refuses text nodes over 10 MB unless asked (the CityGML reader's option too)."""
    n = 1_000_000  # positions: about 13 MB of posList text
    ring = " ".join(f"{i % 997}.25 {i // 997}.5" for i in range(n)) + " 0.25 0.5"
    body = (
        '<app:g><gml:LineString srsName="EPSG:25832"><gml:posList>'
        f"{ring}</gml:posList></gml:LineString></app:g>"
    )
    path = tmp_path / "huge.gml"
    path.write_bytes(_doc(_member("2.0.0", body)))
    with pytest.raises(DataError, match="huge_tree"):
        ingest(path, "h", lake, validate=False)
    report = ingest(path, "h", lake, options={"huge_tree": True}, validate=False)
    assert report.features == 1


def test_a_ring_of_unicode_blanks_is_a_reject_not_a_crash():
    """A posList of no-break spaces is blank to Python but not to ASCII splitting: the ring
    has no numbers, its feature carries a reason (hypothesis found this)."""
    ring = '<gml:Polygon srsName="EPSG:25832"><gml:exterior><gml:LinearRing><gml:posList>'
    ring += "\xa0  \xa0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
    point = '<gml:Point srsName="EPSG:25832"><gml:pos>1 2</gml:pos></gml:Point>'
    members = _member("2.0.0", f"<app:g>{point}</app:g>", "p") + _member(
        "2.0.0", f"<app:g>{ring}</app:g>", "r"
    )
    (batch,) = list(read_feature_collection(_doc(members)))
    assert batch.geometries[0] is not None and batch.geometries[1] is None
    assert batch.errors is not None and batch.errors[1]


@pytest.mark.parametrize("gml_format", ["GML2", "GML3", "GML3Deegree", "GML3.2"])
def test_gml_written_by_gdal_lands_every_feature(sample, lake, read_lake, gml_format):
    """Jena's parking as GDAL's GML driver writes it (ogr2ogr -f GML -dsco FORMAT=...): its
    GML 3 and 3.2 collections hold ogr:featureMember, which were read as no member at all (0
    records, exit 0). Every feature lands, at the source's own coordinates."""
    import pyogrio

    path = sample("jena_parking.geojson")
    source = json.loads(path.read_text(encoding="utf-8"))["features"]
    gml = path.with_suffix(".gml")
    pyogrio.write_dataframe(
        pyogrio.read_dataframe(path), gml, driver="GML", dataset_options={"FORMAT": gml_format}
    )
    report = ingest(gml, "jena_gml", lake)
    assert (report.records, report.features, report.rejects) == (len(source), len(source), 0)
    landed = shapely.from_wkb(read_lake("jena_gml").column("geometry").to_numpy(False))
    expected = shapely.points([f["geometry"]["coordinates"][:2] for f in source])
    assert sorted(shapely.get_coordinates(landed).round(7).tolist()) == sorted(
        shapely.get_coordinates(expected).round(7).tolist()
    )


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_xml_in_utf16_is_read_as_xml(corpus, sample, tmp_path, lake, read_lake, codec):
    """XML in UTF-16 with its BOM (the encoding every XML parser must read besides UTF-8) was
    refused as "UTF-16 text ... JSON must be UTF-8": a Windows tool's export of La Rioja's
    WFS answer (its name made "Álava") and of SIG3D's CityGML building land as the originals."""
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[codec]
    raw = (corpus / LARIOJA).read_bytes().decode("utf-8-sig")
    raw = raw.replace('encoding="ISO-8859-1"', 'encoding="UTF-16"')
    wfs = tmp_path / "alava.gml"
    wfs.write_bytes(bom + raw.replace("<ms:NOMBRE>Haro<", "<ms:NOMBRE>Álava<").encode(codec))
    ingest(wfs, "alava", lake)
    assert read_lake("alava").column("name").to_pylist() == ["Álava"]
    original = sample("citygml/sig3d_v2_Building_LOD2-EPSG25832.gml")
    text = original.read_text(encoding="utf-8").replace('encoding="utf-8"', 'encoding="UTF-16"')
    wide = tmp_path / "building16.gml"
    wide.write_bytes(bom + text.encode(codec))
    ingest(original, "building", lake)
    ingest(wide, "building16", lake)

    def rows(source: str) -> list[tuple]:
        table = read_lake(source)
        ids = [i.split("/", 1)[1] for i in table.column("feature_id").to_pylist()]
        columns = (table.column(c).to_pylist() for c in ("geometry", "properties"))
        return sorted(zip(ids, *columns, strict=True))

    assert len(rows("building16")) == 3 and rows("building16") == rows("building")


def test_features_in_members_no_reader_knows_are_refused_not_lost(sample, lake):
    """Jena's parking as GDAL writes GML 3.2, its members renamed as a producer of its own might
    name them: the 103 features landed as 0 records with exit 0, the source replaced by nothing.
    Refused now with one line naming the element; a collection with no member (an empty
    answer) still lands as 0 records."""
    import pyogrio

    path = sample("jena_parking.geojson")
    gml = path.with_suffix(".gml")
    pyogrio.write_dataframe(
        pyogrio.read_dataframe(path), gml, driver="GML", dataset_options={"FORMAT": "GML3.2"}
    )
    text = gml.read_text(encoding="utf-8")
    assert text.count("<ogr:featureMember>") == len(json.loads(path.read_text())["features"])
    gml.write_text(text.replace("ogr:featureMember>", "ogr:record>"), encoding="utf-8")
    with pytest.raises(DataError, match="no feature member citypipe knows.*record"):
        ingest(gml, "jena_gml", lake)
    assert not lake.holds("features")
    head, _, _ = text.partition("<ogr:featureMember>")
    gml.write_text(head + "</ogr:FeatureCollection>\n", encoding="utf-8")
    assert ingest(gml, "jena_gml", lake).records == 0


# -- GML 2 positions: gml:coord and gml:coordinates' tuples ---------------------------------------


def _coord(position: tuple[float, ...]) -> str:
    return "<gml:coord>" + "".join(
        f"<gml:{axis}>{v!r}</gml:{axis}>" for axis, v in zip("XYZ", position, strict=False)
    ) + "</gml:coord>"  # fmt: skip


def _gml2_geometries(positions: list[tuple[float, ...]], writer) -> list[str]:
    """A Point, a LineString and a Polygon (a triangle's ring) of the positions, in GML 2."""
    ring = [positions[0], positions[1], positions[2], positions[0]]
    return [
        f"<gml:Point>{writer(positions[:1])}</gml:Point>",
        f"<gml:LineString>{writer(positions)}</gml:LineString>",
        (
            "<gml:Polygon><gml:outerBoundaryIs><gml:LinearRing>"
            f"{writer(ring)}</gml:LinearRing></gml:outerBoundaryIs></gml:Polygon>"
        ),
    ]


_SEPARATORS = st.sampled_from([(",", " ", "."), (";", "|", ","), (" ", ";", "."), (",", "\n", ".")])
_ORDINATE = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 6))


@_SETTINGS
@given(
    positions=st.integers(2, 3).flatmap(
        lambda dim: st.lists(
            st.tuples(*[_ORDINATE] * dim), min_size=3, max_size=6, unique_by=lambda p: p[:2]
        )
    ),
    separators=_SEPARATORS,
)
def test_gml2_coord_and_coordinates_read_back_as_written(positions, separators):
    """WFS 1.0 / GML 2 positions as gml:coord (X, Y, Z elements) and as gml:coordinates with
    any cs / ts / decimal: the same geometries, in the dimension of the tuples, whatever the
    CRS's (3D tuples under the 2D EPSG:25832 were read as 2D positions, or refused; gml:coord
    was refused as "without posList, pos or coordinates")."""
    cs, ts, decimal = separators

    def coordinates(ps: list[tuple[float, ...]]) -> str:
        tuples = ts.join(cs.join(repr(v).replace(".", decimal) for v in p) for p in ps)
        return (
            f'<gml:coordinates cs="{cs}" ts="{ts}" decimal="{decimal}">{tuples}</gml:coordinates>'
        )

    members = ""
    for writer in (lambda ps: "".join(map(_coord, ps)), coordinates):
        for geometry in _gml2_geometries(positions, writer):
            geometry = geometry.replace(">", ' srsName="EPSG:25832">', 1)
            members += _member("1.0.0", f"<app:g>{geometry}</app:g>", f"f.{len(members)}")
    batch = _one(_doc(members, "1.0.0"))
    assert not any(batch.errors)
    dim = len(positions[0])
    ring = [positions[0], positions[1], positions[2], positions[0]]
    expected = [positions[:1], positions, ring] * 2
    for geometry, want in zip(batch.geometries, expected, strict=True):
        got = shapely.get_coordinates(geometry, include_z=dim == 3)
        assert got.tolist() == [list(p) for p in want]


def test_a_3d_point_pos_without_srs_dimension_is_3d_as_gdal_writes_it(tmp_path, lake, read_lake):
    """GDAL's GML 3 writes a 3D point as a gml:pos of three values under a 2D CRS, without
    srsDimension (ogr2ogr -f GML -dsco FORMAT=GML3), and reads it back so: it was refused as
    "3 coordinate values, not a multiple of srsDimension 2"."""
    body = _point("urn:ogc:def:crs:EPSG::4326", "47.99 7.85 280")
    path = tmp_path / "gdal.gml"
    path.write_bytes(_doc(_member("2.0.0", body)))
    report = ingest(path, "gdal", lake)
    assert (report.features, report.rejects) == (1, 0)
    point = shapely.from_wkb(read_lake("gdal").column("geometry_3d")[0].as_py())
    assert shapely.get_coordinates(point, include_z=True).tolist() == [[7.85, 47.99, 280]]


@pytest.mark.parametrize("extra", ["tuple", "additional"])
def test_features_numberreturned_does_not_count_one_each_are_not_held_to_it(
    extra, tmp_path, lake, read_lake
):
    """numberReturned counts a join's tuple once for its features and wfs:additionalObjects not
    at all (ISO 19142): a response counting so (2 members, 3 features) was refused as
    matches_declared_count failed; it lands, every feature read."""
    a, b, c = (_member("2.0.0", f"<app:n>{i}</app:n>", f"f.{i}") for i in range(3))
    if extra == "tuple":
        members = a + f"<wfs:member><wfs:Tuple>{b}{c}</wfs:Tuple></wfs:member>"
    else:
        members = (
            a
            + b
            + (
                "<wfs:additionalObjects><wfs:SimpleFeatureCollection>"
                f"{c}</wfs:SimpleFeatureCollection></wfs:additionalObjects>"
            )
        )
    path = tmp_path / "counted.gml"
    path.write_bytes(_doc(members, attrs=' numberMatched="2" numberReturned="2"'))
    report = ingest(path, "counted", lake)
    assert (report.records, report.features) == (3, 3)
    assert sorted(read_lake("counted").column("source_id").to_pylist()) == ["f.0", "f.1", "f.2"]


@pytest.mark.parametrize(
    ("version", "box"),
    [
        ("1.0.0", ('<gml:Box srsName="EPSG:4326"><gml:coordinates>7.8,47.9 7.9,48.1'
                  "</gml:coordinates></gml:Box>")),
        ("1.0.0", ('<gml:Box srsName="EPSG:4326"><gml:coord><gml:X>7.8</gml:X><gml:Y>47.9</gml:Y>'
                  "</gml:coord><gml:coord><gml:X>7.9</gml:X><gml:Y>48.1</gml:Y></gml:coord>"
                  "</gml:Box>")),
        ("2.0.0", ('<gml:Envelope srsName="urn:ogc:def:crs:EPSG::4326"><gml:lowerCorner>47.9 7.8'
                  "</gml:lowerCorner><gml:upperCorner>48.1 7.9</gml:upperCorner></gml:Envelope>")),
    ],
)  # fmt: skip
def test_a_feature_whose_only_geometry_is_a_box_lands_as_its_polygon(
    version, box, tmp_path, lake, read_lake
):
    """A feature whose one geometry property holds a gml:Box (GML 2) or gml:Envelope: it landed
    without geometry, the box a property; GDAL reads it as the polygon of its corners, and so
    does citypipe. Beside another geometry it stays a property."""
    point = _point("urn:ogc:def:crs:EPSG::4326", "48.0,7.85", "coordinates")
    members = _member(version, f"<app:extent>{box}</app:extent>", "boxed") + _member(
        version, f"<app:extent>{box}</app:extent>{point}", "both"
    )
    path = tmp_path / "box.gml"
    path.write_bytes(_doc(members, version))
    report = ingest(path, "box", lake)
    assert (report.features, report.rejects) == (2, 0)
    table = read_lake("box")
    rows = dict(zip(table.column("source_id").to_pylist(), table.to_pylist(), strict=True))
    polygon = shapely.from_wkb(rows["boxed"]["geometry"])
    assert polygon.equals(shapely.box(7.8, 47.9, 7.9, 48.1))
    assert shapely.from_wkb(rows["both"]["geometry"]).equals(shapely.Point(7.85, 48.0))
    assert "extent" in json.loads(rows["both"]["properties"])


def test_an_arc_with_a_coordinate_beyond_any_crs_is_rejected_with_the_reason():
    """An Arc through 5.6e102: its centre is computed from squares, which overflow (the reader
    failed with "cannot convert float NaN to integer", or made a line through inf and NaN;
    hypothesis found it): its record is rejected naming the coordinate."""
    arc = (
        '<gml:Curve srsName="EPSG:25832"><gml:segments><gml:Arc><gml:posList>'
        "5.6e102 0 2.8e90 0 0 0</gml:posList></gml:Arc></gml:segments></gml:Curve>"
    )
    good = _point("EPSG:25832", "500000 5400000")
    batch = _one(_doc(_member("2.0.0", f"<app:g>{arc}</app:g>", "arc") + _member("2.0.0", good)))
    assert batch.geometries[0] is None and batch.geometries[1] is not None
    assert "a coordinate beyond ±1e10" in batch.errors[0]
