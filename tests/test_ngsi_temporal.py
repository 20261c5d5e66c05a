"""The NGSI-LD temporal API into observations: every value of the test broker's history once
(105,000: 1500 AirQualityObserved x the sample's 5 pollutants with a unitCode x 14 hours),
over 206 Partial Content answers, also when re-run, with units as the sample states them."""

from __future__ import annotations

from datetime import datetime

import duckdb
import orjson
import pytest
from loopback import Answer, scripted_server
from servers import ngsi_data
from servers.ngsi_broker import BrokerPolicy

from citypipe.connectors.base import Query
from citypipe.connectors.http import HttpClient, HttpPolicy
from citypipe.connectors.registry import open_location
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import DataError

PATH = "/ngsi-ld/v1/temporal/entities"
AQO = ngsi_data.sample("AirQualityObserved")
UNITS = {k: v["unitCode"] for k, v in AQO.items() if isinstance(v, dict) and "unitCode" in v}


def values(url: str, **query) -> list[tuple]:
    """(entity id, attribute, value, unit, observedAt) of every observation a harvest gives."""
    connector = open_location(url, query=Query(**query), client=HttpClient(HttpPolicy()))
    return [
        (batch.source_ids[o.record], o.attribute, o.value, o.unit_code, o.observed_at)
        for batch in connector.read()
        for o in batch.observations
    ]


def test_the_history_arrives_each_value_once_also_when_read_again(ngsi_broker) -> None:
    broker = ngsi_broker()
    url = f"{broker.url}{PATH}?type=AirQualityObserved"
    first = values(url)
    assert set(UNITS) == {"co", "no", "no2", "nox", "so2"}
    assert len(first) == len(set(first)) == 1500 * len(UNITS) * ngsi_data.HOURS == 105_000
    assert sorted(first) == sorted(values(url))
    assert {(a, u) for _, a, _, u, _ in first} == set(UNITS.items())
    one = ngsi_data.copy_id(AQO["id"], 7)
    mine = sorted((a, t, v) for i, a, v, _, t in first if i == one)
    history = ngsi_data.history(one)
    assert mine == sorted((a, t, v) for a, series in history.items() for t, v in series)
    partial = [s for s in broker.seen if "timerel=after" in s]
    assert partial, "the broker paged the instances (206) and citypipe asked for the rest"


def test_many_partial_answers_still_give_each_value_once(ngsi_broker) -> None:
    broker = ngsi_broker(BrokerPolicy(max_instances=2))
    url = f"{broker.url}{PATH}?type=AirQualityObserved&attrs=no2&limit=500"
    got = values(url, datetime="2016-03-15T03:00:00Z/2016-03-15T08:00:00Z")
    hours = {f"2016-03-15T0{h}:00:00Z" for h in range(3, 8)}  # between: the end excluded
    assert len(got) == len(set(got)) == 1500 * len(hours)
    assert {t for *_, t in got} == hours
    # [03, 04], [04, 05], [05, 06], then from 06 the rest at once: for each of the 3 pages
    assert sum("timeAt=2016-03-15T06" in s for s in broker.seen) == 3


def test_a_broker_that_cannot_advance_is_a_clear_error(ngsi_broker) -> None:
    broker = ngsi_broker(BrokerPolicy(max_instances=1))  # `between` repeats its start
    url = f"{broker.url}{PATH}?type=AirQualityObserved&attrs=no2&limit=500"
    with pytest.raises(DataError, match="the same instants"):
        values(url, datetime="2016-03-15T03:00:00Z/2016-03-15T08:00:00Z")


def test_last_n_gives_the_most_recent_values_of_the_range(ngsi_broker) -> None:
    broker = ngsi_broker(BrokerPolicy(max_instances=2))
    url = f"{broker.url}{PATH}?type=AirQualityObserved&lastN=3&attrs=co"
    got = values(url, datetime="2016-03-15T02:00:00Z/2016-03-15T12:00:00Z")
    assert len(got) == len(set(got)) == 1500 * 3
    assert {t for *_, t in got} == {f"2016-03-15T{h:02d}:00:00Z" for h in (9, 10, 11)}


def test_a_temporal_harvest_ingests_one_feature_per_entity(ngsi_broker, lake) -> None:
    broker = ngsi_broker()
    url = f"{broker.url}{PATH}?type=AirQualityObserved"
    report = ingest(url, "air", lake, validate=False)
    assert report.features == 1500


def stored(lake: Lake) -> list[tuple]:
    """(entity id, attribute, value, unit, observed_at) of every row in <lake>/observations,
    read with plain DuckDB, the entity id through the features table."""
    features = lake.root / "features" / "**" / "*.parquet"
    observations = lake.root / "observations" / "**" / "*.parquet"
    return duckdb.sql(
        f"SELECT f.source_id, o.attribute, o.value, o.unit_code, o.observed_at "
        f"FROM read_parquet('{observations}', hive_partitioning = false) o "
        f"JOIN (SELECT DISTINCT feature_id, source_id FROM read_parquet('{features}', "
        f"hive_partitioning = false)) f USING (feature_id)"
    ).fetchall()


def test_the_history_lands_in_observations_exactly_once_also_when_re_run(
    ngsi_broker, lake: Lake
) -> None:
    broker = ngsi_broker()
    url = f"{broker.url}{PATH}?type=AirQualityObserved"
    expected = sorted(
        (entity, attribute, value, UNITS[attribute], datetime.fromisoformat(at))
        for k in range(1500)
        for entity in [ngsi_data.copy_id(AQO["id"], k)]
        for attribute, series in ngsi_data.history(entity).items()
        for at, value in series
    )
    assert len(expected) == 105_000
    ingest(url, "air", lake, validate=False)
    first = stored(lake)
    ingest(url, "air", lake, validate=False)
    assert sorted(stored(lake)) == sorted(first) == expected


def test_a_partial_answer_without_a_content_range_is_a_clear_error() -> None:
    entity = {"id": "urn:ngsi-ld:A:1", "type": "A", "x": [{"type": "Property", "value": 1}]}
    headers = {"Content-Type": "application/json", "NGSILD-Results-Count": "1"}
    with scripted_server() as server:
        server.answer(PATH, Answer(206, orjson.dumps([entity]), headers))
        with pytest.raises(DataError, match="206 answer without a date-time Content-Range"):
            values(f"{server.url}{PATH}?type=A")
