"""A service connector through the same contract as the file connectors, end to end: an OGC API -
Features collection served from 127.0.0.1 in two pages, ingested by its URL into a lake."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely
from conftest import SAMPLES, in_source_order
from loopback import Answer, scripted_server
from oapif_service import FEATURES, ITEMS, VINEYARDS, page, serve_metadata, serve_two_pages

from citypipe.cli import main
from citypipe.connectors import registry
from citypipe.connectors.ogcapi import OGCAPIFeaturesConnector
from citypipe.core.ingest import ingest
from citypipe.geo.errors import ConfigurationError, DataError


def exterior(feature: dict[str, Any]) -> list[tuple[float, float]]:
    coords = feature["geometry"]["coordinates"]
    ring = coords[0][0] if feature["geometry"]["type"] == "MultiPolygon" else coords[0]
    return [tuple(p) for p in ring]


def test_a_collection_is_harvested_page_after_page_by_its_url(lake) -> None:
    with scripted_server() as server:
        url = serve_two_pages(server)
        report = ingest(url, "vineyards", lake)
    table = in_source_order(
        pq.read_table(lake.partition("features", "vineyards")), [str(f["id"]) for f in FEATURES]
    )
    assert table.column("source_id").to_pylist() == [str(f["id"]) for f in FEATURES]
    assert table.column("name").to_pylist() == [f["properties"]["name"] for f in FEATURES]
    for wkb, feature in zip(table.column("geometry").to_pylist(), FEATURES, strict=True):
        shape = shapely.from_wkb(wkb)
        polygon = shape.geoms[0] if shape.geom_type == "MultiPolygon" else shape
        assert np.allclose(sorted(polygon.exterior.coords), sorted(exterior(feature)))
    assert report.format == "OGC API - Features" and report.declared_count == 3
    assert report.records == report.features == 3 and report.checks_failed == 0
    first, *rest = [r for r in server.requests if r.path == ITEMS]
    assert "limit=1000" in first.query  # the page size asked for where the URL names none
    assert len(rest) == 2  # page 2 answered 503 once, then came


def test_a_crs_response_is_read_in_that_crs_axis_order(lake) -> None:
    """OGC API Part 2: EPSG:4326 in its own order, latitude first, gives the same places."""
    swapped = json.loads(json.dumps(FEATURES))
    for f in swapped:
        f["geometry"]["coordinates"] = _swap(f["geometry"]["coordinates"])
    with scripted_server() as server:
        url = serve_two_pages(
            server,
            headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4326>"},
            features=swapped,
        )
        ingest(url + "?crs=http://www.opengis.net/def/crs/EPSG/0/4326", "vineyards", lake)
    table = in_source_order(
        pq.read_table(lake.partition("features", "vineyards")), [str(f["id"]) for f in FEATURES]
    )
    first = shapely.from_wkb(table.column("geometry")[0].as_py())
    polygon = first.geoms[0] if first.geom_type == "MultiPolygon" else first
    assert np.allclose(sorted(polygon.exterior.coords), sorted(exterior(FEATURES[0])))


def _swap(coords: Any) -> Any:
    if isinstance(coords[0], (int, float)):
        return [coords[1], coords[0], *coords[2:]]
    return [_swap(c) for c in coords]


def test_a_next_link_leading_back_refuses_the_source_and_keeps_the_last_output(lake, capsys):
    with scripted_server() as server:
        url = serve_two_pages(server)
        ingest(url, "vineyards", lake)
        server.answer(ITEMS, Answer(200, page(FEATURES[:2], ITEMS)))  # links to itself
        code = main(["ingest", url, "--source", "vineyards", "--lake", str(lake.root)])
    assert code == 2
    assert "leads back to a page already read" in capsys.readouterr().err
    assert pq.read_table(lake.partition("features", "vineyards")).num_rows == 3


def test_inspect_names_the_collection_and_its_count(capsys) -> None:
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, json.dumps(VINEYARDS).encode()))
        assert main(["inspect", server.url + ITEMS, "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["format"] == "OGC API - Features"
    assert facts["layers"] == "vineyards" and facts["declared count"] == 1587


def test_service_connectors_are_chosen_by_url_never_by_fetching() -> None:
    items = registry.open_location("https://example.org/ogc/collections/parks/items?bbox=1,2,3,4")
    assert isinstance(items, OGCAPIFeaturesConnector) and items.collection == "parks"
    with pytest.raises(ConfigurationError, match="not the address of a service"):
        registry.open_location("https://example.org/wms?service=WMS")
    with pytest.raises(ConfigurationError, match="does not read a URL"):
        registry.open_location("https://example.org/ogc/collections/parks/items", "geojson")
    with pytest.raises(ConfigurationError, match="does not read a local file"):
        registry.open_location(SAMPLES / "jena_parking.geojson", "ogcapi")


def test_an_answer_that_is_not_a_feature_collection_is_refused(lake) -> None:
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, b'{"title": "vineyards"}'))
        with pytest.raises(DataError, match="not a GeoJSON FeatureCollection"):
            ingest(server.url + ITEMS, "vineyards", lake)
