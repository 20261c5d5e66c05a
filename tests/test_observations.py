"""The observations table: append-only, each observation once, day partitions, a failed run
storing nothing; read back by pyarrow, DuckDB and pandas."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypipe.connectors import registry
from citypipe.connectors.base import FileConnector, Observation, SourceBatch, SourceInfo
from citypipe.core import lake_layout, warehouse
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.core.observations import NO_TIME, UNREADABLE_TIME
from citypipe.geo.errors import DataError

MAGIC = b"SENSORS\n"


class SensorConnector(FileConnector):
    """A sensor feed as the NGSI connectors hand one over: a JSON line per station (id, lon,
    lat, its time, its values with their own times), `batch` stations a batch. A line
    `"fail"` makes the read fail there, as a broken feed does."""

    name = "sensors"
    title = "Sensors"
    known_options = frozenset({"batch"})

    @classmethod
    def sniff(cls, head: bytes) -> float:
        return 1.0 if head.startswith(MAGIC) else 0.0

    def inspect(self) -> SourceInfo:
        return SourceInfo(format="Sensors", crs="OGC:CRS84")

    def read(self) -> Iterator[SourceBatch]:
        lines = [json.loads(x) for x in self.path.read_bytes()[len(MAGIC) :].splitlines()]
        size = int(self.options.get("batch", 1000))
        for start in range(0, len(lines), size):
            yield self._batch(lines[start : start + size])

    @staticmethod
    def _batch(stations: list) -> SourceBatch:
        observations = []
        for i, s in enumerate(stations):
            if s == "fail":
                raise DataError("the feed broke off")
            for v in s["values"]:
                number = v["value"] if isinstance(v["value"], int | float) else None
                observations.append(
                    Observation(
                        record=i,
                        attribute=v["attribute"],
                        value=number,
                        value_text=None if number is not None else v["value"],
                        unit_code=v.get("unit"),
                        observed_at=v.get("at"),
                        dataset_id=v.get("dataset"),
                    )
                )
        return SourceBatch(
            source_ids=[s["id"] for s in stations],
            geometries=np.array([shapely.Point(s["lon"], s["lat"]) for s in stations]),
            properties=[{"station": s["id"]} for s in stations],
            records=[json.dumps(s) for s in stations],
            crs="OGC:CRS84",
            feature_classes=["AirQualityObserved"] * len(stations),
            observed_at=[s.get("at") for s in stations],
            observations=observations,
        )


@pytest.fixture
def feed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Writes a feed file of the given stations and returns its path."""
    monkeypatch.setitem(registry.BUILTIN, "sensors", f"{__name__}:SensorConnector")
    registry.available.cache_clear()
    registry.load.cache_clear()
    count = iter(range(1_000_000))

    def write(stations: list) -> Path:
        path = tmp_path / f"feed{next(count)}.txt"
        path.write_bytes(MAGIC + b"\n".join(json.dumps(s).encode() for s in stations))
        return path

    yield write
    registry.available.cache_clear()
    registry.load.cache_clear()


def station(sid: str, values: list, at: str | None = "2016-03-15T11:00:00Z", lon: float = -3.71):
    return {"id": sid, "lon": lon, "lat": 40.42, "at": at, "values": values}


def value(attribute: str, v, at: str | None, unit: str | None = None, dataset: str | None = None):
    return {"attribute": attribute, "value": v, "at": at, "unit": unit, "dataset": dataset}


def stored(lake: Lake) -> list[dict]:
    folder = lake.root / "observations"
    if not folder.exists():
        return []
    rows = pq.read_table(folder, partitioning=ds.HivePartitioning.discover()).to_pylist()
    return sorted(
        rows,
        key=lambda r: (r["observed_at"], r["feature_id"], r["attribute"], r["dataset_id"] or ""),
    )


def files(lake: Lake) -> list[str]:
    root = lake.root / "observations"
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*.parquet"))


def test_values_land_with_their_units_times_and_days(feed, lake: Lake) -> None:
    path = feed(
        [
            station(
                "madrid-28079004",
                [
                    value("NO2", 69, "2016-03-15T11:00:00Z", "GQ"),
                    value("CO", 500, "2016-03-15T23:30:00-01:00", "GP"),  # 00:30 UTC next day
                    value("airQualityLevel", "moderate", None),  # the feature's own time
                ],
            ),
        ]
    )
    report = ingest(path, "air", lake, validate=False)
    assert report.observations == 3
    rows = stored(lake)
    assert [
        (r["feature_id"], r["attribute"], r["value"], r["value_text"], r["unit_code"]) for r in rows
    ] == [
        ("air/madrid-28079004", "NO2", 69.0, None, "GQ"),
        ("air/madrid-28079004", "airQualityLevel", None, "moderate", None),
        ("air/madrid-28079004", "CO", 500.0, None, "GP"),
    ]
    assert [r["observed_at"] for r in rows] == [
        datetime(2016, 3, 15, 11, tzinfo=UTC),
        datetime(2016, 3, 15, 11, tzinfo=UTC),
        datetime(2016, 3, 16, 0, 30, tzinfo=UTC),
    ]
    run = report.run_id
    assert files(lake) == [f"day=2016-03-15/{run}.parquet", f"day=2016-03-16/{run}.parquet"]
    assert {r["run_id"] for r in rows} == {run} and {r["source"] for r in rows} == {"air"}


def test_a_time_without_offset_is_utc(feed, lake: Lake) -> None:
    path = feed([station("s1", [value("NO2", 1, "2016-03-15T23:59:59")])])
    ingest(path, "air", lake, validate=False)
    assert stored(lake)[0]["observed_at"] == datetime(2016, 3, 15, 23, 59, 59, tzinfo=UTC)
    assert files(lake)[0].startswith("day=2016-03-15/")


def test_observations_without_a_time_are_counted_not_stored(feed, lake: Lake) -> None:
    path = feed(
        [
            station(
                "s1",
                [value("NO2", 1, None), value("CO", 2, "yesterday"), value("SO2", 4, None)],
                at=None,
            ),
            station("s2", [value("NO2", 3, None)]),
            station("s3", [value("NO2", 5, None)], at=None),
        ]
    )
    report = ingest(path, "air", lake, validate=False)
    assert report.observations == 1
    # counted in features, as the run's warnings are: s1 and s3 have values without a time
    assert report.warnings[NO_TIME] == 2 and report.warnings[UNREADABLE_TIME] == 1
    assert [r["feature_id"] for r in stored(lake)] == ["air/s2"]


def test_a_rejected_record_takes_its_observations_with_it(feed, lake: Lake) -> None:
    path = feed(
        [
            station("ok", [value("NO2", 1, "2016-03-15T11:00:00Z")]),
            station("far", [value("NO2", 2, "2016-03-15T11:00:00Z")], lon=400.0),
            station("ok2", [value("NO2", 3, "2016-03-15T11:00:00Z")]),
        ]
    )
    report = ingest(path, "air", lake, validate=False, options={"batch": 2})
    assert report.rejects == 1
    assert [(r["feature_id"], r["value"]) for r in stored(lake)] == [
        ("air/ok", 1.0),
        ("air/ok2", 3.0),
    ]


def history(stations: int, hours: int, start_hour: int = 0) -> list:
    """Hourly values of NO2 (two instruments: datasets a and b) and a text level."""
    out = []
    for s in range(stations):
        values = []
        for h in range(start_hour, start_hour + hours):
            at = f"2016-03-{1 + h // 24:02d}T{h % 24:02d}:00:00Z"
            values += [
                value("NO2", s * 1000 + h, at, "GQ", "urn:a"),
                value("NO2", s * 1000 + h + 0.5, at, "GQ", "urn:b"),
                value("level", f"l{h}", at),
            ]
        out.append(station(f"s{s}", values))
    return out


def test_a_re_run_stores_each_observation_once(feed, lake: Lake) -> None:
    path = feed(history(3, 48))
    first = ingest(path, "air", lake, validate=False, options={"batch": 2})
    assert first.observations == 3 * 48 * 3
    before = {f: (lake.root / "observations" / f).stat().st_mtime_ns for f in files(lake)}
    again = ingest(path, "air", lake, validate=False)
    assert again.observations == 0
    assert len(stored(lake)) == 3 * 48 * 3
    after = {f: (lake.root / "observations" / f).stat().st_mtime_ns for f in files(lake)}
    assert after == before  # nothing rewritten, nothing added


def test_an_overlapping_harvest_adds_only_what_is_new(feed, lake: Lake) -> None:
    ingest(feed(history(2, 30)), "air", lake, validate=False)  # hours 0-29: 1 and 2 March
    report = ingest(feed(history(2, 30, start_hour=20)), "air", lake, validate=False)  # 20-49
    assert report.observations == 2 * 20 * 3  # hours 30-49 only
    rows = stored(lake)
    assert len(rows) == 2 * 50 * 3
    keys = [(r["feature_id"], r["attribute"], r["dataset_id"], r["observed_at"]) for r in rows]
    assert len(set(keys)) == len(keys)
    second = report.run_id
    assert [f for f in files(lake) if second in f] == [
        f"day=2016-03-02/{second}.parquet",  # hours 30-47
        f"day=2016-03-03/{second}.parquet",  # hours 48-49
    ]
    # the other run's copy of hours 20-29 was not stored twice, the first kept
    assert {
        r["run_id"] for r in rows if r["observed_at"] < datetime(2016, 3, 2, 6, tzinfo=UTC)
    } == {next(r["run_id"] for r in rows if r["observed_at"] == datetime(2016, 3, 1, tzinfo=UTC))}


def test_the_same_observation_twice_in_one_run_is_stored_once(feed, lake: Lake) -> None:
    at = "2016-03-15T11:00:00Z"
    path = feed(
        [
            station(
                "s1", [value("NO2", 1, at), value("NO2", 2, at), value("NO2", 3, at, dataset="x")]
            ),
            station("s2", [value("NO2", 4, "2016-03-15T12:00:00+01:00")]),  # 11:00 UTC
        ]
    )
    assert ingest(path, "air", lake, validate=False).observations == 3
    assert [(r["feature_id"], r["value"], r["dataset_id"]) for r in stored(lake)] == [
        ("air/s1", 1.0, None),  # the first of the two
        ("air/s1", 3.0, "x"),
        ("air/s2", 4.0, None),
    ]


def test_a_failed_run_leaves_the_observations_untouched(feed, lake: Lake) -> None:
    ingest(feed(history(2, 24)), "air", lake, validate=False)
    before = {f: (lake.root / "observations" / f).read_bytes() for f in files(lake)}
    broken = feed([*history(2, 24, start_hour=24), "fail"])
    with pytest.raises(DataError, match="broke off"):
        ingest(broken, "air", lake, validate=False, options={"batch": 1})
    assert {f: (lake.root / "observations" / f).read_bytes() for f in files(lake)} == before
    assert not any(lake.staging.iterdir())
    # the failed run's observations come with its next run that lands
    report = ingest(feed(history(2, 24, start_hour=24)), "air", lake, validate=False)
    assert report.observations == 2 * 24 * 3


def test_a_run_killed_after_its_switch_is_linked_by_the_next(feed, lake: Lake) -> None:
    report = ingest(feed(history(1, 2)), "air", lake, validate=False)
    day = lake.root / "observations" / "day=2016-03-01" / f"{report.run_id}.parquet"
    row = lake.root / "history" / "air" / f"{report.run_id}.parquet"
    day.unlink()  # as if the process died between the switch and the links (the row's last)
    row.unlink()
    again = ingest(feed(history(1, 2)), "air", lake, validate=False)
    assert day.exists() and row.exists() and again.observations == 0
    assert len(stored(lake)) == 2 * 3


def test_observations_outlive_the_run_folder(feed, lake: Lake) -> None:
    first = ingest(feed(history(1, 2)), "air", lake, validate=False)
    ingest(feed(history(1, 2, start_hour=2)), "air", lake, validate=False)
    lake_layout.removed()  # the replaced run's folder goes on a thread of its own
    assert not (lake.root / ".runs" / "air" / first.run_id).exists()
    assert len(stored(lake)) == 4 * 3


def test_two_sources_keep_their_own(feed, lake: Lake) -> None:
    path = feed(history(1, 2))
    assert ingest(path, "north", lake, validate=False).observations == 6
    assert ingest(path, "south", lake, validate=False).observations == 6
    assert {r["feature_id"] for r in stored(lake)} == {"north/s0", "south/s0"}


def test_sources_without_observations_write_none(sample, lake: Lake) -> None:
    ingest(sample("barcelona_drinking_fountains.geojson"), "fonts", lake, validate=False)
    assert not (lake.root / "observations").exists()
    warehouse.refresh(lake)
    columns, rows = warehouse.query(lake, "SELECT * FROM observations")
    assert rows == [] and columns[-1] == "day" and "observed_at" in columns


READINGS = st.lists(  # (station, attribute, instrument, hour of 1 to 3 March, value)
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["NO2", "CO"]),
        st.sampled_from([None, "urn:a"]),
        st.integers(0, 71),
        st.integers(0, 99),
    ),
    max_size=25,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=st.lists(READINGS, min_size=1, max_size=3))
def test_runs_store_the_first_of_every_observation(feed, tmp_path: Path, runs: list) -> None:
    lake = Lake(tmp_path / f"lake-{uuid.uuid4().hex}")
    first: dict[tuple, float] = {}
    for readings in runs:
        stations = []
        for s in range(3):
            values = [
                value(a, v, f"2016-03-{1 + h // 24:02d}T{h % 24:02d}:00:00Z", dataset=d)
                for (k, a, d, h, v) in readings
                if k == s
            ]
            stations.append(station(f"s{s}", values))
            for k, a, d, h, v in readings:
                if k == s:
                    at = datetime(2016, 3, 1 + h // 24, h % 24, tzinfo=UTC)
                    first.setdefault((f"air/s{s}", a, d, at), float(v))
        ingest(feed(stations), "air", lake, validate=False, options={"batch": 2})
    got = {
        (r["feature_id"], r["attribute"], r["dataset_id"], r["observed_at"]): r["value"]
        for r in stored(lake)
    }
    assert len(stored(lake)) == len(got) and got == first


def test_the_files_read_back_everywhere(feed, lake: Lake) -> None:
    ingest(feed(history(2, 30)), "air", lake, validate=False)
    folder = lake.root / "observations"
    expected = 2 * 30 * 3
    assert pq.read_table(folder).num_rows == expected
    import pandas as pd

    frame = pd.read_parquet(folder)
    assert len(frame) == expected and set(frame["day"].astype(str)) == {"2016-03-01", "2016-03-02"}
    count = duckdb.sql(
        f"SELECT count(*), count(DISTINCT day) FROM read_parquet('{folder}/*/*.parquet', "
        "hive_partitioning = true)"
    ).fetchone()
    assert count == (expected, 2)
    for file in folder.glob("*/*.parquet"):  # each day file in time order
        times = pq.read_table(file, columns=["observed_at"]).column(0).to_pylist()
        assert times == sorted(times)
        day = file.parent.name.removeprefix("day=")
        assert {t.date().isoformat() for t in times} == {day}


def test_the_warehouse_view_reads_only_the_days_asked(feed, lake: Lake) -> None:
    ingest(feed(history(2, 24 * 5)), "air", lake, validate=False)  # 1 to 5 March
    warehouse.refresh(lake)
    _, rows = warehouse.query(
        lake,
        "SELECT count(*), min(observed_at), max(observed_at) FROM observations "
        "WHERE day = DATE '2016-03-02' AND attribute = 'NO2'",
    )
    assert rows == [
        (2 * 24 * 2, datetime(2016, 3, 2, tzinfo=UTC), datetime(2016, 3, 2, 23, tzinfo=UTC))
    ]
    con = warehouse.connect(lake)
    try:  # the views name the files relative to the lake
        con.execute(f"SET file_search_path = '{lake.root}'")

        def files_read(where: str) -> str:
            plan = con.execute(f"EXPLAIN ANALYZE SELECT count(*) FROM observations {where}")
            text = "\n".join(str(cell) for row in plan.fetchall() for cell in row)
            return re.findall(r"Total Files Read: (\d+)", text)[0]

        assert files_read("WHERE day BETWEEN DATE '2016-03-02' AND DATE '2016-03-03'") == "2"
        assert files_read("") == "5"
    finally:
        con.close()


AIR = "urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00"
AIR_VALUES = {  # the normalized file's Properties with a number, and their unitCode
    ("co", 500.0, "GP"), ("no", 45.0, "GQ"), ("no2", 69.0, "GQ"), ("nox", 139.0, "GQ"),
    ("so2", 11.0, "GQ"), ("airQualityIndex", 65.0, None), ("precipitation", 0.0, None),
    ("relativeHumidity", 0.54, None), ("reliability", 0.7, None), ("temperature", 12.2, None),
    ("windDirection", 186.0, None), ("windSpeed", 0.64, None), ("pm4", 37.0, None),
    ("tpc", 108.0, None), ("tsp", 73.3, None), ("pressure", 1.1, None), ("charge", 5.0, None),
}  # fmt: skip


def test_the_corpus_air_quality_values_land_as_stated(corpus: Path, tmp_path: Path, lake: Lake):
    path = tmp_path / "air.jsonld"
    path.write_bytes((corpus / "ngsi-ld/AirQualityObserved/example-normalized.jsonld").read_bytes())
    first = ingest(path, "madrid_air", lake, validate=False)
    assert first.observations == len(AIR_VALUES)
    rows = stored(lake)
    assert {(r["attribute"], r["value"], r["unit_code"]) for r in rows} == AIR_VALUES
    assert {r["feature_id"] for r in rows} == {f"madrid_air/{AIR}"}
    # no attribute has an observedAt: the entity's dateObserved, 2016-03-15T11:00:00, in UTC
    assert {r["observed_at"] for r in rows} == {datetime(2016, 3, 15, 11, tzinfo=UTC)}
    assert files(lake) == [f"day=2016-03-15/{first.run_id}.parquet"]
    assert ingest(path, "madrid_air", lake, validate=False).observations == 0
    assert len(stored(lake)) == len(AIR_VALUES)
    warehouse.refresh(lake)
    _, found = warehouse.query(lake, "SELECT * FROM relationships")
    assert found == [
        (
            f"madrid_air/{AIR}",
            "refPointOfInterest",
            "urn:ngsi-ld:PointOfInterest:28079004-Pza.deEspanya",
            None,
        )
    ]


def test_ingest_says_how_many_observations_it_stored(corpus: Path, tmp_path: Path, capsys):
    from citypipe.cli import main

    path = tmp_path / "air.jsonld"
    path.write_bytes((corpus / "ngsi-ld/AirQualityObserved/example-normalized.jsonld").read_bytes())
    for stored_now in (len(AIR_VALUES), 0):
        assert main(["ingest", str(path), "--source", "air", "--lake", str(tmp_path / "lake")]) == 0
        said = [x for x in capsys.readouterr().out.splitlines() if x.startswith("observations")]
        assert said == (
            [f"observations stored: {stored_now} (new: those the lake held are not)"]
            if stored_now
            else []
        )
