"""docs/connectors.md stays true: its file connector, registered as an entry point of another
distribution, is found by its name and ingests a GeoJSON text sequence (which content alone
gives the built-in `geojsonseq`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, SAMPLES, in_source_order

from citypipe.connectors import registry
from citypipe.core.ingest import ingest

DOC = (ROOT / "docs" / "connectors.md").read_text(encoding="utf-8")


@pytest.fixture
def installed_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The doc's connector as a module of a distribution whose entry point names it."""
    section = DOC.split("## A file connector", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)[1]
    (tmp_path / "seq_example.py").write_text(code, encoding="utf-8")
    dist = tmp_path / "seq_example-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: seq-example\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[citypipe.connectors]\ngeojsonseq-lite = seq_example:GeoJSONSeqConnector\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.available.cache_clear()
    registry.load.cache_clear()
    yield
    registry.available.cache_clear()
    registry.load.cache_clear()


def test_the_documented_file_connector_ingests_a_geojson_sequence(
    installed_example, tmp_path, lake
):
    features = json.loads((SAMPLES / "jena_parking.geojson").read_bytes())["features"]
    lines = [b"\x1e" + json.dumps(f).encode() for f in features]
    lines.insert(3, b"\x1e{not json")
    seq = tmp_path / "jena.geojsons"
    seq.write_bytes(b"\n".join(lines) + b"\n")
    assert registry.load("geojsonseq-lite").__module__ == "seq_example"
    assert registry.detect(seq).name == "geojsonseq"  # the built-in, by content
    report = ingest(seq, "jena", lake, format="geojsonseq-lite")
    assert report.format == "GeoJSON Text Sequences"
    assert (report.records, report.features, report.rejects) == (
        len(features) + 1,
        len(features),
        1,
    )
    table = in_source_order(pq.read_table(lake.partition("features", "jena")))
    assert table.column("name").to_pylist() == [f["properties"]["name"] for f in features]
