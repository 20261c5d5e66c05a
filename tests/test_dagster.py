"""The Dagster side: definitions load, assets materialise on samples into a real lake and
DuckDB file under tmp_path, one failing source fails alone, the sensor and the schedules.

Materialising is slow, so these tests use two small GeoJSON samples (jena_parking: 103
features, freiburg: 19), copied into tmp_path before anything writes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from dagster import AssetCheckKey, Definitions, build_sensor_context, materialize

from citypipe.core import warehouse
from citypipe.core.catalog import Catalog, load_catalog
from citypipe.core.checks import check_specs
from citypipe.core.lake import Lake
from citypipe.core.violation_share import SPEC as VIOLATION_SHARE
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.assets import WAREHOUSE, build_assets, harmonised_key, raw_key
from citypipe.orchestration.definitions import build_definitions, checked, defs
from citypipe.orchestration.resources import LakeResource
from citypipe.orchestration.run import run

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
JENA = {"path": "samples/jena_parking.geojson", "theme": "parking"}
FREIBURG = {
    "path": "samples/freiburg_wfs110_GetFeature_parking_live_epsg25832.geojson",
    "theme": "parking",
    "fields": {"name": "park_name", "observed_at": "obs_ts"},
}


def write_catalog(tmp_path: Path, sources: dict[str, dict[str, Any]]) -> Catalog:
    """A catalog of `sources` in tmp_path, with copies of the samples it names beside it."""
    for entry in sources.values():
        sample = SAMPLES / Path(entry["path"]).name
        if sample.exists():
            (tmp_path / "samples").mkdir(exist_ok=True)
            shutil.copy(sample, tmp_path / "samples" / sample.name)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    return load_catalog(path)


def features_of(lake: Lake, source: str) -> int:
    _, rows = warehouse.query(lake, f"SELECT count(*) FROM features WHERE source = '{source}'")
    return int(rows[0][0])


def test_definitions_load_with_every_source_and_its_checks() -> None:
    loaded = defs()
    Definitions.validate_loadable(loaded)
    graph = loaded.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    for source in load_catalog().sources:
        assert {raw_key(source.name), harmonised_key(source.name)} <= keys
        assert {
            AssetCheckKey(harmonised_key(source.name), spec.name)
            for spec in (*check_specs(), VIOLATION_SHARE)
        } <= set(graph.asset_check_keys)
    assert WAREHOUSE in keys
    assert loaded.resolve_job_def("ingest_all")


def test_dagster_dev_can_run_each_step_in_a_process_of_its_own() -> None:
    """The multiprocess executor of `dagster dev` refuses a job whose outputs only live in the
    memory of one process (mem_io_manager); the harmonised asset's value, its IngestReport,
    must not make the job such a one."""
    from dagster._core.execution.plan.plan import can_isolate_steps

    from citypipe.orchestration.automation import INGEST_ALL

    assert can_isolate_steps(defs().resolve_job_def(INGEST_ALL))


def test_a_catalog_mistake_refuses_its_entry_alone_with_the_entry_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from citypipe.cli import main

    catalog = write_catalog(
        tmp_path,
        {
            "jena": JENA,
            "typo": {**FREIBURG, "theme": "nonsense"},
            "cron": {**FREIBURG, "schedule": "every morning"},
        },
    )
    assert sorted(s.name for s in catalog.sources) == ["cron", "jena"]
    with pytest.raises(ConfigurationError, match="source 'typo'.*unknown theme 'nonsense'"):
        catalog.get("typo")
    defs = build_definitions(catalog, LakeResource(root=str(tmp_path / "lake")))
    with pytest.raises(ConfigurationError, match="source 'cron': schedule 'every morning'"):
        checked(catalog).get("cron")
    # the UI shows both entries, each described by its mistake
    for name, mistake in (("typo", "unknown theme"), ("cron", "is not a cron expression")):
        described = defs.resolve_assets_def(harmonised_key(name)).descriptions_by_key
        assert mistake in described[harmonised_key(name)]
    # a run lands the good source and names each mistake in one line; exit 2
    monkeypatch.setenv("CITYPIPE_CATALOG", str(tmp_path / "catalog.yaml"))
    assert main(["run", "--lake", str(tmp_path / "lake")]) == 2
    out, err = capsys.readouterr()
    assert sorted(line.split(":")[1].strip() for line in err.splitlines()) == ["cron", "typo"]
    assert any(line.split()[:4] == ["jena", "GeoJSON", "103", "0"] for line in out.splitlines())
    assert features_of(Lake(tmp_path / "lake"), "jena") == 103


def test_materialize_samples_into_lake_and_warehouse(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path, {"jena_parking": JENA, "freiburg": FREIBURG})
    lake = Lake(tmp_path)
    resources = {"lake": LakeResource(root=str(tmp_path))}

    result = materialize(build_assets(catalog), resources=resources)

    assert result.success
    checks = result.get_asset_check_evaluations()
    expected = {
        AssetCheckKey(harmonised_key(n), spec.name)
        for n in ("jena_parking", "freiburg")
        for spec in (*check_specs(), VIOLATION_SHARE)
    }
    assert {c.asset_check_key for c in checks} == expected
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    snapshot = tmp_path / "raw" / "source=jena_parking" / "jena_parking.geojson"
    raw = result.asset_materializations_for_node("raw__jena_parking")[0].metadata
    assert snapshot.read_bytes() == (SAMPLES / "jena_parking.geojson").read_bytes()
    assert raw["sha256"].value == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert raw["format"].value == "geojson"
    harmonised = result.asset_materializations_for_node("harmonised__jena_parking")[0].metadata
    assert (harmonised["features"].value, harmonised["rejects"].value) == (103, 0)
    assert (tmp_path / "warehouse.duckdb").exists()
    assert features_of(lake, "jena_parking") == 103
    assert features_of(lake, "freiburg") == 19
    # the sources' validation pages, rendered once by the warehouse asset, and the index
    assert _pages(lake) == {"jena_parking", "freiburg"}


def _pages(lake: Lake) -> set[str]:
    """The sources with a validation page in the lake's Data Docs, which the index links."""
    index = (lake.docs / "index.html").read_text()
    pages = (lake.docs / "validations").glob("*/*/*/*.html")  # suite / source / run time / batch
    found = {p.parent.parent.name for p in pages}
    assert all(f"/{name}/" in index for name in found)
    return found


def test_a_failing_source_fails_alone(tmp_path: Path) -> None:
    (tmp_path / "garbage.bin").write_bytes(bytes(range(256)) * 16)
    catalog = write_catalog(tmp_path, {"freiburg": FREIBURG, "garbage": {"path": "garbage.bin"}})
    lake = Lake(tmp_path)

    freiburg, garbage = run(lake, catalog)

    assert (freiburg.source, freiburg.ok, freiburg.error) == ("freiburg", True, None)
    assert freiburg.features == 19
    assert freiburg.checks_passed == freiburg.checks_total > 0
    assert (garbage.source, garbage.ok) == ("garbage", False)
    assert f"{tmp_path / 'garbage.bin'}: not a format citypipe reads" in (garbage.error or "")
    # Dagster skips the warehouse after a failure; run() refreshes it and the reports for what
    # landed
    assert features_of(lake, "freiburg") == 19
    assert _pages(lake) == {"freiburg"}


def test_citypipe_run_with_a_failing_source_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    from citypipe.cli import main

    (tmp_path / "garbage.bin").write_bytes(bytes(range(256)) * 16)
    write_catalog(tmp_path, {"jena": JENA, "garbage": {"path": "garbage.bin"}})
    monkeypatch.setenv("CITYPIPE_CATALOG", str(tmp_path / "catalog.yaml"))
    assert main(["run", "--lake", str(tmp_path / "lake")]) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith(f"citypipe: garbage: {tmp_path / 'garbage.bin'}: not a format")
    assert any(line.split()[:4] == ["jena", "GeoJSON", "103", "0"] for line in out.splitlines())


def test_sensor_requests_all_sources_first_then_only_the_changed_one(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path, {"jena_parking": JENA, "freiburg": FREIBURG})
    definitions = build_definitions(catalog, LakeResource(root=str(tmp_path)))
    sensor = definitions.resolve_sensor_def("source_files_changed")

    def tick(cursor: str | None) -> tuple[set[Any] | None, str | None]:
        data = sensor.evaluate_tick(build_sensor_context(cursor=cursor, definitions=definitions))
        assert len(data.run_requests or []) <= 1
        selected = set(data.run_requests[0].asset_selection) if data.run_requests else None
        return selected, data.cursor

    first, cursor = tick(None)
    assert first == {
        *(raw_key(n) for n in ("jena_parking", "freiburg")),
        *(harmonised_key(n) for n in ("jena_parking", "freiburg")),
        WAREHOUSE,
    }
    assert tick(cursor)[0] is None
    changed = catalog.get("freiburg").path
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second, cursor = tick(cursor)
    assert second == {raw_key("freiburg"), harmonised_key("freiburg"), WAREHOUSE}
    assert tick(cursor)[0] is None


def test_a_schedule_for_each_source_with_schedule(tmp_path: Path) -> None:
    catalog = write_catalog(
        tmp_path, {"jena_parking": {**JENA, "schedule": "0 6 * * *"}, "freiburg": FREIBURG}
    )
    definitions = build_definitions(catalog, LakeResource(root=str(tmp_path)))

    assert [s.name for s in definitions.schedules or []] == ["ingest_jena_parking_schedule"]
    schedule = definitions.resolve_schedule_def("ingest_jena_parking_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    job = definitions.resolve_job_def(schedule.job_name)
    assert job.asset_layer.selected_asset_keys == {
        raw_key("jena_parking"),
        harmonised_key("jena_parking"),
        WAREHOUSE,
    }


def test_a_failed_blocking_check_keeps_the_source_out_of_the_lake(tmp_path: Path) -> None:
    """Freiburg declares numberMatched 19; a copy cut to 18 features must not land."""
    import json

    doc = json.loads((SAMPLES / FREIBURG["path"].split("/")[1]).read_text(encoding="utf-8"))
    assert doc["numberMatched"] == 19
    doc["features"] = doc["features"][:18]
    (tmp_path / "cut.geojson").write_text(json.dumps(doc), encoding="utf-8")
    catalog = write_catalog(tmp_path, {"cut": {"path": "cut.geojson"}, "jena_parking": JENA})
    lake = Lake(tmp_path)

    cut, jena = run(lake, catalog)

    assert not cut.ok and "matches_declared_count" in (cut.error or "")
    assert jena.ok
    assert features_of(lake, "cut") == 0 and features_of(lake, "jena_parking") == 103


def test_the_share_of_schema_violations_is_checked_without_blocking(tmp_path: Path) -> None:
    """20 entities, 2 of them listing Smart Data Models violations (10 %): above the default
    0.05 the check fails but the rows land; a source allowing 0.1 passes."""
    import json

    def spot(i: int) -> dict[str, Any]:
        properties: dict[str, Any] = {"type": "ParkingSpot", "status": "free"}
        if i in (3, 17):
            properties["citypipe:schema_violations"] = ["$: 'category' is a required property"]
        return {
            "type": "Feature",
            "id": f"spot-{i}",  # not an NGSI URN: read as GeoJSON
            "geometry": {"type": "Point", "coordinates": [-3.8 + i / 1000, 43.46]},
            "properties": properties,
        }

    spots = {"type": "FeatureCollection", "features": [spot(i) for i in range(20)]}
    (tmp_path / "spots.geojson").write_text(json.dumps(spots), encoding="utf-8")
    entry = {"path": "spots.geojson", "theme": "parking"}
    catalog = write_catalog(
        tmp_path, {"strict": entry, "lenient": {**entry, "max_violation_share": 0.1}}
    )

    result = materialize(
        build_assets(catalog), resources={"lake": LakeResource(root=str(tmp_path))}
    )

    assert result.success
    shares = {
        c.asset_key.path[-1]: c
        for c in result.get_asset_check_evaluations()
        if c.check_name == VIOLATION_SHARE.name
    }
    assert (shares["strict"].passed, shares["lenient"].passed) == (False, True)
    assert shares["strict"].metadata["failed"].value == 2
    assert shares["strict"].metadata["samples"].value == [
        "strict/spot-3: $: 'category' is a required property",
        "strict/spot-17: $: 'category' is a required property",
    ]
    assert features_of(Lake(tmp_path), "strict") == 20


def test_citypipe_run_is_remembered_by_the_dagster_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI (`make ui`: dagster dev on the same DAGSTER_HOME) shows the CLI's runs, their
    materialisations with where the rows are and the box they cover, and the checks."""
    import json

    from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

    from citypipe.orchestration.run import dagster_home

    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    catalog = write_catalog(tmp_path, {"jena_parking": JENA})
    lake = Lake(tmp_path / "lake")
    assert dagster_home(lake) == home
    run(lake, catalog)
    (again,) = run(lake, catalog)  # nothing changed: skipped, its checks reported again
    assert again.ok and again.unchanged and again.seconds is not None and again.seconds < 1
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        assert len(runs) == 2
        event = instance.get_latest_materialization_event(AssetKey(["harmonised", "jena_parking"]))
        assert event is not None and event.asset_materialization is not None
        meta = event.asset_materialization.metadata
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [AssetCheckKey(harmonised_key("jena_parking"), spec.name) for spec in check_specs()]
        )
        assert len(check) == len(check_specs())
    assert meta["features"].value == 103
    assert meta["output_crs"].value == "OGC:CRS84"
    assert Path(str(meta["path"].value)).is_file()
    columns = [c.name for c in meta["dagster/column_schema"].value.columns]
    assert columns[:2] == ["feature_id", "source"]
    # the box of the sample's own coordinates (plain JSON, not citypipe)
    points = [
        f["geometry"]["coordinates"]
        for f in json.loads((SAMPLES / "jena_parking.geojson").read_bytes())["features"]
        if f["geometry"] and f["geometry"]["type"] == "Point"
    ]
    box = meta["bbox"].value
    assert box["xmin"] <= min(p[0] for p in points) and box["xmax"] >= max(p[0] for p in points)
    assert box["ymin"] <= min(p[1] for p in points) and box["ymax"] >= max(p[1] for p in points)
    # a map of the 103 points, and the link to the source's own report page
    image = re.fullmatch(r"!\[map\]\(data:image/svg\+xml;base64,(.+)\)", meta["map_preview"].value)
    assert image is not None
    assert base64.b64decode(image[1]).decode().count("<circle") == len(points) == 103
    page = Path(urlparse(meta["validation_report"].value).path)
    assert page.name == "jena_parking.html" and "103" in page.read_text()


def test_a_source_older_than_its_freshness_fails_its_freshness_check(tmp_path: Path) -> None:
    """Both ingested, then evaluated a second later: `freshness: 1h` passes, `freshness: 1s`
    fails (a warning); the sensor that evaluates them runs from the start."""
    import time

    from dagster import AssetSelection, DagsterInstance, materialize

    catalog = write_catalog(
        tmp_path,
        {"hourly": {**JENA, "freshness": "1h"}, "second": {**JENA, "freshness": "1s"}},
    )
    resources = {"lake": LakeResource(root=str(tmp_path / "lake"))}
    defs = build_definitions(catalog, resources["lake"])
    assets, checks = build_assets(catalog), list(defs.asset_checks or [])
    assert [s.name for s in defs.sensors or []] == [
        "source_files_changed",
        "freshness_checks_sensor",
    ]
    with DagsterInstance.ephemeral() as instance:
        materialize(assets, instance=instance, resources=resources)
        time.sleep(1.5)
        result = materialize(
            [*assets, *checks],
            instance=instance,
            resources=resources,
            selection=AssetSelection.checks(*checks),
        )
    passed = {e.asset_key.path[-1]: e.passed for e in result.get_asset_check_evaluations()}
    assert passed == {"hourly": True, "second": False}


def test_freshness_takes_a_number_and_a_unit(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path, {"a": {**JENA, "freshness": "6h"}, "b": JENA})
    assert [s.freshness and s.freshness.total_seconds() for s in catalog.sources] == [21600, None]
    with pytest.raises(ConfigurationError, match="freshness"):
        write_catalog(tmp_path, {"a": {**JENA, "freshness": "daily"}}).get("a")
