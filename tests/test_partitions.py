"""Partitioned sources: a catalog entry naming a glob of tiles (or a list of them) is one Dagster
static partition per tile; each tile lands as its own file of the source's folder, which every
reader takes as one dataset; one partition runs alone from the CLI and leaves the others' files
as they were.

The tiles are three bundled CityGML samples (copied into tmp_path); the counts are their city
objects (the row classes of test_citygml), read from the files with lxml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import geopandas as gpd
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterInstance, Definitions, build_sensor_context
from lxml import etree
from test_citygml import CLASSES

from citypipe.cli import main
from citypipe.core import warehouse
from citypipe.core.catalog import Catalog, load_catalog
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import ConfigurationError
from citypipe.orchestration.assets import harmonised_key, raw_key
from citypipe.orchestration.definitions import build_definitions
from citypipe.orchestration.resources import LakeResource
from citypipe.orchestration.run import dagster_home, run

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "citygml"
TILES = (
    "denhaag_1BwBP_citygml1.gml",
    "sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml",
    "sig3d_v3_Building_and_garage_LOD2-EPSG25832.gml",
)
KEYS = [Path(t).stem for t in TILES]
DENHAAG = KEYS[0]


def _objects(path: Path) -> int:
    """City objects of a CityGML file that are rows (buildings, their parts, reliefs ...)."""
    return sum(etree.QName(e).localname in CLASSES for e in etree.parse(str(path)).iter("{*}*"))


@pytest.fixture
def tiles(tmp_path: Path) -> Path:
    folder = tmp_path / "tiles"
    folder.mkdir()
    for tile in TILES:
        shutil.copyfile(SAMPLES / tile, folder / tile)
    return folder


def _catalog(tmp_path: Path, entry: dict[str, object], **others: dict[str, object]) -> Catalog:
    path = tmp_path / "catalog.yaml"
    sources = {"buildings": {"theme": "building", **entry}, **others}
    path.write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    return load_catalog(path)


@pytest.fixture
def catalog(tmp_path: Path, tiles: Path) -> Catalog:
    return _catalog(tmp_path, {"path": "tiles/*.gml"})


def _partitions(catalog: Catalog, lake: Lake) -> list[str]:
    defs = build_definitions(catalog, LakeResource(root=str(lake.root)))
    keys = set()
    for key in (raw_key("buildings"), harmonised_key("buildings")):
        partitions = defs.resolve_assets_def(key).partitions_def
        assert partitions is not None
        keys.add(tuple(partitions.get_partition_keys()))
    (found,) = keys
    return list(found)


def test_a_tile_glob_or_list_gives_one_partition_per_tile(tmp_path, catalog, lake) -> None:
    assert _partitions(catalog, lake) == sorted(KEYS)
    listed = _catalog(tmp_path, {"tiles": [f"tiles/{t}" for t in TILES[:2]]})
    assert _partitions(listed, lake) == KEYS[:2]
    nothing = _catalog(tmp_path, {"path": "tiles/*.city.json"})
    with pytest.raises(ConfigurationError, match=r"tiles/\*\.city\.json: no file matches"):
        build_definitions(nothing, LakeResource(root=str(lake.root)))


def _landed(lake: Lake) -> dict[str, tuple[str, int, int]]:
    """Each tile's features file: the run file its link resolves to, its inode and mtime."""
    found = {}
    for link in (lake.root / "features" / "buildings").glob("*.parquet"):
        target = link.resolve(strict=True)
        found[link.stem] = (str(target), target.stat().st_ino, target.stat().st_mtime_ns)
    return found


def test_one_partition_from_the_cli_lands_that_tile_alone(
    catalog, lake, tiles, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("CITYPIPE_CATALOG", str(tiles.parent / "catalog.yaml"))
    argv = ["run", "--lake", str(lake.root), "--source", "buildings"]
    assert main([*argv, "--partition", DENHAAG]) == 0
    assert f"buildings~{DENHAAG}" in capsys.readouterr().out
    assert list(_landed(lake)) == [DENHAAG]
    assert pq.read_table(lake.partition("features", "buildings")).num_rows == _objects(
        tiles / TILES[0]
    )
    with DagsterInstance.from_config(str(dagster_home(lake))) as instance:
        assert instance.get_materialized_partitions(harmonised_key("buildings")) == {DENHAAG}

    assert main([*argv, "--partition", "no_such_tile"]) == 2
    assert f"no partition 'no_such_tile'; partitions: {', '.join(sorted(KEYS))}" in (
        capsys.readouterr().err
    )


def test_all_partitions_run_in_parallel_and_read_as_one_dataset(tmp_path, lake, tiles) -> None:
    """With a source of one file beside them (jena_parking: 103 features, SOURCES.md)."""
    shutil.copyfile(SAMPLES.parent / "jena_parking.geojson", tmp_path / "jena.geojson")
    catalog = _catalog(tmp_path, {"path": "tiles/*.gml"}, jena={"path": "jena.geojson"})
    outcomes = run(lake, catalog, workers=2)
    counts = {Path(t).stem: _objects(tiles / t) for t in TILES}
    assert {o.source: (o.ok, o.features) for o in outcomes} == {
        **{f"buildings~{k}": (True, n) for k, n in counts.items()},
        "jena": (True, 103),
    }
    folder = lake.partition("features", "buildings")
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{k}.parquet" for k in KEYS)
    total = sum(counts.values())
    assert pq.read_table(folder).num_rows == total
    assert len(gpd.read_parquet(folder)) == total
    assert duckdb.sql(f"SELECT count(*) FROM '{folder}/*.parquet'").fetchone() == (total,)
    query = "SELECT source, count(*) FROM features GROUP BY source ORDER BY source"
    assert warehouse.query(lake, query)[1] == [("buildings", total), ("jena", 103)]
    _, rows = warehouse.query(lake, "SELECT source, features FROM sources ORDER BY source")
    assert rows == [*sorted((f"buildings~{k}", n) for k, n in counts.items()), ("jena", 103)]
    with DagsterInstance.from_config(str(dagster_home(lake))) as instance:
        assert instance.get_materialized_partitions(harmonised_key("buildings")) == set(KEYS)

    again = run(lake, catalog, workers=2)
    assert all(o.ok and o.unchanged for o in again)


def test_rerunning_one_partition_leaves_the_others_files_untouched(catalog, lake) -> None:
    run(lake, catalog, workers=2)
    before = _landed(lake)
    (outcome,) = run(lake, catalog, ["buildings"], partitions=[DENHAAG], force=True)
    assert outcome.ok and not outcome.unchanged
    after = _landed(lake)
    assert after[DENHAAG][0] != before[DENHAAG][0]
    assert {k: v for k, v in after.items() if k != DENHAAG} == {
        k: v for k, v in before.items() if k != DENHAAG
    }
    assert not Path(before[DENHAAG][0]).exists()  # the replaced run's folder is gone


def test_the_sensor_asks_for_the_changed_tiles_and_a_schedule_runs_them_all(
    tmp_path, tiles, lake
) -> None:
    catalog = _catalog(tmp_path, {"path": "tiles/*.gml", "schedule": "0 6 * * *"})
    defs = build_definitions(catalog, LakeResource(root=str(lake.root)))
    Definitions.validate_loadable(defs)
    assert defs.resolve_schedule_def("ingest_partitions_buildings_schedule").job_name == (
        "ingest_partitions_buildings"
    )
    sensor = defs.resolve_sensor_def("source_files_changed")

    def tick(cursor: str | None) -> tuple[list[str | None], str | None]:
        data = sensor.evaluate_tick(build_sensor_context(cursor=cursor, definitions=defs))
        return [r.partition_key for r in data.run_requests or []], data.cursor

    first, cursor = tick(None)
    assert sorted(first) == sorted(KEYS)
    assert tick(cursor)[0] == []
    (tiles / TILES[1]).write_bytes((tiles / TILES[1]).read_bytes() + b"\n")
    assert tick(cursor)[0] == [KEYS[1]]


def test_a_source_landed_whole_or_as_tiles_is_never_both(lake, tiles) -> None:
    """A catalog entry turned from one file into tiles (or back): the folder holds the files
    of the last way it landed, not both, which a reader would add up."""
    folder = lake.partition("features", "buildings")
    ingest(tiles / TILES[0], "buildings", lake)
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]
    for key, tile in zip(KEYS[1:], TILES[1:], strict=True):
        ingest(tiles / tile, "buildings", lake, partition=key)
    assert sorted(p.name for p in folder.iterdir()) == [f"{k}.parquet" for k in KEYS[1:]]
    assert pq.read_table(folder).num_rows == sum(_objects(tiles / t) for t in TILES[1:])
    ingest(tiles / TILES[0], "buildings", lake)
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]


def test_a_broken_tile_fails_alone_and_says_why(tmp_path, lake, tiles) -> None:
    broken = tiles / "broken.gml"
    broken.write_bytes((tiles / TILES[0]).read_bytes()[:3000])  # cut in a start tag
    catalog = _catalog(tmp_path, {"tiles": [f"tiles/{TILES[1]}", "tiles/broken.gml"]})
    good, bad = run(lake, catalog, workers=2)
    assert good.ok and good.features == _objects(tiles / TILES[1])
    assert not bad.ok and bad.source == "buildings~broken"
    assert bad.error is not None and bad.error.startswith(f"{broken}: not well-formed XML")
    assert list(_landed(lake)) == [KEYS[1]]
