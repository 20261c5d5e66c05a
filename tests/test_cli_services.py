"""Services from the command line and the catalog: `citypipe ingest URL` with its query flags,
`citypipe inspect URL`, catalog entries with `url:`, and their Dagster asset."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import SAMPLES
from loopback import Answer, scripted_server
from oapif_service import (
    CORE,
    FEATURES,
    GEOJSON,
    ITEMS,
    PART2,
    ROOT,
    items_requests,
    page,
    serve_metadata,
    serve_two_pages,
)

from citypipe.cli import main
from citypipe.core.catalog import load_catalog
from citypipe.core.lake import Lake
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.assets import WAREHOUSE, build_assets, harmonised_key, raw_key
from citypipe.orchestration.run import run

KATASTER = "/kataster"


def serve_kataster(server) -> str:
    """ldproxy's NRW cadastre: its /conformance and /collections as captured."""
    for name in ("collections", "conformance"):
        body = (SAMPLES / f"nrw_kataster_ldproxy_{name}.json").read_bytes()
        server.answer(f"{KATASTER}/{name}", Answer(200, body))
    return server.url + KATASTER


def test_inspect_url_prints_each_collection_with_its_title_crs_and_formats(capsys) -> None:
    with scripted_server() as server:
        assert main(["inspect", serve_kataster(server)]) == 0
    out = capsys.readouterr().out
    assert "OGC API - Features" in out and "core, geojson" in out
    rows = {line.split(":")[0].strip(): line for line in out.splitlines() if line.startswith("  ")}
    assert "Flurstück; CRS http://www.opengis.net/def/crs/OGC/1.3/CRS84" in rows["flurstueck"]
    assert "Gebäude, Bauwerk" in rows["gebaeudebauwerk"]
    assert "formats application/geo+json, text/html" in rows["gebaeudebauwerk"]


def test_inspect_url_json_names_every_layer(capsys) -> None:
    with scripted_server() as server:
        assert main(["inspect", serve_kataster(server) + "/collections", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["layers"] == "flurstueck, gebaeudebauwerk, verwaltungseinheit"
    titles = [layer["title"] for layer in facts["layer info"]]
    assert titles == ["Flurstück", "Gebäude, Bauwerk", "Verwaltungseinheit"]
    assert facts["layer info"][1]["bbox"] == [5, 50, 9, 52]
    assert facts["conformance"] == "core, geojson"


def test_ingest_url_flags_become_the_services_query(lake, capsys) -> None:
    with scripted_server() as server:
        serve_two_pages(server, classes=(CORE, GEOJSON, PART2))
        code = main(
            [
                "ingest", server.url + ROOT, "--source", "vineyards", "--lake", str(lake.root),
                "--layer", "vineyards", "--crs", "OGC:CRS84", "--bbox", "6,49,8.5,50.7",
                "--datetime", "2020-09-01T00:00:00Z", "--page-size", "2",
                "--filter", "cluster LIKE 'Rosen%'",
            ]
        )  # fmt: skip
        first = items_requests(server)[0]
    assert code == 0, capsys.readouterr().err
    assert first["crs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert first["bbox"] == "6.0,49.0,8.5,50.7" and first["limit"] == "2"
    assert first["datetime"] == "2020-09-01T00:00:00Z"
    table = pq.read_table(lake.partition("features", "vineyards"))
    assert table.column("name").to_pylist() == ["Abtei"]  # cluster Rosengarten, filtered here


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "parks"], "unknown option(s) layer for GeoJSON"),  # a file without layers
        (["--page-size", "5", "--filter", "a = 1"], "--filter, --page-size apply to a service"),
    ],
)
def test_service_flags_on_a_file_are_refused(lake, capsys, args, message) -> None:
    path = str(SAMPLES / "jena_parking.geojson")
    code = main(["ingest", path, "--source", "jena", "--lake", str(lake.root), *args])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("box", ["6,49,8.5", "8.5,49,6,50.7", "a,b,c,d"])
def test_a_bbox_that_is_not_four_ordered_numbers_is_refused(capsys, box) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["ingest", "http://127.0.0.1:9/x", "--source", "s", "--bbox", box])
    assert stopped.value.code == 2 and "lon_min,lat_min,lon_max,lat_max" in capsys.readouterr().err


def write_catalog(tmp_path: Path, entry: dict[str, object]) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"sources": {"vineyards": entry}}), encoding="utf-8")
    return path


def test_a_catalog_url_source_carries_its_query(tmp_path: Path) -> None:
    entry = {
        "url": "https://demo.ldproxy.net/vineyards",
        "layer": "vineyards",
        "crs": "EPSG:25832",
        "bbox": [7.9, 49.0, 8.3, 49.5],
        "filter": "region = 'Pfalz'",
        "page_size": 500,
    }
    (source,) = load_catalog(write_catalog(tmp_path, entry)).sources
    query = source.query()
    assert source.location == "https://demo.ldproxy.net/vineyards" and query is not None
    assert (query.layer, query.crs, query.bbox) == ("vineyards", "EPSG:25832", (7.9, 49, 8.3, 49.5))
    assert (query.filter, query.page_size) == ("region = 'Pfalz'", 500)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"url": "https://x.org/ogc", "path": "a.json"}, "one of path: .* and url:"),
        ({}, "one of path: .* and url:"),
        ({"path": "a.json", "layer": "parks"}, "layer apply to a url: source"),
        ({"url": "ftp://x.org/ogc"}, "not an http"),
        ({"url": "https://x.org/ogc", "page_size": 0}, "page_size"),
    ],
)
def test_catalog_url_mistakes_name_the_entry(tmp_path: Path, entry, message) -> None:
    with pytest.raises(ConfigurationError, match=f"source 'vineyards': .*{message}"):
        load_catalog(write_catalog(tmp_path, entry)).get("vineyards")


def test_a_url_source_is_harvested_by_its_harmonised_asset_alone(tmp_path: Path) -> None:
    with scripted_server() as server:
        serve_metadata(server)
        server.answer(ITEMS, Answer(200, page(FEATURES, None)))
        catalog = load_catalog(
            write_catalog(tmp_path, {"url": server.url + ROOT, "theme": "land_use"})
        )
        keys = {a.key for assets in build_assets(catalog) for a in [assets]}
        (outcome,) = run(Lake(tmp_path / "lake"), catalog)
    assert harmonised_key("vineyards") in keys and raw_key("vineyards") not in keys
    assert outcome.ok and outcome.features == 3, outcome.error
    assert not (tmp_path / "lake" / "raw").exists()


def test_the_file_sensor_leaves_url_sources_to_their_schedule(tmp_path: Path) -> None:
    from dagster import build_sensor_context

    from citypipe.orchestration.definitions import build_definitions
    from citypipe.orchestration.resources import LakeResource

    (tmp_path / "jena.geojson").write_bytes((SAMPLES / "jena_parking.geojson").read_bytes())
    path = tmp_path / "catalog.yaml"
    sources = {
        "jena": {"path": "jena.geojson", "theme": "parking"},
        "vineyards": {"url": "https://demo.ldproxy.net/vineyards", "schedule": "0 5 * * 1"},
    }
    path.write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    definitions = build_definitions(load_catalog(path), LakeResource(root=str(tmp_path)))
    sensor = definitions.resolve_sensor_def("source_files_changed")
    tick = sensor.evaluate_tick(build_sensor_context(cursor=None, definitions=definitions))
    (request,) = tick.run_requests or []
    assert set(request.asset_selection) == {raw_key("jena"), harmonised_key("jena"), WAREHOUSE}
    assert set(json.loads(tick.cursor or "{}")) == {"jena"}
    job = definitions.resolve_job_def("ingest_vineyards")  # the schedule's job: the harvest
    assert set(job.asset_layer.selected_asset_keys) == {harmonised_key("vineyards"), WAREHOUSE}
