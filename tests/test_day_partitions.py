"""Sources partitioned by day: a service entry with `partitions: {daily: START}` is one Dagster
daily partition per UTC day; each day harvests its own window and lands as `<NAME>~<DAY>`, a
file of the source's folder that every reader takes with the others as one dataset; a day re-run
leaves the other days' files as they were and stores no observation twice.

Against the real servers on 127.0.0.1: pygeoapi serving the Esslingen parking areas with their
last check's date as the collection's time (`Überprüfungsdatum`, a date, counted per day from the
sample file), and the NGSI test broker's temporal API (its history of AirQualityObserved values,
one an hour for 14 hours of 2016-03-15: `servers.ngsi_data`).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb
import geopandas as gpd
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import (
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    build_schedule_context,
)
from servers import ngsi_data
from servers.facts import SAMPLES
from servers.ngsi_broker import NgsiBroker, loaded, serve_broker
from servers.pygeoapi_server import CHECKED

from citypipe.cli import main
from citypipe.core import warehouse
from citypipe.core.catalog import Catalog, load_catalog
from citypipe.core.lake import Lake
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.assets import harmonised_key
from citypipe.orchestration.definitions import build_definitions
from citypipe.orchestration.resources import LakeResource
from citypipe.orchestration.run import dagster_home, run

COPIES = 30
HISTORY = "/ngsi-ld/v1/temporal/entities?type=AirQualityObserved"


def _catalog(tmp_path: Path, name: str, entry: dict[str, object]) -> Catalog:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"sources": {name: entry}}), encoding="utf-8")
    return load_catalog(path)


def _checked_per_day() -> Counter[str]:
    """Parking areas per day of their last check, from the sample file."""
    doc = json.loads((SAMPLES / CHECKED.layer.sample).read_text(encoding="utf-8"))
    return Counter(f["properties"]["Überprüfungsdatum"] for f in doc["features"])


def _landed(lake: Lake, source: str) -> dict[str, tuple[str, int, int]]:
    """Each day's features file: the run file its link resolves to, its inode and mtime."""
    found = {}
    for link in lake.partition("features", source).glob("*.parquet"):
        target = link.resolve(strict=True)
        found[link.stem] = (str(target), target.stat().st_ino, target.stat().st_mtime_ns)
    return found


@pytest.fixture
def parking(own_pygeoapi, tmp_path: Path) -> Catalog:
    server = own_pygeoapi((CHECKED,))
    url = f"{server.url}/collections/{CHECKED.id}/items"
    return _catalog(tmp_path, "parking", {"url": url, "partitions": {"daily": "2021-09-14"}})


def test_each_day_lands_that_days_features_and_reads_as_one_dataset(parking, lake) -> None:
    per_day = _checked_per_day()
    days = ["2021-09-14", "2021-10-10", "2021-10-11", "2021-10-12"]
    outcomes = run(lake, parking, ["parking"], partitions=[days[0], "2021-10-10..2021-10-12"])
    assert {o.source: (o.ok, o.features) for o in outcomes} == {
        f"parking~{d}": (True, per_day[d]) for d in days
    }
    assert per_day["2021-09-14"] == 64 and per_day["2021-10-11"] == 21  # two days with some
    folder = lake.partition("features", "parking")
    assert sorted(p.name for p in folder.iterdir()) == [f"{d}.parquet" for d in days]
    for day in days:
        table = pq.read_table(folder / f"{day}.parquet", columns=["properties"])
        checked = {json.loads(p)["Überprüfungsdatum"] for p in table["properties"].to_pylist()}
        assert checked <= {day}
    total = per_day["2021-09-14"] + per_day["2021-10-11"]
    assert pq.read_table(folder).num_rows == total
    assert len(gpd.read_parquet(folder)) == total
    assert warehouse.query(lake, "SELECT count(*) FROM features")[1] == [(total,)]
    with DagsterInstance.from_config(str(dagster_home(lake))) as instance:
        assert instance.get_materialized_partitions(harmonised_key("parking")) == set(days)


def test_a_bad_day_is_a_one_line_error(parking, lake, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CITYPIPE_CATALOG", str(tmp_path / "catalog.yaml"))
    argv = ["run", "--lake", str(lake.root), "--source", "parking", "--partition"]
    today = datetime.now(UTC).date().isoformat()
    for bad in ("2021-13-01", today, "2021-10-12..2021-10-10", "2021-09-13"):
        assert main([*argv, bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0
        assert f"source 'parking' has no partition {bad!r}; partitions: 2021-09-14.." in err
    assert not lake.partition("features", "parking").exists()


@pytest.fixture
def air(tmp_path: Path) -> Iterator[tuple[Catalog, NgsiBroker]]:
    with serve_broker(loaded(copies=COPIES)) as broker:
        url = f"{broker.url}{HISTORY}"
        yield _catalog(tmp_path, "air", {"url": url, "partitions": {"daily": "2016-03-14"}}), broker


def _observations(lake: Lake) -> dict[str, int]:
    """Observations per UTC day, read with plain DuckDB."""
    files = lake.root / "observations" / "**" / "*.parquet"
    rows = duckdb.sql(
        f"SELECT CAST(observed_at AT TIME ZONE 'UTC' AS DATE)::VARCHAR, count(*) "
        f"FROM read_parquet('{files}', hive_partitioning = false) GROUP BY 1"
    ).fetchall()
    return dict(rows)


def test_a_day_re_run_alone_touches_no_other_day_and_doubles_nothing(
    air, lake, monkeypatch, capsys
) -> None:
    catalog, broker = air
    history = [
        at
        for k in range(COPIES)
        for series in ngsi_data.history(
            ngsi_data.copy_id(ngsi_data.sample("AirQualityObserved")["id"], k)
        ).values()
        for at, _ in series
    ]
    expected = dict(Counter(at[:10] for at in history))
    assert expected == {"2016-03-15": COPIES * 5 * ngsi_data.HOURS}
    outcomes = run(lake, catalog, ["air"], partitions=["2016-03-14..2016-03-16"], workers=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert [o.source for o in outcomes] == [f"air~2016-03-1{d}" for d in (4, 5, 6)]
    assert _observations(lake) == expected
    asked = [parse_qs(urlsplit(s).query) for s in broker.seen if "temporal" in s]
    day = {"timerel": ["between"], "timeAt": ["2016-03-15T00:00:00Z"]}
    assert any(q.items() >= day.items() for q in asked), asked[:3]  # the broker saw the day
    assert {q["endTimeAt"][0] for q in asked if q.items() >= day.items()} == {
        "2016-03-15T23:59:59.999999Z"
    }
    before = _landed(lake, "air")
    features = pq.read_table(lake.partition("features", "air")).num_rows

    monkeypatch.setenv("CITYPIPE_CATALOG", str(lake.root.parent / "catalog.yaml"))
    argv = ["run", "--lake", str(lake.root), "--source", "air", "--partition", "2016-03-15"]
    assert main(argv) == 0
    assert "air~2016-03-15" in capsys.readouterr().out
    after = _landed(lake, "air")
    assert after["2016-03-15"][0] != before["2016-03-15"][0]
    assert {d: v for d, v in after.items() if d != "2016-03-15"} == {
        d: v for d, v in before.items() if d != "2016-03-15"
    }
    assert _observations(lake) == expected  # each value once, after the re-run too
    assert pq.read_table(lake.partition("features", "air")).num_rows == features
    _, rows = warehouse.query(lake, "SELECT count(*) FROM observations")
    assert rows == [(COPIES * 5 * ngsi_data.HOURS,)]


def test_a_plain_run_harvests_the_days_not_landed_yet(tmp_path, lake) -> None:
    start = datetime.now(UTC).date() - timedelta(days=2)
    with serve_broker(loaded(copies=COPIES)) as broker:
        entry = {"url": f"{broker.url}{HISTORY}", "partitions": {"daily": start}}
        catalog = _catalog(tmp_path, "air", entry)
        days = [str(start), str(start + timedelta(days=1))]
        first = run(lake, catalog, workers=2)
        assert {o.source: o.ok for o in first} == {f"air~{d}": True for d in days}
        (again,) = run(lake, catalog)
        assert again.ok and again.unchanged


def test_the_days_are_dagster_partitions_and_a_schedule_asks_for_yesterday(tmp_path) -> None:
    catalog = _catalog(
        tmp_path,
        "air",
        {"url": f"http://127.0.0.1:9{HISTORY}", "partitions": {"daily": date(2026, 11, 1)}},
    )
    defs = build_definitions(catalog, LakeResource(root=str(tmp_path / "lake")))
    found = defs.resolve_assets_def(harmonised_key("air")).partitions_def
    assert isinstance(found, DailyPartitionsDefinition)
    assert found.get_first_partition_key() == "2026-11-01"
    assert found.timezone == "UTC"
    schedule = defs.resolve_schedule_def("ingest_air_daily")
    with DagsterInstance.ephemeral() as instance:
        context = build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 11, 25, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        (request,) = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-24"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"partitions": {"daily": "soon"}}, "partitions.daily: "),
        ({"partitions": {"hourly": "2026-11-01"}}, "partitions.hourly: "),
        ({"partitions": {"daily": "2026-11-01"}, "datetime": "2026-11-01/.."}, "drop datetime:"),
        ({"partitions": {"daily": "2026-11-01"}, "schedule": "0 6 * * *"}, "drop schedule:"),
    ],
)
def test_a_wrong_partitions_entry_is_refused_in_one_line(tmp_path, entry, message) -> None:
    catalog = _catalog(tmp_path, "air", {"url": f"http://127.0.0.1:9{HISTORY}", **entry})
    with pytest.raises(ConfigurationError, match=message) as error:
        catalog.get("air")
    assert "\n" not in str(error.value)


def test_partitions_are_for_a_url_entry(tmp_path) -> None:
    catalog = _catalog(
        tmp_path, "air", {"path": "a.geojson", "partitions": {"daily": "2026-11-01"}}
    )
    with pytest.raises(ConfigurationError, match="partitions apply to a url: source"):
        catalog.get("air")


def test_days_beside_tiles_each_run_in_a_job_of_their_own(tmp_path, lake) -> None:
    """A Dagster job has one partitions definition: a daily source and a tiled one (jena's
    parking lots, 103 features, SOURCES.md, as its one tile) load and run side by side."""
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    shutil.copyfile(SAMPLES / "jena_parking.geojson", tiles / "jena.geojson")
    with serve_broker(loaded(copies=COPIES)) as broker:
        path = tmp_path / "catalog.yaml"
        sources = {
            "air": {"url": f"{broker.url}{HISTORY}", "partitions": {"daily": "2016-03-15"}},
            "parking": {"path": "tiles/*.geojson"},
        }
        path.write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
        catalog = load_catalog(path)
        defs = build_definitions(catalog, LakeResource(root=str(lake.root)))
        Definitions.validate_loadable(defs)
        (day,) = run(lake, catalog, ["air"], partitions=["2016-03-15"])
        (tile,) = run(lake, catalog, ["parking"])
    assert (day.source, day.ok, day.features) == ("air~2016-03-15", True, COPIES)
    assert (tile.source, tile.ok, tile.features) == ("parking~jena.geojson", True, 103)
    query = "SELECT source, count(*) FROM features GROUP BY source ORDER BY source"
    assert warehouse.query(lake, query)[1] == [("air", COPIES), ("parking", 103)]
