"""Incremental service harvests against real servers on 127.0.0.1: the NGSI test broker
(modifiedAt / dateModified) and pygeoapi (a collection with a temporal extent). A harvest,
changes on the server, a second harvest asking only for what changed (the server saw the
watermark), and the lake holding the old features with the changed and added ones."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from servers import ngsi_data
from servers.ngsi_broker import loaded, serve_broker
from servers.pygeoapi_server import CHECKED

from citypipe.connectors.base import Query
from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.core.catalog import load_catalog
from citypipe.core.incremental import landed
from citypipe.core.incremental_harvest import WATERMARK_KEY
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.run import run

COPIES = 30
KIND = "OffStreetParking"
QUICK = HttpPolicy(backoff=0.01, retries=1, read_timeout=5)


def harvest(url: str, lake, *, source: str = "parking", query: Query | None = None, **options):
    """One incremental harvest of `url` into `lake` (the validation suite included)."""
    return ingest(
        url,
        source,
        lake,
        options={"client": HttpClient(QUICK), **({"query": query} if query else {}), **options},
        changes_only=True,
    )


def rows(lake, source: str = "parking") -> dict[str, dict]:
    """The landed features by their id in the source: their name and properties."""
    table = pq.read_table(
        lake.partition("features", source),
        columns=["feature_id", "name", "properties", "ingested_at"],
    )
    return {r["feature_id"].split("/", 1)[1]: r for r in table.to_pylist()}


def watermark(lake, source: str = "parking") -> str | None:
    found = landed(lake, source)
    assert found is not None
    kept = found.metadata.get(WATERMARK_KEY.encode())
    return orjson.loads(kept)["since"] if kept else None


def entity(k: int) -> dict:
    """Copy k of the corpus's OffStreetParking, as the broker holds it."""
    return next(e for i, e in enumerate(ngsi_data.copies_of(KIND, k + 1)) if i == k)


@pytest.fixture
def broker():
    with serve_broker(loaded(copies=COPIES)) as served:
        yield served


def asked(seen: list[str], resource: str) -> list[dict[str, str]]:
    return [
        {k: v[-1] for k, v in parse_qs(urlsplit(s).query).items()}
        for s in seen
        if urlsplit(s).path.rstrip("/") == resource
    ]


@pytest.mark.parametrize("api", ["ngsi-ld", "v2"])
def test_a_second_harvest_asks_for_the_changes_and_lands_them_with_the_rest(broker, lake, api):
    url = (
        f"{broker.ld_url}?type={KIND}"
        if api == "ngsi-ld"
        else f"{broker.url}/v2/entities?type={KIND}"
    )
    resource = urlsplit(url).path
    first = harvest(url, lake)
    assert first.since is None and first.features == COPIES  # the first harvest is whole
    mark = watermark(lake)
    assert mark is not None
    before = rows(lake)
    # two entities renamed, one added, by the broker's clock after the first harvest began
    renamed = {entity(k)["id"]: f"renamed {k}" for k in (3, 17)}
    for k in (3, 17):
        changed = copy.deepcopy(entity(k))
        changed["name"]["value"] = renamed[changed["id"]]
        broker.upsert(changed)
    added = copy.deepcopy(entity(0))
    added["id"] = ngsi_data.copy_id(ngsi_data.sample(KIND)["id"], COPIES)
    broker.upsert(added)
    broker.seen.clear()

    second = harvest(url, lake)

    term = "modifiedAt" if api == "ngsi-ld" else "dateModified"
    queries = [q for q in asked(broker.seen, resource) if q.get("limit") != "0"]
    assert queries and all(q["q"] == f"{term}>={mark}" for q in queries)  # the server saw it
    assert second.since == mark
    assert second.records == 3  # what changed, and only that
    assert second.carried == COPIES - 2
    after = rows(lake)
    assert second.features == len(after) == COPIES + 1
    assert set(after) == set(before) | {added["id"]}
    for entity_id, name in renamed.items():
        assert after[entity_id]["name"] == name
    unchanged = set(before) - set(renamed)
    assert all(after[i]["properties"] == before[i]["properties"] for i in unchanged)
    # every row is of the new run, as in any run
    assert {r["ingested_at"] for r in after.values()} == {second.ingested_at}
    assert watermark(lake) >= mark


def test_a_failed_incremental_harvest_moves_nothing(broker, lake):
    url = f"{broker.ld_url}?type={KIND}"
    harvest(url, lake)
    mark, before = watermark(lake), rows(lake)
    with pytest.raises(ConfigurationError, match="404"):
        harvest(url, lake, tenant="nowhere")  # refused by the broker: the run fails
    assert watermark(lake) == mark and rows(lake) == before


def test_other_settings_make_a_full_harvest(broker, lake):
    url = f"{broker.ld_url}?type={KIND}"
    harvest(url, lake)
    broker.seen.clear()
    report = harvest(url, lake, query=Query(bbox=(-180, -90, 180, 90)))
    assert report.since is None and report.carried == 0 and report.records == COPIES
    assert not any(
        "modifiedAt" in q.get("q", "") for q in asked(broker.seen, "/ngsi-ld/v1/entities")
    )


def test_a_protocol_that_cannot_ask_for_changes_is_refused(broker, lake, sample):
    temporal = f"{broker.url}/ngsi-ld/v1/temporal/entities?type=AirQualityObserved"
    with pytest.raises(ConfigurationError, match="cannot be harvested incrementally"):
        harvest(temporal, lake, source="history")
    with pytest.raises(ConfigurationError, match="only a service"):
        ingest(sample("barcelona_drinking_fountains.geojson"), "fonts", lake, changes_only=True)


def change(data: Path, edits: dict[int, dict], added: dict) -> None:
    """Edit the properties of the features with those fids and add one, as a publisher does
    (the file replaced in one rename, so pygeoapi never reads half of it)."""
    doc = json.loads(data.read_text(encoding="utf-8"))
    for feature in doc["features"]:
        feature["properties"].update(edits.get(feature["id"], {}))
    doc["features"].append(added)
    tmp = data.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, data)


def test_an_ogc_api_collection_with_a_temporal_extent_is_harvested_by_datetime(
    own_pygeoapi, fault_proxy, lake
):
    server = own_pygeoapi((CHECKED,))
    proxy = fault_proxy(server.url)  # no faults: its record of what pygeoapi was asked
    url = f"{proxy.url}/collections/{CHECKED.id}/items"
    first = harvest(url, lake, source="parkplaetze")
    facts = CHECKED.layer
    assert first.since is None
    assert first.records == first.features == facts.count
    mark = watermark(lake, "parkplaetze")
    assert mark is not None
    before = rows(lake, "parkplaetze")
    data = server.log.parent / f"{CHECKED.id}.geojson"
    doc = json.loads(data.read_text(encoding="utf-8"))
    template = next(f for f in doc["features"] if f["geometry"] and f["geometry"]["coordinates"])
    now = datetime.now(UTC).isoformat(timespec="seconds")
    checked = {"Überprüfungsdatum": now, "Bemerkungen": "neu geprüft"}
    new_fid = max(f["id"] for f in doc["features"]) + 1
    added = {
        **template,
        "id": new_fid,
        "properties": {**template["properties"], "fid": new_fid, **checked},
    }
    change(data, {1: checked, 2: checked}, added)
    proxy.seen.clear()

    second = harvest(url, lake, source="parkplaetze")

    items = [parse_qs(urlsplit(s.target).query) for s in proxy.seen if "/items" in s.target]
    assert items and all(q["datetime"] == [f"{mark}/.."] for q in items)  # pygeoapi saw it
    assert second.since == mark
    assert second.records == 3 and second.declared_count == 3  # numberMatched of the delta
    after = rows(lake, "parkplaetze")
    assert second.features == len(after) == facts.count + 1
    assert set(after) == set(before) | {str(new_fid)}
    for fid in ("1", "2", str(new_fid)):
        assert json.loads(after[fid]["properties"])["Bemerkungen"] == "neu geprüft"
    assert all(after[f]["properties"] == before[f]["properties"] for f in set(before) - {"1", "2"})


def test_an_ogc_api_collection_without_a_temporal_extent_is_refused(pygeoapi_server, lake):
    url = f"{pygeoapi_server.url}/collections/parkplaetze/items"
    harvest(url, lake, source="parkplaetze")  # the first harvest is whole and lands
    with pytest.raises(ConfigurationError, match="no temporal extent"):
        harvest(url, lake, source="parkplaetze")


def write_catalog(tmp_path: Path, **entry) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"sources": {"parking": entry}}), encoding="utf-8")
    return path


def test_a_catalog_entry_harvests_incrementally_in_citypipe_run_and_force_harvests_whole(
    broker, tmp_path
):
    lake = Lake(tmp_path / "lake")
    url = f"{broker.ld_url}?type={KIND}"
    catalog = load_catalog(write_catalog(tmp_path, url=url, incremental=True))
    (first,) = run(lake, catalog)
    assert first.ok and first.features == COPIES, first.error
    mark = watermark(lake)
    added = copy.deepcopy(entity(0))
    added["id"] = ngsi_data.copy_id(ngsi_data.sample(KIND)["id"], COPIES)
    broker.upsert(added)
    broker.seen.clear()
    (second,) = run(lake, catalog)
    assert second.ok and second.features == COPIES + 1, second.error
    queries = [q for q in asked(broker.seen, "/ngsi-ld/v1/entities") if q.get("limit") != "0"]
    assert queries and all(q["q"] == f"modifiedAt>={mark}" for q in queries)
    broker.seen.clear()
    (forced,) = run(lake, catalog, force=True)
    assert forced.ok and forced.features == COPIES + 1, forced.error
    assert not any("q" in q for q in asked(broker.seen, "/ngsi-ld/v1/entities"))


def test_incremental_is_for_a_url_entry(tmp_path):
    with pytest.raises(ConfigurationError, match="incremental apply to a url: source"):
        load_catalog(write_catalog(tmp_path, path="a.geojson", incremental=True)).get("parking")


def test_a_harvest_is_retried_by_dagster_and_pooled_by_host(tmp_path):
    from citypipe.orchestration.assets import build_assets

    catalog = load_catalog(
        write_catalog(tmp_path, url="https://broker.example.org:8443/ngsi-ld/v1/entities?type=X")
    )
    harvest_asset, _warehouse = build_assets(catalog)
    policy = harvest_asset.op.retry_policy
    assert policy is not None and policy.max_retries >= 1
    assert harvest_asset.op.pool == "host:broker.example.org:8443"
