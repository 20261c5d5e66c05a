"""CityJSON 1.0 / 1.1 / 2.0 and CityJSONSeq: counts, places, vertices, surfaces and bad input.

Expected values come from the files themselves (read here with json) and from the corpus
MANIFEST; the corpus's two large files (1.4 and 3 MB) are read in one test each.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from conftest import CORPUS, SAMPLES, data_files

from citypipe.connectors import cityjson, registry
from citypipe.connectors.cityjson import CityJSONConnector
from citypipe.connectors.geojson import GeoJSONConnector
from citypipe.core import crs84, solids
from citypipe.core.ingest import ingest
from citypipe.geo.errors import DataError, NotFeatureData, UnknownCRS

ROTTERDAM = "cityjson/rotterdam_one_v1.1.city.json"
DEN_HAAG_SUBSET = "cityjson/denhaag_DH_01_subset_v1.1.city.json"
MULTI_LOD = "cityjson/3dbag_multi_lod_v2.0.city.json"
SEQ = "cityjson/3dbag_b2.city.jsonl"
TO_CRS84 = pyproj.Transformer.from_crs("EPSG:7415", "OGC:CRS84", always_xy=True)


def _corpus(name: str) -> Path:
    return CORPUS / "cityjson" / name


def _objects(path: Path) -> dict[str, dict]:
    """The CityObjects of a CityJSON document or of every line of a CityJSONSeq."""
    if path.suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        return {k: o for line in lines for k, o in json.loads(line)["CityObjects"].items()}
    return json.loads(path.read_bytes())["CityObjects"]


def _geoms(table, column: str = "geometry_3d") -> np.ndarray:
    return shapely.from_wkb(table.column(column).to_numpy(zero_copy_only=False))


def _inside(table, lon: float, lat: float, tolerance: float) -> None:
    """Every 2D and 3D geometry of the table lies within `tolerance` degrees of (lon, lat)."""
    for column in ("geometry", "geometry_3d"):
        geoms = _geoms(table, column)
        assert not shapely.is_missing(geoms).any(), f"{column} missing"
        xy = shapely.get_coordinates(geoms)
        assert (abs(xy[:, 0] - lon) < tolerance).all() and (abs(xy[:, 1] - lat) < tolerance).all()


@pytest.mark.corpus
def test_delft_2_0_every_object_by_type_and_theme(lake, read_lake):
    path = _corpus("delft_v2.0.city.json")
    objects = _objects(path)
    report = ingest(path, "delft", lake, validate=False)
    assert report.format == "CityJSON 2.0"
    assert report.declared_crs == "https://www.opengis.net/def/crs/EPSG/0/7415"
    assert report.records == report.features + report.rejects == len(objects) == 570
    table = read_lake("delft")
    # the MANIFEST: 160 Building, 143 Road, 126 PlantCover, 81 LandUse, 54 GenericCityObject,
    # 3 Bridge, 3 WaterBody
    assert Counter(table.column("feature_class").to_pylist()) == {
        "Building": 160, "Road": 143, "PlantCover": 126, "LandUse": 81,
        "GenericCityObject": 54, "Bridge": 3, "WaterBody": 3,
    }  # fmt: skip
    themes = dict(
        zip(
            table.column("feature_class").to_pylist(),
            table.column("theme").to_pylist(),
            strict=False,
        )
    )
    assert themes == {
        "Building": "building", "Road": "transport", "PlantCover": "vegetation",
        "LandUse": "land_use", "GenericCityObject": "other", "Bridge": "bridge",
        "WaterBody": "water",
    }  # fmt: skip
    assert set(table.column("source_crs").to_pylist()) == {"EPSG:7415"}
    assert set(table.column("lod").to_pylist()) == {"1"}
    _inside(table, 4.36, 52.0, 0.03)  # Delft


@pytest.mark.corpus
def test_denhaag_1_0_buildings_parts_and_relief(lake, read_lake):
    path = _corpus("denhaag_01_v1.0.city.json")
    objects = _objects(path)
    report = ingest(path, "dh", lake, validate=False)
    assert report.format == "CityJSON 1.0" and report.declared_crs == "urn:ogc:def:crs:EPSG::7415"
    assert report.records == report.features + report.rejects == len(objects)
    table = read_lake("dh")
    classes = Counter(table.column("feature_class").to_pylist())
    assert classes == {"Building": 844, "BuildingPart": 1653, "TINRelief": 1}
    themes = dict(
        zip(
            table.column("feature_class").to_pylist(),
            table.column("theme").to_pylist(),
            strict=False,
        )
    )
    assert themes == {"Building": "building", "BuildingPart": "building", "TINRelief": "terrain"}
    parents = dict(
        zip(
            table.column("source_id").to_pylist(),
            table.column("parent_id").to_pylist(),
            strict=False,
        )
    )
    for key, obj in objects.items():
        expected = f"dh/{obj['parents'][0]}" if obj.get("parents") else None
        assert parents[key] == expected
    # the geometries of those with one: Den Haag is about 4.3 E, 52.08 N
    table = table.filter(table.column("geometry_3d").is_valid())
    assert table.num_rows == sum(1 for o in objects.values() if o.get("geometry"))
    _inside(table, 4.3, 52.08, 0.05)
    # the MANIFEST's 1990 LoD2 Solids all close, and have a volume: the five whose rings write
    # a vertex twice in a row, or repeat the first at the end, too
    solids = sum(g["type"] == "Solid" for o in objects.values() for g in o.get("geometry", ()))
    props = [json.loads(p) for p in table.column("properties").to_pylist()]
    assert sum("citypipe:volume_m3" in p for p in props) == solids == 1990


def test_a_vertex_lands_where_pyproj_puts_it(sample, lake, read_lake):
    """One vertex of the file, dequantised and transformed here, is among geometry_3d's."""
    path = sample(ROTTERDAM)
    doc = json.loads(path.read_bytes())
    [(key, obj)] = doc["CityObjects"].items()
    index = obj["geometry"][0]["boundaries"][3][0][2]
    scale, translate = doc["transform"]["scale"], doc["transform"]["translate"]
    x, y, z = (v * s + t for v, s, t in zip(doc["vertices"][index], scale, translate, strict=False))
    lon, lat = TO_CRS84.transform(x, y)

    report = ingest(path, "rotterdam", lake)
    assert (report.features, report.rejects, report.format) == (1, 0, "CityJSON 1.1")
    table = read_lake("rotterdam")
    assert table.column("source_id").to_pylist() == [key]
    assert table.column("feature_class").to_pylist() == ["Building"]
    coords = shapely.get_coordinates(_geoms(table)[0], include_z=True)
    near = (abs(coords[:, 0] - lon) < 1e-7) & (abs(coords[:, 1] - lat) < 1e-7)
    assert (coords[near, 2] == z).any()  # walls: the same x, y at other heights too
    _inside(table, 4.47, 51.92, 0.05)  # Rotterdam
    props = json.loads(table.column("properties")[0].as_py())
    assert {k: props[k] for k in obj["attributes"]} == obj["attributes"]
    assert props["cityjson:appearance"][0]["texture"] == obj["geometry"][0]["texture"]


def test_den_haag_surfaces_are_roofs_walls_and_grounds(sample):
    path = sample(DEN_HAAG_SUBSET)
    objects = _objects(path)
    batches = list(CityJSONConnector(path).read())
    rows = {sid: i for i, sid in enumerate(batches[0].source_ids)}
    assert len(batches) == 1 and rows.keys() == objects.keys()
    surfaces = batches[0].solids.surfaces
    for key, obj in objects.items():
        got = surfaces[rows[key]]
        if not obj.get("geometry"):
            assert got is None
            continue
        [g] = obj["geometry"]
        kinds = [g["semantics"]["surfaces"][v]["type"] for v in g["semantics"]["values"][0]]
        assert [t for t, _ in got] == kinds
        assert {"RoofSurface", "WallSurface", "GroundSurface"} <= set(kinds)
        rings = [len(face[0]) for face in g["boundaries"][0]]
        assert [len(shapely.get_coordinates(p)) - 1 for _, p in got] == rings
        assert all(shapely.has_z(p) for _, p in got)


def test_surfaces_are_faces_of_their_solid(sample, tmp_path, lake, read_lake):
    """Each semantic surface is named as the face of the solid it is (a face without a semantic
    value is none), and lands as that face in CRS84, measured in metres."""
    path = sample(DEN_HAAG_SUBSET)
    doc = json.loads(path.read_bytes())
    key, obj = next((k, o) for k, o in doc["CityObjects"].items() if o.get("geometry"))
    values = obj["geometry"][0]["semantics"]["values"][0]
    values[1] = None  # the second face of the outer shell: no surface
    (tmp_path / "edited.city.json").write_text(json.dumps(doc))
    [batch] = CityJSONConnector(tmp_path / "edited.city.json").read()
    i = batch.source_ids.index(key)
    faces = shapely.get_parts(batch.solids.built().geometry_3d[i])
    assert batch.solids.surface_faces[i].tolist() == [
        k for k, v in enumerate(values) if v is not None
    ]
    for (_, polygon), k in zip(
        batch.solids.surfaces[i], batch.solids.surface_faces[i], strict=True
    ):
        assert shapely.equals_exact(polygon, faces[k], tolerance=0)

    ingest(tmp_path / "edited.city.json", "den_haag", lake, crs="EPSG:7415")
    features, surfaces = read_lake("den_haag"), read_lake("den_haag", "surfaces")
    solid = dict(zip(features.column("source_id").to_pylist(), _geoms(features), strict=True))
    ids = dict(zip(features.column("feature_id").to_pylist(), solid, strict=True))
    owners = [ids[f] for f in surfaces.column("feature_id").to_pylist()]
    assert owners.count(key) == len(values) - 1
    wkb = {sid: set(shapely.to_wkb(shapely.get_parts(g))) for sid, g in solid.items()}
    got = shapely.to_wkb(_geoms(surfaces))
    assert all(w in wkb[o] for w, o in zip(got, owners, strict=True))
    # the area in metres: the face's own shoelace in RD New (EPSG:7415), from the file's vertices
    ground = values.index(
        next(
            v
            for v in values
            if v is not None
            and obj["geometry"][0]["semantics"]["surfaces"][v]["type"] == "GroundSurface"
        )
    )
    ring = obj["geometry"][0]["boundaries"][0][ground][0]
    xy = np.array([doc["vertices"][v][:2] for v in ring], float) * doc["transform"]["scale"][:2]
    x, y = xy[:, 0], xy[:, 1]
    expected = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
    rows = [k for k, o in enumerate(owners) if o == key]
    kinds = surfaces.column("surface_type").to_pylist()
    areas = [surfaces.column("area_m2")[k].as_py() for k in rows if kinds[k] == "GroundSurface"]
    assert any(a == pytest.approx(expected, rel=1e-9) for a in areas)


def test_missing_reference_system_is_not_guessed(sample, lake, read_lake):
    """No referenceSystem: the source is refused whole, before anything is written, with the
    --crs hint; with --crs EPSG:7415 (the MANIFEST's CRS for it) every object lands where its
    own vertices, transformed with pyproj here, are."""
    path = sample(DEN_HAAG_SUBSET)
    doc = json.loads(path.read_bytes())
    assert CityJSONConnector(path).inspect().crs is None
    with pytest.raises(UnknownCRS, match="no CRS is declared.*--crs") as refused:
        ingest(path, "dh", lake, validate=False)
    assert str(path) in str(refused.value)
    assert not lake.root.exists() or not data_files(lake.root)

    report = ingest(path, "dh", lake, crs="EPSG:7415", validate=False)
    assert (report.records, report.features, report.rejects) == (12, 12, 0)
    table = read_lake("dh")
    classes = Counter(table.column("feature_class").to_pylist())
    assert classes == {"Building": 4, "BuildingPart": 8}  # as the MANIFEST counts them
    _placed_where_pyproj_puts_them(doc, table)


def _placed_where_pyproj_puts_them(doc: dict, table) -> None:
    """Each object's 3D geometry spans its richest LoD's vertices, dequantised and transformed
    from EPSG:7415 with pyproj here."""
    vertices = np.array(doc["vertices"]) * doc["transform"]["scale"] + doc["transform"]["translate"]
    placed = dict(zip(table.column("source_id").to_pylist(), _geoms(table), strict=False))
    for key, obj in doc["CityObjects"].items():
        if not obj.get("geometry"):
            continue
        richest = max(obj["geometry"], key=lambda g: [int(n) for n in str(g["lod"]).split(".")])
        used = np.unique(list(_flatten(richest["boundaries"])))
        lon, lat = TO_CRS84.transform(vertices[used, 0], vertices[used, 1])
        expected = [lon.min(), lat.min(), lon.max(), lat.max()]
        assert shapely.bounds(placed[key]) == pytest.approx(expected, abs=1e-9)


def _flatten(boundaries):
    """The vertex indices of nested CityJSON boundaries."""
    for b in boundaries:
        if isinstance(b, list):
            yield from _flatten(b)
        else:
            yield b


def test_parents_children_and_attributes_are_kept(sample, lake, read_lake):
    path = sample(DEN_HAAG_SUBSET)
    objects = _objects(path)
    ingest(path, "dh", lake, crs="EPSG:7415", validate=False)
    table = read_lake("dh")
    for sid, props in zip(
        table.column("source_id").to_pylist(), table.column("properties").to_pylist(), strict=False
    ):
        props, obj = json.loads(props), objects[sid]
        assert props.get("cityjson:parents") == obj.get("parents")
        assert props.get("cityjson:children") == obj.get("children")
        assert {k: props[k] for k in obj.get("attributes", {})} == obj.get("attributes", {})


def test_highest_of_string_lods(sample, lake, read_lake):
    """3D BAG: each Building has LoD 1.2, 1.3 and 2.2 solids; 2.2 is the richest."""
    path = sample(MULTI_LOD)
    objects = _objects(path)
    with pytest.raises(UnknownCRS, match="no CRS is declared"):  # no referenceSystem
        ingest(path, "bag", lake, validate=False)
    report = ingest(path, "bag", lake, crs="EPSG:7415", validate=False)
    assert report.features == len(objects) == 10
    table = read_lake("bag")
    _placed_where_pyproj_puts_them(json.loads(path.read_bytes()), table)
    assert table.column("lod").to_pylist() == ["2.2"] * 10
    for sid, geom, props in zip(
        table.column("source_id").to_pylist(),
        _geoms(table),
        table.column("properties").to_pylist(),
        strict=False,
    ):
        geometries = objects[sid]["geometry"]
        assert json.loads(props)["cityjson:lods"] == [g["lod"] for g in geometries]
        [lod22] = [g for g in geometries if g["lod"] == "2.2"]
        assert shapely.get_num_geometries(geom) == len(lod22["boundaries"][0])


def test_cityjsonseq_parts_point_at_their_building(sample, lake, read_lake):
    path = sample(SEQ)
    objects = _objects(path)
    info = CityJSONConnector(path).inspect()
    assert (info.format, info.version, info.count) == ("CityJSONSeq", "2.0", len(objects))
    report = ingest(path, "seq", lake, validate=False)
    assert report.format == "CityJSONSeq 2.0"
    assert report.records == report.features + report.rejects == len(objects)
    table = read_lake("seq")
    ids = dict(
        zip(
            table.column("source_id").to_pylist(),
            table.column("feature_id").to_pylist(),
            strict=False,
        )
    )
    parents = dict(
        zip(
            table.column("source_id").to_pylist(),
            table.column("parent_id").to_pylist(),
            strict=False,
        )
    )
    for key, obj in objects.items():
        if obj["type"] == "BuildingPart":
            assert parents[key] == ids[obj["parents"][0]]
            assert objects[obj["parents"][0]]["type"] == "Building"
        else:
            assert parents[key] is None
    lods = dict(
        zip(table.column("source_id").to_pylist(), table.column("lod").to_pylist(), strict=False)
    )
    assert {lods[k] for k, o in objects.items() if o["type"] == "BuildingPart"} == {"2.2"}
    _inside(table.filter(table.column("geometry_3d").is_valid()), 4.36, 52.0, 0.05)  # Delft


def test_each_line_of_a_stream_indexes_its_own_vertices(sample):
    """The last line's vertex i is its own vertices[i], dequantised with the header's transform."""
    path = sample(SEQ)
    header, *features = map(json.loads, path.read_text(encoding="utf-8").splitlines())
    last = features[-1]
    key, obj = next((k, o) for k, o in last["CityObjects"].items() if o.get("geometry"))
    index = obj["geometry"][0]["boundaries"][0][0][0][0]
    t = header["transform"]
    expected = [
        v * s + o
        for v, s, o in zip(last["vertices"][index], t["scale"], t["translate"], strict=False)
    ]
    [batch] = CityJSONConnector(path).read()
    geometry = batch.solids.built().geometry_3d[list(batch.source_ids).index(key)]
    assert shapely.get_coordinates(geometry, include_z=True)[0].tolist() == expected


def test_a_broken_line_of_a_stream_is_one_reject(sample, tmp_path, monkeypatch, lake, read_lake):
    """A line that is not JSON, and a last line cut short, are rejected; the others are read."""
    header, first, second = (SAMPLES / SEQ).read_text(encoding="utf-8").splitlines()
    path = tmp_path / "broken.city.jsonl"
    path.write_text("\n".join([header, "{not json", first, second[: len(second) // 2]]) + "\n")
    monkeypatch.setattr(cityjson, "BATCH_OBJECTS", 1)  # a batch of nothing but a broken line
    report = ingest(path, "broken", lake, validate=False)
    readable = json.loads(first)["CityObjects"]
    assert (report.records, report.features, report.rejects) == (
        len(readable) + 2,
        len(readable),
        2,
    )
    assert set(read_lake("broken").column("source_id").to_pylist()) == readable.keys()
    reasons = read_lake("broken", "rejects").column("reason").to_pylist()
    assert [r.split(" is ")[0] for r in reasons] == ["line 2", "line 4"]


@pytest.mark.parametrize("whole", [0, 1 << 30], ids=["in-pieces", "whole"])
def test_a_first_line_longer_than_the_first_read(sample, tmp_path, monkeypatch, whole):
    """A stream whose header line outgrows the first read is still a stream, and a minified
    document (one line, with its end of line or without) one document, whether the file is
    read again whole (WHOLE_BYTES) or in pieces."""
    monkeypatch.setattr(cityjson, "WHOLE_BYTES", whole)
    header, *lines = (SAMPLES / SEQ).read_text(encoding="utf-8").splitlines()
    long = json.loads(header)
    long["metadata"] = {**long.get("metadata", {}), "note": "x" * (cityjson.FIRST_BYTES * 3)}
    stream = tmp_path / "long.city.jsonl"
    stream.write_text("\n".join([json.dumps(long), *lines]) + "\n")
    objects = _objects(sample(SEQ))
    [batch] = CityJSONConnector(stream).read()
    assert CityJSONConnector(stream).inspect().format == "CityJSONSeq"
    assert sorted(batch.source_ids) == sorted(objects)
    document = _objects(sample(ROTTERDAM))
    text = json.dumps(json.loads((SAMPLES / ROTTERDAM).read_bytes()), separators=(",", ":"))
    padded = text[:-1] + ',"padding":"' + "y" * (cityjson.FIRST_BYTES * 2) + '"}'
    for end in ("", "\n"):
        minified = tmp_path / f"minified{len(end)}.city.json"
        minified.write_text(padded + end)
        assert CityJSONConnector(minified).inspect().format == "CityJSON"
        [batch] = CityJSONConnector(minified).read()
        assert list(batch.source_ids) == list(document)


@pytest.mark.parametrize("name", [DEN_HAAG_SUBSET, SEQ])
def test_batch_size_does_not_change_what_is_read(sample, monkeypatch, name):
    path = sample(name)

    def read() -> tuple[int, dict]:
        batches = list(CityJSONConnector(path).read())
        rows = {}
        for b in batches:
            for i, sid in enumerate(b.source_ids):
                rows[sid] = (
                    b.solids.built().geometry_3d[i],
                    b.parent_source_id[i],
                    b.errors[i],
                )
        return len(batches), rows

    one, whole = read()
    monkeypatch.setattr(cityjson, "BATCH_OBJECTS", 1)
    many, split = read()
    assert one == 1 and many > 1 and split.keys() == whole.keys()
    for sid, (geometry, parent, error) in whole.items():
        assert split[sid][1:] == (parent, error)
        if geometry is None:
            assert split[sid][0] is None
        else:
            assert shapely.equals_exact(split[sid][0], geometry, tolerance=0)


@pytest.mark.parametrize("name", [ROTTERDAM, SEQ])
def test_detected_by_content_not_by_name(sample, tmp_path, name):
    renamed = tmp_path / "renamed.geojson"
    shutil.copyfile(SAMPLES / name, renamed)
    assert registry.detect(renamed) is CityJSONConnector
    head = renamed.read_bytes()[: registry.HEAD_BYTES]
    assert GeoJSONConnector.sniff(head) < CityJSONConnector.sniff(head)
    fountains = (SAMPLES / "barcelona_drinking_fountains.geojson").read_bytes()[
        : registry.HEAD_BYTES
    ]
    assert CityJSONConnector.sniff(fountains) == 0


def test_an_extension_schema_is_not_feature_data(tmp_path):
    path = tmp_path / "noise.ext.json"
    path.write_text('{"type": "CityJSONExtension", "name": "Noise", "extraCityObjects": {}}')
    with pytest.raises(NotFeatureData, match="CityJSON Extension"):
        registry.detect(path)


def _write(tmp_path: Path, doc: dict, name: str = "made.city.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _cube(base: int) -> list:
    """The six faces of a unit cube on vertices base .. base+7."""
    b = [base + i for i in range(8)]
    faces = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]
    return [[[[b[i] for i in f]] for f in faces]]


CUBE_VERTICES = [
    [x, y, z] for z in (0, 1000) for x, y in ((0, 0), (1000, 0), (1000, 1000), (0, 1000))
]
HEADER = {
    "type": "CityJSON",
    "version": "2.0",
    "transform": {"scale": [0.001, 0.001, 0.001], "translate": [85000.0, 447000.0, 0.0]},
    "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/7415"},
}


def test_out_of_range_vertex_rejects_only_that_object(tmp_path, lake, read_lake):
    doc = {
        **HEADER,
        "CityObjects": {
            "good": {
                "type": "Building",
                "geometry": [{"type": "Solid", "lod": "1", "boundaries": _cube(0)}],
            },
            "bad": {
                "type": "Building",
                "geometry": [{"type": "Solid", "lod": "1", "boundaries": _cube(99)}],
            },
            "short": {
                "type": "Road",
                "geometry": [{"type": "MultiSurface", "lod": "1", "boundaries": [[[0, 1]]]}],
            },
        },
        "vertices": CUBE_VERTICES,
    }
    report = ingest(_write(tmp_path, doc), "made", lake, validate=False)
    assert (report.records, report.features, report.rejects) == (3, 1, 2)
    assert read_lake("made").column("source_id").to_pylist() == ["good"]
    rejects = read_lake("made", "rejects")
    reasons = dict(
        zip(
            rejects.column("source_id").to_pylist(),
            rejects.column("reason").to_pylist(),
            strict=False,
        )
    )
    assert "vertex index 99 out of range" in reasons["bad"]
    assert reasons["short"] == (  # its one surface has two vertices: nothing is left
        "no usable geometry left: dropped 1 polygon with fewer than 3 distinct positions"
    )
    records = [json.loads(r) for r in rejects.column("record").to_pylist()]
    assert records == [{k: doc["CityObjects"][k]} for k in ("bad", "short")]


def test_a_reject_keeps_an_integer_beyond_64_bits(tmp_path, lake, read_lake):
    """A document only Python's parser reads (NaN) whose rejected object holds an index of 2**70:
    the reject's record keeps it exact, where writing it crashed the run."""
    text = (
        '{"type": "CityJSON", "version": "2.0", "transform": {"scale": [1, 1, 1], "translate":'
        ' [0, 0, 0]}, "metadata": {"referenceSystem":'
        ' "https://www.opengis.net/def/crs/EPSG/0/7415"},'
        ' "CityObjects": {"a": {"type": "Building", "attributes": {"h": NaN}, "geometry": [{"type":'
        ' "MultiSurface", "lod": 1, "boundaries": [[[0, 1, 1180591620717411303424]]]}]},'
        ' "b": {"type": "Building",'
        ' "geometry": [{"type": "MultiSurface", "lod": 1, "boundaries": [[[0, 1, 2]]]}]}},'
        ' "vertices": [[0, 0, 0], [1, 0, 0], [0, 1, 0]]}'
    )
    path = tmp_path / "huge_index.city.json"
    path.write_text(text)
    report = ingest(path, "huge", lake, validate=False)
    assert (report.features, report.rejects) == (1, 1)
    record = read_lake("huge", "rejects").column("record")[0].as_py()
    assert "[[[0,1,1180591620717411303424]]]" in record.replace(" ", "")


@pytest.mark.parametrize("on_worker", [False, True])
def test_a_solid_proj_cannot_place_rejects_only_its_object(
    tmp_path, lake, read_lake, monkeypatch, on_worker
):
    """Two cubes with semantic surfaces in UTM 32N (EPSG:25832): one 40,000 km east, which PROJ
    cannot take to longitude/latitude (finite, but no position of the zone). It alone is
    rejected; the other lands with its solid and its six surfaces where pyproj puts them.
    Alike where the solids are placed in the run's thread and on the worker thread (from the
    document's vertices it moved ahead: pipelines/core/crs84.py)."""
    far = [[x + 40_000_000_000, y, z] for x, y, z in CUBE_VERTICES]  # millimetres
    kinds = ["GroundSurface", "RoofSurface", "WallSurface"]  # the cube's bottom, top, sides
    walls = {"surfaces": [{"type": k} for k in kinds], "values": [[0, 1, 2, 2, 2, 2]]}
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "transform": {"scale": [0.001, 0.001, 0.001], "translate": [500000.0, 5700000.0, 0.0]},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/25832"},
        "CityObjects": {
            key: {
                "type": "Building",
                "geometry": [
                    {"type": "Solid", "lod": "2", "boundaries": _cube(base), "semantics": walls}
                ],
            }
            for key, base in (("near", 0), ("far", 8))
        },
        "vertices": CUBE_VERTICES + far,
    }
    path = _write(tmp_path, doc)
    if not on_worker:  # no vertices moved ahead: the run's thread
        monkeypatch.setattr(CityJSONConnector, "ahead", lambda self: None)
    placed, where = crs84._placed, []

    def recorded(*args: object) -> object:
        where.append(threading.current_thread() is threading.main_thread())
        return placed(*args)

    monkeypatch.setattr(crs84, "_placed", recorded)
    report = ingest(path, "made", lake, validate=False)
    assert where == [not on_worker]
    assert (report.records, report.features, report.rejects) == (2, 1, 1)
    rejects = read_lake("made", "rejects")
    assert rejects.column("source_id").to_pylist() == ["far"]
    assert "cannot take to longitude/latitude" in rejects.column("reason")[0].as_py()
    features, surfaces = read_lake("made"), read_lake("made", "surfaces")
    [solid] = _geoms(features)
    xyz = np.array(CUBE_VERTICES) * 0.001 + [500000.0, 5700000.0, 0.0]
    to_crs84 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    lon, lat = to_crs84.transform(xyz[:, 0], xyz[:, 1])
    corners = {tuple(p) for p in np.column_stack([lon, lat, xyz[:, 2]]).tolist()}
    faces = shapely.get_parts(solid)
    assert len(faces) == 6
    assert {tuple(p) for p in shapely.get_coordinates(faces, include_z=True).tolist()} == corners
    assert (
        surfaces.column("surface_type").to_pylist()
        == ["GroundSurface", "RoofSurface"] + ["WallSurface"] * 4
    )
    assert set(shapely.to_wkb(_geoms(surfaces))) == set(shapely.to_wkb(faces))


def test_an_object_whose_richest_lod_collapses_keeps_its_footprint(tmp_path, lake, read_lake):
    """Every face of its LoD2 solid on two vertices: dropped, and its LoD0 footprint is what is
    left of it; without that footprint it is rejected, with what was dropped as the reason."""
    flat = [[[[0, 1, 0]]] * 6]
    square = [[[0, 1, 2, 3]]]
    doc = {
        **HEADER,
        "CityObjects": {
            "kept": {
                "type": "Building",
                "geometry": [
                    {"type": "Solid", "lod": "2", "boundaries": flat},
                    {"type": "MultiSurface", "lod": "0", "boundaries": square},
                ],
            },
            "lost": {
                "type": "Building",
                "geometry": [{"type": "Solid", "lod": "2", "boundaries": flat}],
            },
        },
        "vertices": CUBE_VERTICES,
    }
    report = ingest(_write(tmp_path, doc), "made", lake, validate=False)
    assert (report.records, report.features, report.rejects) == (2, 1, 1)
    row = read_lake("made").to_pylist()[0]
    assert row["source_id"] == "kept" and row["geometry_3d"] is None
    props = json.loads(row["properties"])
    assert props["citypipe:geometry_repaired"] == (
        "dropped 6 polygons with fewer than 3 distinct positions"
    )
    assert props["citypipe:footprint_area_m2"] == pytest.approx(1.0)  # the 1 m square
    [reject] = read_lake("made", "rejects").to_pylist()
    assert reject["source_id"] == "lost"
    assert reject["reason"] == (
        "no usable geometry left: dropped 6 polygons with fewer than 3 distinct positions"
    )


def test_geometry_instances_are_placed(tmp_path):
    """A template vertex v lands at matrix · v + the reference point (only it is quantised)."""
    matrix = [2, 0, 0, 10, 0, 2, 0, 20, 0, 0, 1, 0, 0, 0, 0, 1]
    doc = {
        **HEADER,
        "geometry-templates": {
            "templates": [{"type": "MultiSurface", "lod": "2", "boundaries": [[[0, 1, 2]]]}],
            "vertices-templates": [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.5]],
        },
        "CityObjects": {
            "tree": {
                "type": "SolitaryVegetationObject",
                "geometry": [
                    {
                        "type": "GeometryInstance",
                        "template": 0,
                        "boundaries": [0],
                        "transformationMatrix": matrix,
                    }
                ],
            }
        },
        "vertices": [[1000, 2000, 3000]],
    }
    [batch] = CityJSONConnector(_write(tmp_path, doc)).read()
    assert batch.errors == [None] and batch.lod == ["2"]
    ref = np.array([85001.0, 447002.0, 3.0])
    expected = np.array([[10, 20, 0], [12, 20, 0], [10, 22, 0.5]]) + ref
    got = shapely.get_coordinates(batch.solids.built().geometry_3d[0], include_z=True)
    assert np.allclose(got[:3], expected)


def test_every_geometry_type_and_the_lod0_footprint(tmp_path):
    square = [[0, 1, 2, 3]]
    hole = [[0, 1, 2, 3], [8, 9, 10]]
    doc = {
        **HEADER,
        "CityObjects": {
            "house": {
                "type": "Building",
                "geometry": [
                    {"type": "Solid", "lod": "2", "boundaries": _cube(0)},
                    {"type": "MultiSurface", "lod": "0", "boundaries": [square]},
                ],
            },
            "pair": {
                "type": "+NoiseBarrier",
                "geometry": [
                    {"type": "MultiSolid", "lod": "1", "boundaries": [_cube(0), _cube(0)]}
                ],
            },
            "court": {
                "type": "LandUse",
                "geometry": [{"type": "CompositeSurface", "lod": "1", "boundaries": [hole]}],
            },
            "lines": {
                "type": "Road",
                "geometry": [
                    {"type": "MultiLineString", "lod": "0", "boundaries": [[0, 1], [1, 2, 3]]}
                ],
            },
            "points": {
                "type": "CityFurniture",
                "geometry": [{"type": "MultiPoint", "lod": "1", "boundaries": [4, 5]}],
            },
        },
        "vertices": CUBE_VERTICES + [[200, 200, 0], [800, 200, 0], [500, 800, 0]],
    }
    [batch] = CityJSONConnector(_write(tmp_path, doc)).read()
    assert batch.errors == [None] * 5
    rows = dict(zip(batch.source_ids, range(5), strict=False))
    g3 = batch.solids.built().geometry_3d
    assert batch.feature_classes[rows["pair"]] == "+NoiseBarrier"
    assert shapely.get_num_geometries(g3[rows["house"]]) == 6 and batch.lod[rows["house"]] == "2"
    assert shapely.get_num_geometries(g3[rows["pair"]]) == 12
    assert shapely.get_num_interior_rings(shapely.get_geometry(g3[rows["court"]], 0)) == 1
    assert (
        g3[rows["lines"]].geom_type == "MultiLineString"
        and shapely.get_num_geometries(g3[rows["lines"]]) == 2
    )
    assert g3[rows["points"]].geom_type == "MultiPoint" and shapely.has_z(g3[rows["points"]])
    # the LoD0 surface is the explicit footprint (2D); the others leave it to the pipeline
    footprint = batch.geometries[rows["house"]]
    assert not shapely.has_z(footprint) and footprint.area == pytest.approx(1.0)
    assert batch.geometries[rows["lines"]].geom_type == "MultiLineString"
    assert [batch.geometries[rows[k]] for k in ("pair", "court", "points")] == [None] * 3


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: text.replace('"version":"1.1"', '"version":"3.0"', 1), "version '3.0'"),
    ],
    ids=["truncated", "bad version"],
)
def test_unreadable_documents_are_data_errors(tmp_path, lake, damage, message):
    text = (
        (SAMPLES / ROTTERDAM)
        .read_text(encoding="utf-8")
        .replace('"version": "1.1"', '"version":"1.1"')
    )
    assert '"version":"1.1"' in text
    path = tmp_path / "damaged.city.json"
    path.write_text(damage(text), encoding="utf-8")
    with pytest.raises(DataError, match=message) as e:
        ingest(path, "damaged", lake, validate=False)
    assert str(e.value).startswith(str(path))


@pytest.mark.parametrize("name", [ROTTERDAM, DEN_HAAG_SUBSET, MULTI_LOD, SEQ])
def test_the_faces_handed_on_are_those_geos_holds(name):
    """The flat arrays the connector builds its solids from (`Solids.faces`: rings closed,
    repaired as built) are the faces read back from the geometries, row for row."""
    for batch in CityJSONConnector(CORPUS / name).read():
        assert batch.solids is not None and batch.solids.faces is not None
        given = solids.Faces(*batch.solids.faces)
        read = solids.Faces.of(np.asarray(batch.solids.built().geometry_3d, dtype=object))
        assert len(read.owner) > 0
        for mine, geos in zip(given[:4], read[:4], strict=True):  # GEOS tells no pool rows
            np.testing.assert_array_equal(mine, geos)


@pytest.mark.parametrize("value", [99, -1, True, 1.0, "0", [0]])
def test_semantic_values_that_are_no_index_reject_their_object_alone(sample, tmp_path, value):
    """One object's semantic value that is no index of its semantic surfaces (beyond them,
    negative, a bool, a float, text, a list) rejects that object with the reason; the others of
    the batch keep a surface for each face with a value, typed as the file says."""
    doc = json.loads(sample(DEN_HAAG_SUBSET).read_bytes())
    solid = [k for k, o in doc["CityObjects"].items() if o.get("geometry")]
    bad, other = solid[0], solid[1]
    doc["CityObjects"][bad]["geometry"][0]["semantics"]["values"][0][2] = value
    doc["CityObjects"][other]["geometry"][0]["semantics"]["values"][0][0] = None
    (tmp_path / "edited.city.json").write_text(json.dumps(doc))
    [batch] = CityJSONConnector(tmp_path / "edited.city.json").read()
    surfaces = dict(zip(batch.source_ids, batch.solids.surfaces, strict=True))
    errors = dict(zip(batch.source_ids, batch.errors, strict=True))
    n = len(doc["CityObjects"][bad]["geometry"][0]["semantics"]["surfaces"])
    assert errors[bad] == f"semantics values that are not indices of its {n} semantic surfaces"
    for key in solid[1:]:
        g = doc["CityObjects"][key]["geometry"][0]
        kinds = [
            g["semantics"]["surfaces"][v]["type"]
            for v in g["semantics"]["values"][0]
            if v is not None
        ]
        assert errors[key] is None and [t for t, _ in surfaces[key]] == kinds
