"""The GX validation step: checks from schemas/feature-v1.yaml, what they report, Data Docs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import shapely
import yaml
from conftest import SAMPLES

from citypipe import schemas
from citypipe.core import datadocs, gxenv
from citypipe.core import ingest as ingest_module
from citypipe.core.checks import CHECKS, CheckResult, check_specs
from citypipe.core.validate import Validator

JENA = SAMPLES / "jena_parking.geojson"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
BOW_TIE = shapely.Polygon([(11.0, 50.0), (11.1, 50.1), (11.1, 50.0), (11.0, 50.1), (11.0, 50.0)])


def row(i: int, **over: Any) -> dict[str, Any]:
    """One feature row of schema v1 for source `t`: a point in Jena unless overridden."""
    geom = over.pop("geom", shapely.Point(11.58 + i / 1000, 50.92))
    r: dict[str, Any] = {
        "feature_id": f"t/{i}",
        "source": "t",
        "source_id": str(i),
        "theme": "parking",
        "feature_class": "Parking",
        "name": f"P{i}",
        "properties": "{}",
        "source_crs": "OGC:CRS84",
        "source_format": "GeoJSON",
        "ingested_at": NOW,
    }
    if geom is not None:
        r["geometry"] = shapely.to_wkb(geom)
        xmin, ymin, xmax, ymax = shapely.bounds(geom)
        r["bbox"] = {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}
    r.update(over)
    return r


def batch(*rows: dict[str, Any]) -> pa.RecordBatch:
    """A RecordBatch of the lake's Arrow schema, as the harmoniser hands it over."""
    schema = schemas.feature_schema().arrow
    return pa.RecordBatch.from_pylist(list(rows), schema=schema)


def finish(
    v: Validator, n: int, declared: int | None = None, rejects: int = 0
) -> dict[str, CheckResult]:
    """Validator.finish for a run of `n` records; the results by check name."""
    results = v.finish(records=n, features=n - rejects, rejects=rejects, declared_count=declared)
    assert [r.name for r in results] == [s.name for s in check_specs()]
    return {r.name: r for r in results}


def failed(results: dict[str, CheckResult]) -> set[str]:
    return {name for name, r in results.items() if not r.passed}


@pytest.fixture(autouse=True)
def _quiet_cwd(tmp_path, monkeypatch, capsys):
    """Each test runs in an empty working directory that must stay empty, and prints nothing."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield
    assert list(cwd.iterdir()) == [], "validation wrote into the working directory"
    assert capsys.readouterr().out == "", "validation printed to stdout"


# -- specs -----------------------------------------------------------------------------------


def test_check_specs_are_the_checks_of_the_yaml():
    raw = yaml.safe_load((Path(schemas.__file__).parent / "feature-v1.yaml").read_text())
    expected = []
    for col in raw["columns"]:
        for check in col.get("checks", []):
            name = check if isinstance(check, str) else next(iter(check))
            expected.append((f"{col['name']}_{CHECKS[name].suffix}", False))
    expected += [(name, True) for name in raw.get("table_checks", [])]
    specs = check_specs()
    assert [(s.name, s.blocking) for s in specs] == expected
    assert len({s.name for s in specs}) == len(specs)
    assert all(s.description for s in specs)
    named = {"feature_id_unique", "feature_id_not_null", "theme_in_vocabulary", "bbox_lon_range",
             "bbox_lat_range", "geometry_valid", "matches_declared_count"}  # fmt: skip
    assert named <= {s.name for s in specs}


def test_suite_is_generated_from_the_yaml(tmp_path):
    v = Validator("t")
    v.add(batch(row(0)))
    finish(v, 1)
    v.write_docs(tmp_path / "docs")  # the suite is in the context, as the Data Docs show it
    suite = gxenv.context().suites.get(v.suite_name)
    by_check: dict[str, list[str]] = {}
    for e in suite.expectations:
        by_check.setdefault(e.meta["citypipe_check"], []).append(e.expectation_type)
    assert set(by_check) == {s.name for s in check_specs()}
    assert by_check["feature_id_unique"] == ["expect_column_values_to_be_unique"]
    assert by_check["feature_id_not_null"] == ["expect_column_values_to_not_be_null"]
    assert by_check["bbox_lon_range"] == ["expect_column_values_to_be_between"] * 2
    theme = next(e for e in suite.expectations if e.meta["citypipe_check"] == "theme_in_vocabulary")
    assert set(theme.value_set) == set(schemas.themes())


# -- row-level checks ------------------------------------------------------------------------


def test_clean_batch_passes_every_check():
    v = Validator("t")
    v.add(batch(*(row(i) for i in range(20))))
    results = finish(v, 20, declared=20)
    assert failed(results) == set()
    assert all(r.failed == 0 and r.samples == [] for r in results.values())


def test_null_geometry_and_bbox_pass():
    v = Validator("t")
    v.add(batch(row(0, geom=None), row(1)))
    assert failed(finish(v, 2)) == set()


def test_duplicate_feature_id_in_one_batch():
    v = Validator("t")
    v.add(batch(row(0), row(1), row(2), row(3, feature_id="t/1"), row(4)))
    # the first row with the id passes, the repeat fails
    results = finish(v, 5)
    assert failed(results) == {"feature_id_unique"}
    assert results["feature_id_unique"].failed == 1
    assert results["feature_id_unique"].samples == [
        "t/1: feature_id 't/1' is not unique: an earlier row of this run has it"
    ]


def test_duplicate_feature_id_across_batches():
    v = Validator("t")
    v.add(batch(row(0), row(1), row(2)))
    v.add(batch(row(3), row(2), row(4), row(5, feature_id="t/0")))
    results = finish(v, 7)
    assert failed(results) == {"feature_id_unique"}
    assert results["feature_id_unique"].failed == 2
    first, second = results["feature_id_unique"].samples
    assert first.startswith("t/2: feature_id 't/2' is not unique")
    assert second.startswith("t/0: feature_id 't/0' is not unique")


def test_null_feature_id():
    v = Validator("t")
    v.add(batch(row(0), row(1, feature_id=None), row(2, feature_id=None)))
    results = finish(v, 3)
    assert failed(results) == {"feature_id_not_null"}  # two nulls do not repeat an id
    assert results["feature_id_not_null"].samples == ["<no feature_id>: feature_id is null"] * 2


def test_theme_outside_the_vocabulary():
    v = Validator("t")
    v.add(batch(row(0), row(1, theme="foo"), row(2)))
    results = finish(v, 3)
    assert failed(results) == {"theme_in_vocabulary"}
    assert results["theme_in_vocabulary"].failed == 1
    assert results["theme_in_vocabulary"].samples == ["t/1: theme 'foo' is not in the vocabulary"]


def test_longitude_200():
    v = Validator("t")
    v.add(batch(row(0), row(1, geom=shapely.Point(200, 50))))
    results = finish(v, 2)
    assert failed(results) == {"bbox_lon_range"}
    assert results["bbox_lon_range"].failed == 1
    [sample] = results["bbox_lon_range"].samples
    assert sample.startswith("t/1: bbox_xmin 200.0 is not a longitude within [-180, 180]")
    assert "bbox_xmax 200.0" in sample


def test_latitude_out_of_range():
    v = Validator("t")
    v.add(batch(row(0, geom=shapely.Point(11, -95))))
    results = finish(v, 1)
    assert failed(results) == {"bbox_lat_range"}
    assert results["bbox_lat_range"].samples[0].startswith("t/0: bbox_ymin -95.0 is not a latitude")


def test_invalid_geometry():
    assert not BOW_TIE.is_valid
    v = Validator("t")
    v.add(batch(row(0), row(1, geom=BOW_TIE), row(2)))
    results = finish(v, 3)
    assert failed(results) == {"geometry_valid"}
    assert results["geometry_valid"].failed == 1
    [sample] = results["geometry_valid"].samples
    assert sample.startswith("t/1: geometry is not valid: Self-intersection")


def test_unreadable_wkb_is_invalid():
    v = Validator("t")
    v.add(batch(row(0, geometry=b"\x01\x02")))
    results = finish(v, 1)
    assert results["geometry_valid"].samples == ["t/0: geometry is not valid: unreadable WKB"]


def test_row_failing_two_checks_counts_in_both():
    v = Validator("t")
    v.add(batch(row(0, theme="foo", geom=shapely.Point(11, 91))))
    results = finish(v, 1)
    assert failed(results) == {"theme_in_vocabulary", "bbox_lat_range"}
    assert results["theme_in_vocabulary"].failed == results["bbox_lat_range"].failed == 1


# -- source-level check ----------------------------------------------------------------------


def test_matches_declared_count():
    specs = {s.name: s for s in check_specs()}
    assert specs["matches_declared_count"].blocking
    assert not any(s.blocking for n, s in specs.items() if n != "matches_declared_count")

    def run(declared: int | None, rejects: int = 0) -> CheckResult:
        v = Validator("t")
        v.add(batch(*(row(i) for i in range(3))))
        return finish(v, 3 + rejects, declared=declared, rejects=rejects)["matches_declared_count"]

    assert run(None).passed
    assert run(3).passed
    assert run(5, rejects=2).passed  # features + rejects
    bad = run(5)
    assert not bad.passed and bad.failed == 1
    assert bad.samples == ["3 features + rejects, the source declares 5"]


def test_empty_run():
    v = Validator("t")
    v.add(batch())
    assert failed(finish(v, 0, declared=4)) == {"matches_declared_count"}
    again = finish(v, 0, declared=None)  # finish can be asked again; nothing carries over
    assert failed(again) == set() and again["matches_declared_count"].samples == []


def test_preparing_validation_is_not_a_sources_seconds(lake, monkeypatch):
    """GX's import and the suite, once a process, are its start-up: before, the source of a
    run that validated first showed them (3.3 s for Barcelona's 465 bicing stations, where the
    others took 0.02-0.08 s)."""
    ingest_module.prepare()  # GX imported and the suite built, as a run's first source does
    prepared: list[str] = []

    def slow_prepare() -> None:  # two seconds more of start-up
        time.sleep(2.0)
        prepared.append("once")

    monkeypatch.setattr(ingest_module, "prepare", slow_prepare)
    report = ingest_module.ingest(SAMPLES / "jena_parking.geojson", "jena", lake)
    assert prepared == ["once"] and report.features == 103 and report.seconds < 2.0


# -- Data Docs -------------------------------------------------------------------------------


def test_write_docs(tmp_path):
    docs = tmp_path / "docs"
    v = Validator("t")
    with pytest.raises(RuntimeError):
        v.write_docs(docs)
    v.add(batch(row(0), row(1, theme="foo")))
    finish(v, 2, declared=2)
    v.write_docs(docs)
    index = docs / "index.html"
    assert index.is_file()
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == 1 and "/t/" in pages[0].as_posix()
    assert "theme" in pages[0].read_text()
    assert (docs / "expectations" / f"{v.suite_name}.html").is_file()
    [stored] = (docs / "results").rglob("*.json")
    result = json.loads(stored.read_text())
    assert result["success"] is False
    assert result["meta"]["run_id"]["run_name"] == "t"
    checks = {r["expectation_config"]["meta"]["citypipe_check"] for r in result["results"]}
    assert checks == {s.name for s in check_specs()}

    # a second source gets its own page; the index lists both
    w = Validator("u")
    w.add(batch(row(0)))
    finish(w, 1)
    w.write_docs(docs)
    assert len(list((docs / "validations").rglob("*.html"))) == 2
    text = index.read_text()
    assert "/t/" in text and "/u/" in text
    assert {p.name for p in docs.iterdir()} <= {"index.html", "static", "validations",
                                                    "expectations", "results", ".lock"}  # fmt: skip


RUNS = {  # batches of a run, its records and declared count, and the expectations it fails
    # (the latitude check is two: ymin and ymax)
    "clean": ([[row(0), row(1)]], 2, 2, 0),
    "failing": ([[row(0), row(1, theme="foo"), row(2, geom=BOW_TIE)]], 4, 5, 3),
    "duplicates across batches": (
        [[row(0), row(1)], [row(0), row(2, geometry=b"\x01")]],
        4,
        None,
        2,
    ),
    "latitude 91, no id": ([[row(0, feature_id=None, geom=shapely.Point(11, 91))]], 1, None, 3),
    "empty": ([[]], 0, 4, 1),
}


@pytest.mark.parametrize("run", RUNS)
def test_results_are_stored_as_gx_s_own_store_writes_them(tmp_path, run):
    from great_expectations.data_context.store import ValidationResultsStore

    batches, records, declared, failing = RUNS[run]
    v = Validator("t")
    for rows in batches:
        v.add(batch(*rows))
    finish(v, records, declared=declared)
    v.write_docs(tmp_path / "docs", render=False)
    [stored] = (tmp_path / "docs" / "results").rglob("*.json")
    gx = ValidationResultsStore(store_backend={"class_name": "InMemoryStoreBackend"})
    assert stored.read_text() == gx.serialize(v._result)
    assert json.loads(stored.read_text())["statistics"]["unsuccessful_expectations"] == failing


def test_docs_keep_the_last_runs_of_a_source(tmp_path, monkeypatch):
    monkeypatch.setattr(datadocs, "DOCS_HISTORY", 2)
    docs = tmp_path / "docs"
    for _ in range(3):
        v = Validator("t")
        v.add(batch(row(0)))
        finish(v, 1)
        v.write_docs(docs)
    assert len(list((docs / "results").rglob("*.json"))) == 2
    assert len(list((docs / "validations").rglob("*.html"))) == 2


# -- end to end ------------------------------------------------------------------------------


def test_ingest_jena(tmp_path):
    from citypipe.core.ingest import ingest
    from citypipe.core.lake import Lake

    lake = Lake(tmp_path / "lake")
    report = ingest(JENA, "jena", lake)
    assert report.features == 103  # the MANIFEST's count for jena_parking.geojson
    assert [c.name for c in report.checks] == [s.name for s in check_specs()]
    assert report.checks_failed == 0, [c for c in report.checks if not c.passed]
    assert (lake.docs / "index.html").is_file()
    assert list((lake.docs / "validations").rglob("*.html"))
    assert "jena" in (lake.docs / "index.html").read_text()
