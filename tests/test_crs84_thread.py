"""The solids taken to CRS84 (pipelines/core/crs84.py `begin`): on a thread of their own where
the source's positions were known before its read (`ahead`: a CityJSON document's
vertices), which that thread moves then, and places the solids from; in the run's thread
otherwise. What fails on the thread fails the run as it would in the run's own thread."""

from __future__ import annotations

import json
import os
import signal
import threading
from types import SimpleNamespace

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from test_cityjson import CUBE_VERTICES, HEADER, _cube

from citypipe.connectors import cityjson, cityjson_values
from citypipe.connectors.base import Ahead
from citypipe.connectors.cityjson import CityJSONConnector
from citypipe.core import crs84, measure
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo import crs as crslib
from citypipe.geo import wkb_ragged

ROTTERDAM = "cityjson/rotterdam_one_v1.1.city.json"


def _not_ahead(monkeypatch) -> None:
    """CityJSON's positions not known before the read, as most formats' are not."""
    monkeypatch.setattr(CityJSONConnector, "ahead", lambda self: None)


@pytest.mark.parametrize("placed", ["run's thread", "worker, ahead"])
def test_an_error_placing_the_solids_fails_the_run_and_keeps_the_output(
    sample, lake, read_lake, monkeypatch, placed: str
):
    """The solids' WKB fails to be written (memory runs out): the ingest raises that error,
    and the source's previous output stays as it was; on the worker thread where it moved
    the positions ahead, in the run's thread where none were (after an ingest in the CRS
    too, the worker's PROJ object made)."""
    worker = crs84._Worker()
    monkeypatch.setattr(crs84, "_worker", lambda: worker)
    path = sample(ROTTERDAM)
    ingest(path, "rotterdam", lake, validate=False)
    before = read_lake("rotterdam")
    if placed == "run's thread":
        _not_ahead(monkeypatch)
    where: list[str] = []

    def fails(*args: object) -> None:
        where.append(threading.current_thread().name)
        raise MemoryError("no memory for the solids' WKB")

    monkeypatch.setattr(wkb_ragged, "solids_z", fails)
    with pytest.raises(MemoryError, match="no memory for the solids' WKB"):
        ingest(path, "rotterdam", lake, validate=False)
    assert (where[0] != threading.current_thread().name) == (placed != "run's thread")
    assert read_lake("rotterdam").equals(before)


def test_an_error_moving_the_positions_ahead_fails_the_run_and_keeps_the_output(
    sample, lake, read_lake, monkeypatch
):
    """PROJ fails on the worker for the positions moved ahead (memory runs out): the ingest
    raises that error where the solids are placed from them, and the previous output stays."""
    worker = crs84._Worker()
    monkeypatch.setattr(crs84, "_worker", lambda: worker)
    path = sample(ROTTERDAM)
    ingest(path, "rotterdam", lake, validate=False)
    before = read_lake("rotterdam")

    def fails(*args: object) -> None:
        raise MemoryError("no memory for the positions")

    monkeypatch.setattr(worker, "_moved", fails)
    with pytest.raises(MemoryError, match="no memory for the positions"):
        ingest(path, "rotterdam", lake, validate=False)
    assert read_lake("rotterdam").equals(before)


def test_an_error_measuring_the_solids_beside_fails_the_run_and_keeps_the_output(
    sample, lake, read_lake, monkeypatch
):
    """The solids' measures fail on the worker, after it placed them (memory runs out): the
    ingest raises that error as the run's thread waits for them, and the previous output
    stays."""
    worker = crs84._Worker()
    monkeypatch.setattr(crs84, "_worker", lambda: worker)
    path = sample(ROTTERDAM)
    ingest(path, "rotterdam", lake, validate=False)
    before = read_lake("rotterdam")
    where: list[str] = []

    def fails(*args: object) -> None:
        where.append(threading.current_thread().name)
        raise MemoryError("no memory for the volumes")

    monkeypatch.setattr(measure.solids, "volumes_and_faces", fails)
    with pytest.raises(MemoryError, match="no memory for the volumes"):
        ingest(path, "rotterdam", lake, validate=False)
    assert [w.split("_")[0] for w in where] == ["citypipe-crs84"]
    assert read_lake("rotterdam").equals(before)


def _templated(tmp_path):
    """A document (in UTM) with what its vertices alone do not hold: a tree placed from a
    template (positions that are no vertex), a cube PROJ cannot take to lon/lat (40,000 km
    east), and a vertex that is not finite: the cube's and the vertex's objects rejected."""
    far = [[x + 40_000_000_000, y, z] for x, y, z in CUBE_VERTICES]  # millimetres
    matrix = [2, 0, 0, 10, 0, 2, 0, 20, 0, 0, 1, 0, 0, 0, 0, 1]
    doc = {
        **HEADER,
        "transform": {"scale": [0.001, 0.001, 0.001], "translate": [500000.0, 5700000.0, 0.0]},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/25832"},
        "geometry-templates": {
            "templates": [{"type": "MultiSurface", "lod": "2", "boundaries": [[[0, 1, 2]]]}],
            "vertices-templates": [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.5]],
        },
        "CityObjects": {
            "near": {
                "type": "Building",
                "geometry": [{"type": "Solid", "lod": "2", "boundaries": _cube(0)}],
            },
            "far": {
                "type": "Building",
                "geometry": [{"type": "Solid", "lod": "2", "boundaries": _cube(8)}],
            },
            "tree": {
                "type": "SolitaryVegetationObject",
                "geometry": [
                    {
                        "type": "GeometryInstance",
                        "template": 0,
                        "boundaries": [2],
                        "transformationMatrix": matrix,
                    }
                ],
            },
            "odd": {
                "type": "LandUse",
                "geometry": [{"type": "MultiSurface", "lod": "1", "boundaries": [[[0, 1, 16]]]}],
            },
        },
        "vertices": CUBE_VERTICES + far + [[1e400, 0, 0]],
    }
    path = tmp_path / "templated.city.json"
    path.write_text(json.dumps(doc).replace("Infinity", "1e400"), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name, crs",
    [(ROTTERDAM, None), ("cityjson/denhaag_DH_01_subset_v1.1.city.json", "EPSG:7415"),
     ("templated", None), ("templated", "EPSG:25833")],
)  # fmt: skip
def test_positions_moved_ahead_place_what_the_batches_alone_do(
    sample, tmp_path, lake, monkeypatch, name: str, crs: str | None
):
    """Features, surfaces and rejects of a document whose solids are placed from its
    vertices moved ahead (in the `--crs` given, where one is) are those of the same
    document placed from its batches alone, bit for bit; the solids' corners all found
    among the moved vertices but the template's, moved then; the solids measured on the
    worker after it placed them (beside the footprints' CRS84), else in the run's thread."""
    path = _templated(tmp_path) if name == "templated" else sample(name)
    known: list[bool] = []
    placed = crs84._placed
    solids = measure._solids
    measured: list[str] = []

    def spied(transform, faces, has_z, before):
        known.append(before is not None)
        return placed(transform, faces, has_z, before)

    def measuring(*args: object) -> None:
        measured.append(threading.current_thread().name)
        solids(*args)

    monkeypatch.setattr(crs84, "_placed", spied)
    monkeypatch.setattr(measure, "_solids", measuring)
    ingest(path, "made", lake, crs=crs, validate=False)
    alone = Lake(tmp_path / "alone")
    with monkeypatch.context() as m:
        _not_ahead(m)
        ingest(path, "made", alone, crs=crs, validate=False)
    assert known == [True, False]
    assert [m.split("_")[0] for m in measured] == ["citypipe-crs84", "MainThread"]
    if name == "templated":
        rejected = pq.read_table(lake.partition("rejects", "made")).column("source_id")
        assert sorted(rejected.to_pylist()) == ["far", "odd"]
    for kind in ("features", "surfaces", "rejects"):
        tables = [pq.read_table(x.partition(kind, "made")) for x in (lake, alone)]
        columns = [c for c in tables[0].column_names if c not in ("run_id", "ingested_at")]
        differ = [c for c in columns if not tables[0].column(c).equals(tables[1].column(c))]
        assert not differ, (kind, differ)


def test_only_a_document_of_one_batch_has_its_positions_moved_ahead(sample, monkeypatch):
    """A document read in several batches is not (each batch's moved beside its walk), nor a
    stream (each line holds its own vertices)."""
    path = sample("cityjson/denhaag_DH_01_subset_v1.1.city.json")  # 12 objects
    doc = json.loads(path.read_bytes())
    positions = CityJSONConnector(path).ahead()
    assert positions is not None and len(positions.xyz) == len(doc["vertices"])
    monkeypatch.setattr(cityjson, "BATCH_OBJECTS", len(doc["CityObjects"]) - 1)
    assert CityJSONConnector(path).ahead() is None
    assert CityJSONConnector(sample("cityjson/3dbag_b2.city.jsonl")).ahead() is None


def test_a_document_tells_its_positions_as_its_parse_begins(sample, monkeypatch):
    """The vertices `ahead` gives are told to `on_ahead` once, the same array in the same
    CRS, before orjson parses the rest of the document (its largest parse); the worker
    moves them once for both."""
    told: list[Ahead] = []
    parses: list[tuple[int, int]] = []  # each parse's bytes, and what was told by then
    loads = cityjson_values.orjson.loads

    def spied(data):
        parses.append((len(data), len(told)))
        return loads(data)

    monkeypatch.setattr(cityjson_values, "orjson", SimpleNamespace(**vars(orjson)))
    monkeypatch.setattr(cityjson_values.orjson, "loads", spied)
    connector = CityJSONConnector(sample("cityjson/denhaag_DH_01_subset_v1.1.city.json"))
    connector.on_ahead = told.append
    info = connector.inspect()
    positions = connector.ahead()
    assert positions is not None and len(told) == 1
    assert told[0].xyz is positions.xyz and told[0].crs == positions.crs == info.crs
    assert max(parses)[1] == 1
    moved = crs84.ahead(told[0], "EPSG:28992", None)  # the subset declares none
    again = crs84.ahead(positions, "EPSG:28992", None)
    assert moved is not None and again is not None and again.moved is moved.moved


def test_positions_are_moved_ahead_in_the_crs_placing_uses():
    """`--crs` (and `--axis-order`) over the one the positions declare; none moved where
    they are lon/lat already, where no CRS is known, or where none is placeable."""
    xyz = np.array([[85000.0, 447000.0, 0.0]])
    given = Ahead(xyz, "EPSG:7415", "xy")
    ahead = crs84.ahead(given, "EPSG:28992", None)
    assert ahead is not None
    assert ahead.transform == crslib.to_crs84(crslib.resolve("EPSG:28992"), "xy")
    assert ahead.transform != crslib.to_crs84(crslib.resolve("EPSG:7415"), "xy")
    moved = ahead.moved.result()
    assert np.array_equal(moved.moved, ahead.transform(xyz)[:, :2])
    assert crs84.ahead(given, None, None).transform == crslib.to_crs84(
        crslib.resolve("EPSG:7415"), "xy"
    )
    assert crs84.ahead(given, "OGC:CRS84", None) is None
    assert crs84.ahead(given._replace(crs=None), None, None) is None
    assert crs84.ahead(given, "EPSG:999999", None) is None  # placing says why
    assert crs84.ahead(given._replace(xyz=xyz[:0]), None, None) is None
    assert crs84.ahead(None, "EPSG:28992", None) is None


def test_a_forked_child_places_its_solids(sample, lake, read_lake, monkeypatch):
    """The worker has made its PROJ object in the parent (an ingest there); a child forked
    then, which has none of its parent's threads, still ingests the same file, and its solids
    are the parent's (the worker's pool is made again in the child)."""
    worker = crs84._Worker()
    monkeypatch.setattr(crs84, "_worker", lambda: worker)
    path = sample("cityjson/rotterdam_one_v1.1.city.json")
    ingest(path, "rotterdam", lake, validate=False)
    worker._pool.submit(int).result()  # the transformation is the worker's now
    before = read_lake("rotterdam")
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # a child waiting for a thread it has not is ended
        code = 1
        try:
            ingest(path, "rotterdam", lake, validate=False)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    after = read_lake("rotterdam")
    assert after.column("geometry").equals(before.column("geometry"))
