"""CityJSON's semantic surfaces as columns (geo/surfaces.py): the record, type and face of each
surface as the document says them, lists made only when asked for, and every way a batch's
surfaces reach the lake (CRS84 from the solids' faces, a CRS already lon/lat, a batch whose
surfaces are read as polygons, a record rejected before placing)."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime

import numpy as np
import pyarrow.compute as pc
import pytest
import shapely
from conftest import CORPUS
from test_cityjson import CUBE_VERTICES, HEADER, _cube, _geoms, _write

from citypipe.connectors import batch_rows, cityjson_semantics
from citypipe.connectors.cityjson import CityJSONConnector
from citypipe.core.harmonise import Harmoniser
from citypipe.core.ingest import ingest
from citypipe.geo.surfaces import SurfaceColumns

KINDS = ["GroundSurface", "RoofSurface", "WallSurface"]
VALUES = {"a": [0, 1, 2, 2, 2, 2], "b": [0, None, 2, 2, 1, 2]}


def _building(base: int, values: list | None, kind: str = "Solid") -> dict:
    geometry = {"type": kind, "lod": "2", "boundaries": _cube(base)}
    if values is not None:
        geometry["semantics"] = {"surfaces": [{"type": k} for k in KINDS], "values": [values]}
    return {"type": "Building", "geometry": [geometry]}


def _doc(header: dict = HEADER, **objects: dict) -> dict:
    count = 8 * len(objects)
    vertices = [
        [x + 2000 * (k // 8), y, z] for k in range(count) for x, y, z in [CUBE_VERTICES[k % 8]]
    ]
    return {**header, "CityObjects": objects, "vertices": vertices}


def _expected(key: str) -> tuple[list[str], list[int]]:
    """The types and faces of an object's surfaces, from its semantic values."""
    faces = [k for k, v in enumerate(VALUES[key]) if v is not None]
    return [KINDS[VALUES[key][k]] for k in faces], faces


def test_columns_say_each_surfaces_record_type_and_face(tmp_path, monkeypatch):
    made = []
    build = cityjson_semantics._polygons
    monkeypatch.setattr(cityjson_semantics, "_polygons", lambda *a: made.append(1) or build(*a))
    doc = _doc(a=_building(0, VALUES["a"]), b=_building(8, VALUES["b"]), c=_building(16, None))
    [batch] = CityJSONConnector(_write(tmp_path, doc)).read()
    columns = batch.solids.surfaces
    assert isinstance(columns, SurfaceColumns)
    row = {key: batch.source_ids.index(key) for key in "abc"}
    owners = [row["a"]] * 6 + [row["b"]] * 5
    assert columns.owner.tolist() == owners
    assert columns.types.tolist() == _expected("a")[0] + _expected("b")[0]
    assert columns.face.tolist() == _expected("a")[1] + _expected("b")[1]
    assert not made  # no polygon made until a record's list is asked for
    assert columns[row["c"]] is None
    for key in "ab":
        faces = shapely.get_parts(batch.solids.built().geometry_3d[row[key]])
        types, at = _expected(key)
        assert [t for t, _ in columns[row[key]]] == types
        assert batch.solids.surface_faces[row[key]].tolist() == at
        for (_, polygon), k in zip(columns[row[key]], at, strict=True):
            assert shapely.equals_exact(polygon, faces[k], tolerance=0)
    assert made == [1]

    one = columns.take(np.array([row["b"]]))
    assert (one.owner.tolist(), one.types.tolist()) == ([0] * 5, _expected("b")[0])
    assert (len(one), one.face.tolist()) == (1, _expected("b")[1])
    assert [t for t, _ in one[0]] == _expected("b")[0]
    without = columns.dropped([row["a"]])
    assert without[row["a"]] is None and without.owner.tolist() == [row["b"]] * 5
    assert [t for t, _ in without[row["b"]]] == _expected("b")[0]


def test_columns_are_freed_without_the_cycle_collector(tmp_path):
    """An ingest runs with the GC off: a batch's surfaces, once read, go with the batch."""
    doc = _doc(a=_building(0, VALUES["a"]))
    [batch] = CityJSONConnector(_write(tmp_path, doc)).read()
    gc.disable()
    try:
        assert batch.solids.surfaces[0] and batch.solids.surface_faces[0] is not None
        gone = weakref.ref(batch.solids.surfaces)
        del batch
        assert gone() is None
    finally:
        gc.enable()


def _landed(lake, read_lake, doc: dict, tmp_path, key: str = "a") -> None:
    """`key`'s surfaces land as the faces of its landed solid, typed as its values say."""
    ingest(_write(tmp_path, doc), "made", lake, validate=False)
    features, surfaces = read_lake("made"), read_lake("made", "surfaces")
    ids = features.column("source_id").to_pylist()
    solid = _geoms(features)[ids.index(key)]
    mine = [
        k
        for k, f in enumerate(surfaces.column("feature_id").to_pylist())
        if f == features.column("feature_id")[ids.index(key)].as_py()
    ]
    types, at = _expected(key)
    assert [surfaces.column("surface_type")[k].as_py() for k in mine] == types
    faces = shapely.get_parts(solid)
    got = shapely.to_wkb(_geoms(surfaces)[mine])
    assert got.tolist() == shapely.to_wkb(faces[at]).tolist()
    areas = [surfaces.column("area_m2")[k].as_py() for k in mine]
    assert areas == pytest.approx([1.0] * len(mine), rel=1e-6)  # a cube of 1 m


def test_surfaces_land_as_faces_in_crs84(tmp_path, lake, read_lake):
    doc = _doc(a=_building(0, VALUES["a"]), b=_building(8, VALUES["b"]))
    _landed(lake, read_lake, doc, tmp_path, "b")


def test_surfaces_in_a_lon_lat_crs_land_as_they_are(tmp_path, lake, read_lake):
    """EPSG:4979 (WGS 84 lon, lat, height): nothing to transform, the faces written as read."""
    header = {
        **HEADER,
        "transform": {"scale": [1e-8, 1e-8, 0.001], "translate": [4.3, 52.07, 0.0]},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/4979"},
    }
    doc = _doc(header, a=_building(0, VALUES["a"]))
    ingest(_write(tmp_path, doc), "made", lake, validate=False)
    features, surfaces = read_lake("made"), read_lake("made", "surfaces")
    [solid] = _geoms(features)
    assert set(shapely.to_wkb(_geoms(surfaces))) == set(shapely.to_wkb(shapely.get_parts(solid)))
    assert surfaces.column("surface_type").to_pylist() == _expected("a")[0]


def test_a_batch_with_points_reads_its_surfaces_as_polygons(tmp_path, lake, read_lake):
    """A MultiPoint with Z beside the solid: not every 3D geometry is faces, so the surfaces
    are measured and placed as their own polygons, and land the same."""
    points = {"type": "MultiPoint", "lod": "1", "boundaries": [8, 9]}
    doc = _doc(a=_building(0, VALUES["a"]), p={"type": "Building", "geometry": [points]})
    _landed(lake, read_lake, doc, tmp_path)


def test_a_record_beyond_any_earth_is_rejected_with_its_surfaces(tmp_path, lake, read_lake):
    doc = _doc(a=_building(0, VALUES["a"]), b=_building(8, VALUES["b"]))
    doc["vertices"][9][0] = 10**15  # b's second vertex, 10^12 m east
    _landed(lake, read_lake, doc, tmp_path)
    rejects = read_lake("made", "rejects")
    assert rejects.column("source_id").to_pylist() == ["b"]
    assert "vertex 9 has a coordinate beyond" in rejects.column("reason")[0].as_py()


def test_a_batch_cut_to_some_records_keeps_their_surfaces_as_columns():
    """A batch cut to some of its records (a local filter, a harvest's repeats: `batch_rows`)
    keeps its surfaces as columns, each with its face, and they land as those records' rows
    of the whole batch: Den Haag's tile (every solid with semantic surfaces), a third of it."""
    [batch] = CityJSONConnector(CORPUS / "cityjson" / "denhaag_01_v1.0.city.json").read()
    cut = batch_rows.take(batch, np.arange(len(batch)) % 3 == 0)
    assert isinstance(cut.solids.surfaces, SurfaceColumns)
    at = datetime.now(UTC)
    whole, part = (
        Harmoniser(source="s", source_format="CityJSON", ingested_at=at).harmonise(b)
        for b in (batch, cut)
    )
    assert part.surfaces is not None and part.surfaces.num_rows > 0
    kept = pc.is_in(whole.surfaces.column("feature_id"), part.features.column("feature_id"))
    assert part.surfaces.equals(whole.surfaces.filter(kept))
