"""GeoPackage, Shapefile and FlatGeobuf through GDAL: Jena's car parks written by GDAL in each
land where the GeoJSON puts them, with their attributes; a GeoPackage of two layers reads the
one its entry names (Barcelona's districts in UTM 31N: each with the area the file states) and
is refused in one line where none is named."""

from __future__ import annotations

import json
import zipfile

import geopandas
import pyproj
import pytest
import shapely
from conftest import SAMPLES

from citypipe.cli import main
from citypipe.connectors.ogr import OGRConnector
from citypipe.connectors.registry import detect
from citypipe.core.ingest import ingest

JENA = SAMPLES / "jena_parking.geojson"
DISTRICTS = SAMPLES / "barcelona_districtes.geojson"


@pytest.mark.parametrize("driver", ["GPKG", "FlatGeobuf", "ESRI Shapefile"])
def test_jena_in_each_format_lands_where_the_geojson_puts_it(tmp_path, lake, read_lake, driver):
    features = json.loads(JENA.read_bytes())["features"]
    path = tmp_path / {"GPKG": "j.gpkg", "FlatGeobuf": "j.fgb", "ESRI Shapefile": "j.shp"}[driver]
    geopandas.read_file(JENA).to_file(path, driver=driver)
    assert detect(path) is OGRConnector
    report = ingest(path, "jena", lake)
    assert (report.records, report.features, report.rejects) == (103, 103, 0)
    assert report.format == driver
    table = read_lake("jena")  # each car park by its id (FlatGeobuf orders them spatially)
    by_id = {
        json.loads(p)["id"]: shapely.from_wkb(g)
        for p, g in zip(
            table.column("properties").to_pylist(),
            table.column("geometry").to_pylist(),
            strict=True,
        )
    }
    assert len(by_id) == 103
    for f in features:
        point = by_id[f["properties"]["id"]]
        assert abs(point.x - f["geometry"]["coordinates"][0]) < 1e-9
        assert abs(point.y - f["geometry"]["coordinates"][1]) < 1e-9


def test_the_named_layer_of_a_geopackage(tmp_path, lake, read_lake, capsys):
    stated = {
        f["properties"]["NOM"]: f["properties"]["AREA"]
        for f in json.loads(DISTRICTS.read_bytes())["features"]
    }
    both = tmp_path / "both.gpkg"
    geopandas.read_file(DISTRICTS).to_crs(25831).to_file(both, layer="districts")
    geopandas.read_file(JENA).to_file(both, layer="parking")
    code = main(["ingest", str(both), "--source", "x", "--lake", str(tmp_path / "other")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "2 layers (districts, parking)" in err[0]
    assert OGRConnector(both).inspect().layers == ("districts", "parking")  # inspect lists them
    report = ingest(both, "districts", lake, options={"layer": "districts"})
    assert report.features == 10 and report.declared_crs == "EPSG:25831"
    table = read_lake("districts")
    utm = geopandas.GeoSeries.from_wkb(
        table.column("geometry").to_pylist(), crs="OGC:CRS84"
    ).to_crs(25831)
    names = [json.loads(p)["NOM"] for p in table.column("properties").to_pylist()]
    assert all(abs(a / stated[n] - 1) < 1e-4 for n, a in zip(names, utm.area, strict=True))


def test_the_command_line_reads_the_layer_named_by_layer(tmp_path, capsys):
    """`citypipe ingest FILE --layer NAME`, as a catalog entry's options: {layer: NAME}; a
    format without layers refuses the option in one line."""
    both = tmp_path / "both.gpkg"
    geopandas.read_file(DISTRICTS).to_file(both, layer="districts")
    parking = geopandas.read_file(JENA)
    parking.to_file(both, layer="parking")
    lake = tmp_path / "lake"
    args = ["ingest", str(both), "--source", "p", "--lake", str(lake), "--layer", "parking"]
    assert main(args) == 0
    features = geopandas.read_parquet(next((lake / "features").rglob("*.parquet")))
    assert len(features) == len(parking)
    assert main(["ingest", str(JENA), "--source", "j", "--lake", str(lake), "--layer", "x"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "unknown option(s) layer for GeoJSON" in line


def test_a_zipped_shapefile_lands_as_the_shapefile_does(tmp_path, lake, read_lake):
    """A Shapefile as portals ship it: its parts in one zip, in a folder of it."""
    geopandas.read_file(JENA).to_file(tmp_path / "jena.shp")
    packed = tmp_path / "jena_shp.zip"
    with zipfile.ZipFile(packed, "w") as z:
        for part in tmp_path.glob("jena.*"):
            z.write(part, f"parking/{part.name}")
    plain = ingest(tmp_path / "jena.shp", "plain", lake)
    zipped = ingest(packed, "zipped", lake)
    assert plain.features == zipped.features == 103
    assert read_lake("plain").column("geometry").equals(read_lake("zipped").column("geometry"))


def _shapefile_without_cpg(tmp_path, names: list[str], codec: str):
    """A Shapefile of `names` written in `codec`, its .cpg removed: the DBF alone, declaring no
    encoding (its language driver id 0), as older tools and many portals ship them."""
    points = [shapely.Point(i, i) for i in range(len(names))]
    frame = geopandas.GeoDataFrame({"name": names}, geometry=points, crs="EPSG:4326")
    path = tmp_path / "names.shp"
    frame.to_file(path, encoding=codec)
    path.with_suffix(".cpg").unlink()
    assert path.with_suffix(".dbf").read_bytes()[29] == 0
    return path


@pytest.mark.parametrize(
    ("names", "codec"),
    [
        ([f["properties"]["NOM"] for f in json.loads(DISTRICTS.read_bytes())["features"]],
         "cp1252"),
        (["Náměstí Míru", "Žižkov", "Křižíkova", "Řeporyje", "Čakovice", "Ďáblice"], "cp1250"),
    ],
)  # fmt: skip
def test_a_shapefile_without_cpg_reads_in_the_code_page_of_its_bytes(
    tmp_path, lake, read_lake, names, codec
):
    """Barcelona's district names in cp1252, Prague's in cp1250, in a Shapefile that does not
    say its encoding: GDAL hands the bytes on as they are and the file was refused ("'utf-8'
    codec can't decode"); its names land as written."""
    assert not all(n.isascii() for n in names)
    path = _shapefile_without_cpg(tmp_path, names, codec)
    report = ingest(path, "names", lake)
    assert (report.features, report.rejects) == (len(names), 0)
    landed = [json.loads(p)["name"] for p in read_lake("names").column("properties").to_pylist()]
    assert sorted(landed) == sorted(names)


def test_the_encoding_option_names_a_shapefiles_encoding(tmp_path, lake, read_lake):
    """Two Riga streets in cp1257 read as well in a Western code page ("Brîvîbas iela"): the
    catalog's `encoding` says which."""
    names = ["Brīvības iela", "Vecrīga"]
    path = _shapefile_without_cpg(tmp_path, names, "cp1257")
    ingest(path, "riga", lake, options={"encoding": "cp1257"})
    landed = [json.loads(p)["name"] for p in read_lake("riga").column("properties").to_pylist()]
    assert sorted(landed) == sorted(names)


@pytest.mark.parametrize("codec", ["latin-1", "utf-8"])
def test_a_prj_in_latin1_esri_wkt_is_read(tmp_path, lake, read_lake, codec):
    """Jena's car parks in a Shapefile in Lambert 93 whose .prj, ESRI WKT, names the projection
    in French with a "ç" written in Latin-1 (as ArcGIS on a Western Windows writes it): pyogrio
    failed to decode it (exit 3); the car parks land where the GeoJSON puts them."""
    source = geopandas.read_file(JENA)
    path = tmp_path / "jena.shp"
    source.to_crs(2154).to_file(path)
    wkt = pyproj.CRS(2154).to_wkt(pyproj.enums.WktVersion.WKT1_ESRI)
    named = wkt.replace("RGF_1993_Lambert_93", "RGF93_Lambert_93_Conique_Conforme_Française")
    assert named != wkt
    path.with_suffix(".prj").write_bytes(named.encode(codec))
    report = ingest(path, "jena", lake)
    assert (report.features, report.rejects) == (len(source), 0)
    landed = geopandas.GeoSeries.from_wkb(read_lake("jena").column("geometry").to_pylist())
    assert sorted(landed.x.round(6)) == sorted(source.geometry.x.round(6))
    assert not list(tmp_path.glob("jena.*.prj"))  # nothing written beside the file
