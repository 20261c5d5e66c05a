"""Every tabular file of the public corpus (where ../shared/data exists): counts and clean errors.

Expected counts are read from the files with other tools (json, csv, pyarrow) and, for the
files the MANIFEST describes with a count, from the MANIFEST's own words.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import CORPUS, data_files

from citypipe.cli import main
from citypipe.core.ingest import ingest
from citypipe.geo.errors import UnknownCRS

# counts as the MANIFEST states them
MANIFEST_COUNTS = {
    "barcelona_barris.geojson": 73,
    "barcelona_bicing_stations.geojson": 465,
    "barcelona_districtes.geojson": 10,
    "barcelona_drinking_fountains.geojson": 1988,
    "esslingen_parking_epsg25832.geojson": 250,
    "heidelberg_disabled_parking.geojson": 214,
    "jena_parking.geojson": 103,
    "bielefeld_parking_wkt.csv": 853,
    "bietigheim-bissingen_parking_realtime_latin1.csv": 14,
    "neckarsulm_parking_ewkb.csv": 41,
    "reutlingen_bike_parking_utm32_wkt.csv": 334,
    "freiburg_wfs110_GetFeature_parking_live_epsg25832.geojson": 19,
    "karlsruhe_geoserver_wfs_GetFeature_disabled_parking.geojson": 693,
    "nrw_kataster_ldproxy_items_flurstueck.json": 10,
    "nrw_kataster_ldproxy_items_gebaeudebauwerk.json": 10,
    "nrw_kataster_ldproxy_items_verwaltungseinheit.json": 10,
    "vineyards_ldproxy_items_crs84.json": 3,
    "example_v1.0.0.parquet": 5,
    "example_v1.1.0.parquet": 5,
}
UNDECLARED = {
    "reutlingen_bike_parking_utm32_wkt.csv": "EPSG:25832",  # the MANIFEST: UTM32, not stated
    "bielefeld_parking_wkt.csv": "OGC:CRS84",  # WKT points about 8.5 E, 52.0 N: Bielefeld
}
"""Files whose coordinates are in a CRS neither they nor their format name: refused whole."""


def _files(*patterns: str) -> list[Path]:
    if not (CORPUS / "MANIFEST.md").exists():
        return []
    return sorted(p for pattern in patterns for p in CORPUS.glob(pattern))


def _is_features(path: Path) -> bool:
    doc = json.loads(path.read_bytes())
    return isinstance(doc, dict) and doc.get("type") in ("FeatureCollection", "Feature")


def _expected(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.read_metadata(path).num_rows
    if path.suffix == ".csv":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=";,\t|")
        return len(list(csv.reader(text.splitlines(), dialect))) - 1
    doc = json.loads(path.read_bytes())
    return len(doc["features"]) if doc["type"] == "FeatureCollection" else 1


pytestmark = pytest.mark.corpus

TABULAR = [
    p
    for p in _files("geojson/*", "wfs/*.geojson", "oapif/*.json", "geoparquet/**/*.parquet")
    if p.suffix != ".json" or _is_features(p)
]
NOT_FEATURES = [
    p for p in _files("oapif/*.json", "geoparquet/*.json") if not _is_features(p)
] + _files("wfs/*GetCapabilities*.xml", "wfs/*DescribeFeatureType*.xml")


@pytest.mark.parametrize("path", TABULAR, ids=lambda p: p.name)
def test_every_record_is_a_feature_or_a_reject(path, lake):
    expected = _expected(path)
    if path.name in MANIFEST_COUNTS:
        assert expected == MANIFEST_COUNTS[path.name]
    try:
        report = ingest(path, "corpus", lake)
    except UnknownCRS as e:
        assert path.name in UNDECLARED and str(path) in str(e) and "--crs" in str(e)
        assert not data_files(lake.root)
        report = ingest(path, "corpus", lake, crs=UNDECLARED[path.name])
    else:
        assert path.name not in UNDECLARED
    assert report.features + report.rejects == report.records == expected
    assert report.rejects == 0, report.reasons.most_common(3)
    assert all(c.passed for c in report.checks), [c for c in report.checks if not c.passed]


@pytest.mark.parametrize("path", NOT_FEATURES, ids=lambda p: p.name)
def test_documents_without_features_fail_clearly(path, tmp_path, capsys):
    code = main(["ingest", str(path), "--source", "x", "--lake", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err and "not feature data" in err
    assert not (tmp_path / "features").exists()
