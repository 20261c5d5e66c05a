"""WFS GetFeature responses in GML as they were saved: the corpus's real responses land where
their towns are, with the MANIFEST's counts and names, in the encoding their bytes are in;
GDAL's GML of every flavour lands every feature; service documents (capabilities, schemas,
exception reports) are described, never ingested.

Axis order and positions are test_wfs_gml_axes.py's, generated geometries, counts and hostile
documents test_wfs_gml_geometries.py's. Expected places are the files' own envelopes or the
towns' extents; counts and names are the MANIFEST's or read from the files with lxml / OWSLib,
never citypipe's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from conftest import SAMPLES
from lxml import etree
from wfs_gml_docs import lonlat_bounds

from citypipe import cli
from citypipe.connectors.registry import detect
from citypipe.connectors.service_documents import ServiceDocumentConnector
from citypipe.connectors.wfs_gml import (
    WFSGMLConnector,
    read_feature_collection,
)
from citypipe.core.ingest import ingest
from citypipe.geo.errors import NotFeatureData

ADE = "wfs/agenziaentrate_mapserver_wfs200_GetFeature_CadastralParcel.gml"


LARIOJA = "wfs/larioja_mapserver_wfs110_GetFeature_Haro_municipios.gml"


def _envelope(path: Path) -> tuple[list[float], list[float]]:
    """The collection's gml:Envelope corners as the file writes them."""
    root = etree.parse(str(path)).getroot()
    env = root.find("{*}boundedBy/{*}Envelope")
    return (
        [float(v) for v in env.find("{*}lowerCorner").text.split()],
        [float(v) for v in env.find("{*}upperCorner").text.split()],
    )


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
    assert lonlat_bounds(table) == pytest.approx([lon0, lat0, lon1, lat1], abs=1e-6)
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
    assert lonlat_bounds(table) == pytest.approx([lon0, lat0, lon1, lat1], abs=1e-9)
    assert -3.0 < lon0 < lon1 < -2.7 and 42.5 < lat0 < lat1 < 42.7
    row = table.to_pylist()[0]
    assert (row["source_id"], row["name"]) == ("municipios.26071", "Haro")


def test_axis_order_flag_overrides_the_convention(corpus, lake, read_lake):
    path = corpus / LARIOJA
    ingest(path, "haro", lake, axis_order="xy")  # taken as lon 42.5, lat -2.9: off Africa
    (lat0, lon0), (lat1, lon1) = _envelope(path)
    assert lonlat_bounds(read_lake("haro")) == pytest.approx([lat0, lon0, lat1, lon1], abs=1e-9)


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
    west, south, east, north = lonlat_bounds(table.filter(town))
    assert 8.27 < west < east < 8.55 and 48.93 < south < north < 49.10  # Karlsruhe's extent
    west, south, east, north = lonlat_bounds(table)
    assert 7.2 < west < east < 8.8 and 48.6 < south < north < 49.3  # the Upper Rhine


def test_freiburg_geojson_in_utm_lands_in_freiburg(corpus, lake, read_lake):
    path = corpus / "wfs/freiburg_wfs110_GetFeature_parking_live_epsg25832.geojson"
    assert ingest(path, "fr", lake).features == 19
    west, south, east, north = lonlat_bounds(read_lake("fr"))
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
    x0, y0, x1, y1 = lonlat_bounds(read_lake("o"))
    assert west < x0 <= x1 < east and south < y0 <= y1 < north


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


def test_an_exception_report_as_a_harvested_page_says_what_the_server_said():
    page = (
        b'<?xml version="1.0"?><ServiceExceptionReport version="1.2.0">'
        b'<ServiceException code="InvalidParameterValue">msWFSGetFeature(): WFS server error. '
        b"Invalid typename (ms:strassen).</ServiceException></ServiceExceptionReport>"
    )
    with pytest.raises(NotFeatureData, match=r"InvalidParameterValue: msWFSGetFeature\(\)"):
        list(read_feature_collection(page, name="http://127.0.0.1/wfs?page=2"))


def test_inspect_names_the_feature_type(corpus):
    info = WFSGMLConnector(corpus / LARIOJA).inspect()
    assert (info.label, info.crs, info.layers) == (
        "WFS FeatureCollection GML 3.1.1",
        "EPSG:4326",
        ("ms:municipios",),
    )
    assert info.declared_count is None  # MapServer 1.1.0 wrote no numberOfFeatures here


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
