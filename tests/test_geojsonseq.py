"""GeoJSON Text Sequences and newline-delimited GeoJSON: the Features of a bundled sample written
a record at a time land as the FeatureCollection does; a damaged record is rejected alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from conftest import SAMPLES, in_source_order

from citypipe.connectors.geojsonseq import GeoJSONSeqConnector
from citypipe.connectors.registry import detect
from citypipe.core.ingest import ingest

JENA = SAMPLES / "jena_parking.geojson"
FEATURES = json.loads(JENA.read_bytes())["features"]


def _write(path: Path, records: list[str], separator: str) -> Path:
    path.write_text("".join(f"{separator}{r}\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("separator", ["", "\x1e"], ids=["lines", "rfc8142"])
def test_the_features_of_jena_land_as_the_collection_does(tmp_path, lake, read_lake, separator):
    path = _write(tmp_path / "jena.geojsons", [json.dumps(f) for f in FEATURES], separator)
    assert detect(path) is GeoJSONSeqConnector
    report = ingest(path, "jena_seq", lake)
    assert (report.records, report.features, report.rejects) == (len(FEATURES), 103, 0)
    assert report.format == "GeoJSONSeq"
    table = in_source_order(read_lake("jena_seq"))
    points = shapely.get_coordinates(shapely.from_wkb(table.column("geometry").to_pylist()))
    assert points.tolist() == [f["geometry"]["coordinates"][:2] for f in FEATURES]


def test_a_pretty_printed_record_after_a_separator_is_one_record(tmp_path, lake):
    records = [json.dumps(f, indent=2) for f in FEATURES[:3]]
    report = ingest(_write(tmp_path / "pretty.geojsons", records, "\x1e"), "pretty", lake)
    assert (report.records, report.features) == (3, 3)


def test_a_damaged_line_is_rejected_and_the_others_land(tmp_path, lake):
    lines = [json.dumps(f) for f in FEATURES[:5]]
    lines[2] = lines[2][: len(lines[2]) // 2]  # cut short, as a write that was interrupted
    report = ingest(_write(tmp_path / "cut.geojsonl", lines, ""), "cut", lake)
    assert (report.records, report.features, report.rejects) == (5, 4, 1)
    assert next(iter(report.reasons)).startswith("not valid JSON")


def test_one_feature_on_one_line_stays_geojson(tmp_path):
    path = tmp_path / "one.geojson"
    path.write_text(json.dumps(FEATURES[0]) + "\n", encoding="utf-8")
    assert detect(path).name == "geojson"


DISTRICTS = json.loads((SAMPLES / "barcelona_districtes.geojson").read_bytes())["features"]
"""Barcelona's districts: Catalan names (Sant Martí, Gràcia, Horta-Guinardó) in every record."""


@pytest.mark.parametrize(
    ("encoding", "separator"),
    [("utf-8-sig", ""), ("utf-8-sig", "\x1e"), ("cp1252", ""), ("latin-1", "\x1e")],
)
def test_a_sequence_with_a_bom_or_in_a_code_page_reads_as_written(
    tmp_path, lake, read_lake, encoding, separator
):
    """A byte-order mark before the first record (its record was rejected as "NaN or
    Infinity"), or every record in a Windows or ISO code page (a GeoJSON written from a
    Shapefile's cp1252: refused as one broken GeoJSON document): the names land as written."""
    features = [{**f, "properties": {"NOM": f["properties"]["NOM"]}} for f in DISTRICTS]
    path = tmp_path / "districts.geojsonl"
    text = "".join(f"{separator}{json.dumps(f, ensure_ascii=False)}\n" for f in features)
    path.write_bytes(text.encode(encoding))
    assert detect(path) is GeoJSONSeqConnector
    report = ingest(path, "districts", lake)
    assert (report.features, report.rejects) == (len(features), 0)
    landed = [json.loads(p)["NOM"] for p in read_lake("districts")["properties"].to_pylist()]
    assert sorted(landed) == sorted(f["properties"]["NOM"] for f in features)
    assert not all(n.isascii() for n in landed)
