"""A collection's `itemType` (OGC API - Common): "feature" (the default) and "record" (OGC API -
Records, a catalogue on the same /items, pygeoapi's TinyDB catalogue) are read as GeoJSON;
any other ("coverage", "tile") is refused in one line naming it, before any page. The
catalogue's records (ids with spaces and umlauts, nested contacts and themes, one without a
geometry) are servers.pygeoapi_records.RECORDS; expected values come from there."""

from __future__ import annotations

import json

import geopandas
import pyarrow.parquet as pq
import pytest
import requests
import shapely
from servers.faults import answer
from servers.pygeoapi_records import CATALOGUE, RECORDS
from servers.pygeoapi_server import COLLECTIONS

from citypipe.cli import main


@pytest.fixture
def catalogue(own_pygeoapi):
    return own_pygeoapi(COLLECTIONS[:1], records=True)


def test_a_records_collection_is_harvested_as_geojson(catalogue, lake, capsys) -> None:
    """Every record lands with its id, its extent as geometry (none for the record without
    one, as a GeoJSON feature with a null geometry does) and its nested members as JSON, read
    whole by pyarrow and geopandas."""
    url = f"{catalogue.url}/collections/{CATALOGUE}"
    code = main(["ingest", url, "--source", "katalog", "--lake", str(lake.root)])
    assert code == 0, capsys.readouterr().err
    table = pq.read_table(lake.partition("features", "katalog")).to_pylist()
    landed = {row["source_id"]: row for row in table}
    assert set(landed) == {record["id"] for record in RECORDS}
    assert len(geopandas.read_parquet(lake.partition("features", "katalog"))) == len(RECORDS)
    for record in RECORDS:
        row = landed[record["id"]]
        if record["geometry"] is None:
            assert row["geometry"] is None
            continue
        want = shapely.geometry.shape(record["geometry"])
        assert shapely.from_wkb(row["geometry"]).equals_exact(want, 1e-9)
        properties = json.loads(row["properties"])
        assert properties["contacts"] == record["properties"]["contacts"]
        assert properties["title"] == record["properties"]["title"]


@pytest.mark.parametrize("item_type", ["coverage", "tile"])
def test_a_collection_of_another_item_type_is_refused_in_one_line(
    catalogue, fault_proxy, lake, capsys, item_type
) -> None:
    """pygeoapi's /collections with the features collection's itemType rewritten: exit 2, one
    line naming the type, the lake as it was, no page asked for."""
    doc = requests.get(f"{catalogue.url}/collections?f=json", timeout=30).json()
    collection = COLLECTIONS[0].id
    for entry in doc["collections"]:
        if entry["id"] == collection:
            entry["itemType"] = item_type
    proxy = fault_proxy(catalogue.url)
    proxy.inject(answer(json.dumps(doc).encode(), "application/json"), match=r"/collections$")
    url = f"{proxy.url}/collections/{collection}"
    code = main(["ingest", url, "--source", "s", "--lake", str(lake.root)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"itemType '{item_type}'" in err[0] and collection in err[0]
    assert not any("/items" in s.target for s in proxy.seen)
    assert not lake.partition("features", "s").exists()


def test_inspect_shows_the_item_type_of_a_collection_and_of_each_in_a_service(
    catalogue, capsys
) -> None:
    """`citypipe inspect` says what a collection holds, as /collections declares it (the
    features collection's and the records catalogue's), before anything is harvested."""
    doc = requests.get(f"{catalogue.url}/collections?f=json", timeout=30).json()
    declared = {entry["id"]: entry["itemType"] for entry in doc["collections"]}
    assert declared[CATALOGUE] == "record"
    for name, kind in declared.items():
        assert main(["inspect", f"{catalogue.url}/collections/{name}", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["item type"] == kind
    assert main(["inspect", catalogue.url, "--json"]) == 0
    said = json.loads(capsys.readouterr().out)["item type"]
    assert said == ", ".join(f"{name}: {kind}" for name, kind in declared.items())


def test_inspect_names_the_default_item_type_where_a_collection_declares_none(
    catalogue, fault_proxy, capsys
) -> None:
    doc = requests.get(f"{catalogue.url}/collections?f=json", timeout=30).json()
    collection = COLLECTIONS[0].id
    for entry in doc["collections"]:
        entry.pop("itemType", None)
    proxy = fault_proxy(catalogue.url)
    proxy.inject(answer(json.dumps(doc).encode(), "application/json"), match=r"/collections$")
    assert main(["inspect", f"{proxy.url}/collections/{collection}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["item type"] == "feature (the default)"
