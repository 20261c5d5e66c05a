"""Every built-in file connector passes the conformance kit a city's own connector must pass
(citypipe.sdk.conformance), on a sample of its format; the record counts are taken from the
samples by plain parsing, not by citypipe."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq

from citypipe.connectors.citygml import CityGMLConnector
from citypipe.connectors.cityjson import CityJSONConnector
from citypipe.connectors.csvtable import CSVConnector
from citypipe.connectors.geojson import GeoJSONConnector
from citypipe.connectors.geojsonseq import GeoJSONSeqConnector
from citypipe.connectors.geoparquet import GeoParquetConnector
from citypipe.connectors.ngsi import NGSILDConnector
from citypipe.connectors.ogr import OGRConnector
from citypipe.sdk.conformance import ConnectorConformance

SAMPLES = Path(__file__).parent.parent / "data" / "samples"


class TestGeoJSON(ConnectorConformance):
    connector = GeoJSONConnector
    sample = SAMPLES / "jena_parking.geojson"
    records = len(json.loads(sample.read_bytes())["features"])


class TestCSV(ConnectorConformance):
    connector = CSVConnector
    sample = SAMPLES / "neckarsulm_parking_ewkb.csv"  # EWKB hex with its SRID
    with open(sample, encoding="utf-8", newline="") as f:
        records = sum(1 for _ in csv.reader(f, delimiter=";")) - 1


class TestGeoParquet(ConnectorConformance):
    connector = GeoParquetConnector
    sample = SAMPLES / "geoparquet" / "data-polygon-encoding_wkb.parquet"
    records = pq.read_metadata(sample).num_rows


class TestCityJSON(ConnectorConformance):
    connector = CityJSONConnector
    sample = SAMPLES / "cityjson" / "rotterdam_one_v1.1.city.json"
    records = len(json.loads(sample.read_bytes())["CityObjects"])


class TestCityGML(ConnectorConformance):
    connector = CityGMLConnector
    sample = SAMPLES / "citygml" / "sig3d_v2_Building_LOD1-EPSG25832.gml"


class TestNGSILD(ConnectorConformance):
    connector = NGSILDConnector
    sample = SAMPLES / "ngsi-ld" / "ParkingSpot" / "example-normalized.jsonld"
    records = 1  # one entity, urn:ngsi-ld:ParkingSpot:santander:daoiz_velarde_1_5:3


class TestGeoJSONSeq(ConnectorConformance):
    connector = GeoJSONSeqConnector
    sample = SAMPLES / "jena_parking.geojsonl"
    records = sum(1 for line in sample.read_text(encoding="utf-8").splitlines() if line.strip())


class TestOGR(ConnectorConformance):
    connector = OGRConnector
    sample = SAMPLES / "jena_parking.fgb"  # Jena's 103 car parks (the GeoJSON's), FlatGeobuf
    records = len(json.loads((SAMPLES / "jena_parking.geojson").read_bytes())["features"])
