"""Incremental service harvests against real servers on 127.0.0.1: the NGSI test broker
(modifiedAt / dateModified) and pygeoapi (a collection with a temporal extent). A harvest,
changes on the server, a second harvest asking only for what changed (the server saw the
watermark), and the lake holding the old features with the changed and added ones."""

from __future__ import annotations

import copy
from urllib.parse import parse_qs, urlsplit

import orjson
import pyarrow.parquet as pq
import pytest
from servers import ngsi_data
from servers.ngsi_broker import loaded, serve_broker

from citypipe.connectors.base import Query
from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.core.incremental import landed
from citypipe.core.incremental_harvest import WATERMARK_KEY
from citypipe.core.ingest import ingest
from citypipe.geo.errors import ConfigurationError

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
