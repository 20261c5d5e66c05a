"""Geometry defects are repaired and only what is broken is lost (CityGML, CityJSON, GeoJSON).

Real files are damaged here the way city open data is: the last position of a ring moved by
float noise (1e-7 m, 1e-9 degrees), the closing position left out, a polygon collapsed to two
distinct positions, a face taken out of a solid. Every object must still be ingested, its note
must say what was repaired, and the footprint and surface areas must be those of the undamaged
file, computed here with shapely and numpy from the file's own coordinates, never from
citypipe's output.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import shapely
from conftest import CORPUS, SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from test_citygml import MANIFEST_COUNTS

from citypipe.connectors import rings
from citypipe.connectors.gml import GML_NAMESPACES, GeometryReader
from citypipe.connectors.gml_xlinks import XLINK_HREF
from citypipe.core.ingest import ingest

NOTE = "citypipe:geometry_repaired"
ROWS = {"Building", "BuildingPart"}
GML_ID = [f"{{{ns}}}id" for ns in GML_NAMESPACES]

# what a note says, by what it counts
SAID = {
    "noise": r"closed (\d+) rings? whose first and last positions differed by float noise",
    "open": r"closed (\d+) open rings?",
    "interior": r"dropped (\d+) interior rings? with fewer than 3 distinct positions",
    "polygon": r"dropped (\d+) polygons? with fewer than 3 distinct positions",
}


def _said(note: str | None) -> dict[str, int]:
    found = {k: re.search(p, note or "") for k, p in SAID.items()}
    return {k: int(m.group(1)) for k, m in found.items() if m}


def _local(elem) -> str:
    return etree.QName(elem).localname


def _gml_id(elem) -> str:
    return next(elem.get(k) for k in GML_ID if elem.get(k))


def _owner(elem) -> str:
    """The gml:id of the Building or BuildingPart an element belongs to."""
    return next(_gml_id(a) for a in elem.iterancestors() if _local(a) in ROWS)


def _thematic(elem) -> bool:
    """Whether an element lies in a thematic surface (CityGML boundedBy, not gml:boundedBy)."""
    return any(
        _local(a) == "boundedBy" and etree.QName(a).namespace not in GML_NAMESPACES
        for a in elem.iterancestors()
    )


def _used(tree) -> dict[str, list]:
    """{object: the Polygons its geometry is made of}: those of its own thematic surfaces and
    those its solid references by xlink:href (a garage's wall shared with its building)."""
    by_id = {_gml_id(p): p for p in tree.iter("{*}Polygon") if any(p.get(k) for k in GML_ID)}
    used: dict[str, dict] = defaultdict(dict)
    for elem in tree.iter(etree.Element):
        href = elem.get(XLINK_HREF, "").removeprefix("#")
        if href in by_id:
            used[_owner(elem)][tree.getpath(by_id[href])] = by_id[href]
        elif _local(elem) == "Polygon" and _thematic(elem):
            used[_owner(elem)][tree.getpath(elem)] = elem
    return {o: list(p.values()) for o, p in used.items()}


def _positions(ring) -> np.ndarray:
    """A LinearRing's positions, from its posList or its pos elements."""
    pos_list = ring.find("{*}posList")
    if pos_list is None:
        return np.array([p.text.split() for p in ring.iter("{*}pos")], dtype=float)
    dim = int(pos_list.get("srsDimension") or 3)
    return np.array(pos_list.text.split(), dtype=float).reshape(-1, dim)


def _text(values: np.ndarray) -> str:
    return " ".join(repr(float(v)) for v in values.ravel())


def _write(ring, positions: np.ndarray) -> None:
    """Give a LinearRing these positions, written as it writes them (posList or pos)."""
    pos_list = ring.find("{*}posList")
    if pos_list is not None:
        pos_list.text = _text(positions)
        return
    tag = ring[0].tag
    for pos in list(ring):
        ring.remove(pos)
    for position in positions:
        etree.SubElement(ring, tag).text = _text(position)


def _linear_rings(tree) -> list:
    """Every LinearRing in a thematic surface, in document order."""
    return [r for r in tree.iter("{*}LinearRing") if _thematic(r)]


def _area_3d(ring: np.ndarray) -> float:
    """Area of a planar ring in 3D: half the norm of the sum of the fan's cross products."""
    p = ring - ring[0]
    return float(np.linalg.norm(np.cross(p[1:-1], p[2:]).sum(axis=0)) / 2)


def _gml_expected(tree) -> tuple[dict, dict]:
    """From a CityGML file: {(object, surface type): total area} of its thematic surfaces
    (their own polygons and those they reference by xlink:href) and {object: footprint area}
    (the union of its GroundSurfaces, in the plane)."""
    by_id = {_gml_id(p): p for p in tree.iter("{*}Polygon") if any(p.get(k) for k in GML_ID)}
    areas: dict[tuple[str, str], float] = defaultdict(float)
    grounds: dict[str, list] = defaultdict(list)
    for elem in tree.iter(etree.Element):
        href = elem.get(XLINK_HREF, "").removeprefix("#")
        polygon = by_id.get(href) if href else elem if _local(elem) == "Polygon" else None
        if polygon is None or not _thematic(elem):
            continue
        kind = next(_local(a) for a in elem.iterancestors()
                    if _local(a.getparent()) in ("boundedBy", "opening"))  # fmt: skip
        owner = _owner(elem)
        rings_ = [_positions(r) for r in polygon.iter("{*}LinearRing")]
        areas[owner, kind] += _area_3d(rings_[0]) - sum(_area_3d(r) for r in rings_[1:])
        if kind == "GroundSurface":
            grounds[owner].append(shapely.Polygon(rings_[0][:, :2], [r[:, :2] for r in rings_[1:]]))
    return dict(areas), {o: shapely.union_all(g).area for o, g in grounds.items()}


def _rows(lake_table) -> dict[str, dict]:
    ids = lake_table.column("source_id").to_pylist()
    return dict(
        zip(ids, map(json.loads, lake_table.column("properties").to_pylist()), strict=False)
    )


def _surface_areas(read_lake, source: str) -> dict[tuple[str, str], float]:
    got: dict[tuple[str, str], float] = defaultdict(float)
    for s in read_lake(source, "surfaces").to_pylist():
        got[s["feature_id"].removeprefix(f"{source}/"), s["surface_type"]] += s["area_m2"]
    return dict(got)


def _corpus_file(relative: str) -> Path:
    return CORPUS / relative


# -- CityGML: rings closed within float noise or left open ------------------------------------

NRW = "citygml/nrw_LoD2_32_326_5727_1_NW.gml"
PLATEAU = "citygml/plateau_tokyo_53394517_bldg_6697_op_citygml2.gml"


@pytest.mark.parametrize(
    "where, name, noise, metric",
    [
        ("samples", "citygml/denhaag_1BwBP_citygml1.gml", 1e-7, True),  # RD New, metres
        ("samples", "citygml/sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml", 1e-7, True),
        pytest.param("corpus", NRW, 1e-7, True, marks=pytest.mark.corpus),  # UTM 32, 264 objects
        pytest.param("corpus", PLATEAU, 1e-9, False, marks=pytest.mark.corpus),  # JGD2011: degrees
    ],
    ids=["denhaag", "sig3d-garage", "nrw", "plateau"],
)
def test_rings_open_or_closed_within_noise_are_closed(
    where, name, noise, metric, tmp_path, lake, read_lake
):
    path = SAMPLES / name if where == "samples" else _corpus_file(name)
    tree = etree.parse(str(path))
    areas, footprints = _gml_expected(tree)
    damage: dict[str, str] = {}  # LinearRing (its XPath): what was done to it
    for i, ring in enumerate(_linear_rings(tree)):
        positions = _positions(ring)
        assert (positions[0] == positions[-1]).all()  # the file's rings are closed
        if i % 3 == 1:  # the last position off by float noise
            positions[-1, :2] += noise
            damage[tree.getpath(ring)] = "noise"
        elif i % 3 == 2:  # the closing position left out
            positions = positions[:-1]
            damage[tree.getpath(ring)] = "open"
        _write(ring, positions)
    expected = {
        o: Counter(damage.get(tree.getpath(r)) for p in polygons for r in p.iter("{*}LinearRing"))
        for o, polygons in _used(tree).items()
    }
    for counts in expected.values():
        del counts[None]
    damaged = tmp_path / path.name
    tree.write(str(damaged))

    report = ingest(damaged, "damaged", lake, validate=False)
    assert report.rejects == 0 and report.features == report.records
    table = read_lake("damaged")
    classes = Counter(c for c in table.column("feature_class").to_pylist() if c in ROWS)
    assert classes == MANIFEST_COUNTS[path.name]
    props = _rows(table)
    assert expected and {o: _said(props[o].get(NOTE)) for o in expected} == expected
    assert not any(NOTE in p for o, p in props.items() if o not in expected)
    if not metric:
        return
    assert _surface_areas(read_lake, "damaged") == pytest.approx(areas, rel=1e-7)
    assert footprints and {
        o: props[o]["citypipe:footprint_area_m2"] for o in footprints
    } == pytest.approx(footprints, abs=1e-3)  # the property is rounded to 3 decimals


SIG3D = "citygml/sig3d_v2_Building_LOD2-EPSG25832.gml"
SIG3D_BUILDING = "GML_7b1a5a6f-ddad-4c3d-a507-3eb9ee0a8e68"
SIG3D_VOLUME = 10 * 5 * 3 + 10 * 5 * 2 / 2
"""Its ground slab is 10 m x 5 m, its walls 3 m high, its gable roof 2 m above them."""


def _sig3d(tmp_path, damage) -> Path:
    tree = etree.parse(str(SAMPLES / SIG3D))
    damage(tree)
    path = tmp_path / "sig3d.gml"
    tree.write(str(path))
    return path


def _polygon(tree, gml_id: str):
    return next(p for p in tree.iter("{*}Polygon") if _gml_id(p) == gml_id)


def test_a_solid_closed_within_noise_keeps_its_volume(tmp_path, lake, read_lake):
    def noise(tree) -> None:
        for ring in _linear_rings(tree):
            positions = _positions(ring)
            positions[-1] += 1e-7
            _write(ring, positions)

    ingest(_sig3d(tmp_path, noise), "s", lake, validate=False)
    props = _rows(read_lake("s"))[SIG3D_BUILDING]
    assert _said(props[NOTE]) == {"noise": 7}
    assert props["citypipe:volume_m3"] == pytest.approx(SIG3D_VOLUME, abs=1e-3)


def test_a_collapsed_polygon_is_dropped_and_its_object_kept(tmp_path, lake, read_lake):
    tree = etree.parse(str(SAMPLES / SIG3D))
    areas, footprints = _gml_expected(tree)
    south = "GML_1d350a50-6acc-4d3c-8c28-326ca4305fd1"  # Wall South, 10 m x 3 m
    roof = "GML_b41dc792-5da6-4cd9-8f85-247583f305e3"  # Roof South

    def damage(tree) -> None:
        wall = next(_polygon(tree, south).iter("{*}LinearRing"))
        a, b = _positions(wall)[:2]
        _write(wall, np.array([a, b, b, a]))  # two distinct positions
        exterior = next(_polygon(tree, roof).iter("{*}exterior"))
        hole = etree.fromstring(etree.tostring(exterior).replace(b"exterior", b"interior"))
        a, b = _positions(hole[0])[:2]
        _write(hole[0], np.array([a, b, a]))
        exterior.addnext(hole)

    report = ingest(_sig3d(tmp_path, damage), "s", lake, validate=False)
    assert (report.features, report.rejects) == (report.records, 0)
    props = _rows(read_lake("s"))[SIG3D_BUILDING]
    assert _said(props[NOTE]) == {"polygon": 1, "interior": 1}
    assert "citypipe:volume_m3" not in props  # its shell lost a face: no longer closed
    areas[SIG3D_BUILDING, "WallSurface"] -= 10 * 3
    assert _surface_areas(read_lake, "s") == pytest.approx(areas, rel=1e-9)
    assert props["citypipe:footprint_area_m2"] == pytest.approx(footprints[SIG3D_BUILDING])


def test_an_open_shell_keeps_its_surfaces_without_a_volume(tmp_path, lake, read_lake):
    ingest(SAMPLES / SIG3D, "whole", lake, validate=False)
    assert _rows(read_lake("whole"))[SIG3D_BUILDING]["citypipe:volume_m3"] == pytest.approx(
        SIG3D_VOLUME
    )

    def open_shell(tree) -> None:
        member = next(tree.iter("{*}surfaceMember"))  # the solid's first face (an xlink)
        member.getparent().remove(member)

    areas, _ = _gml_expected(etree.parse(str(SAMPLES / SIG3D)))
    report = ingest(_sig3d(tmp_path, open_shell), "s", lake, validate=False)
    assert (report.features, report.rejects) == (report.records, 0)
    props = _rows(read_lake("s"))[SIG3D_BUILDING]
    assert "citypipe:volume_m3" not in props and NOTE not in props
    assert _surface_areas(read_lake, "s") == pytest.approx(areas, rel=1e-9)


def test_an_object_goes_to_rejects_only_when_nothing_is_left(tmp_path, lake, read_lake):
    name = "sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml"
    tree = etree.parse(str(SAMPLES / "citygml" / name))
    garage = _gml_id(next(tree.iter("{*}BuildingPart")))
    used = _used(tree)
    for polygon in used[garage]:  # its own, and its west wall, which is its building's too
        ring = next(polygon.iter("{*}LinearRing"))
        a, b = _positions(ring)[:2]
        _write(ring, np.array([a, b, a]))
    shared = [p for p in used[garage] if _owner(p) != garage]
    assert len(shared) == 1
    path = tmp_path / name
    tree.write(str(path))

    report = ingest(path, "g", lake, validate=False)
    assert (report.features, report.rejects) == (report.records - 1, 1)
    [reject] = read_lake("g", "rejects").to_pylist()
    assert reject["source_id"] == garage
    assert reject["reason"].startswith("no usable geometry left")
    assert _said(reject["reason"]) == {"polygon": len(used[garage])}
    assert "BuildingPart" not in read_lake("g").column("feature_class").to_pylist()
    assert _said(_rows(read_lake("g"))[_owner(shared[0])][NOTE]) == {"polygon": 1}


def test_a_ring_of_curve_members_is_read_and_closed():
    """gml:Ring: its curve members' positions in turn (GML 3.2); left open, it is closed."""
    gml = GML_NAMESPACES[1]
    doc = etree.fromstring(
        f'<gml:Polygon xmlns:gml="{gml}"><gml:exterior><gml:Ring>'
        "<gml:curveMember><gml:LineString><gml:posList>0 0 5 4 0 5 4 3 5</gml:posList>"
        "</gml:LineString></gml:curveMember><gml:curveMember><gml:Curve><gml:segments>"
        "<gml:LineStringSegment><gml:posList>4 3 5 0 3 5</gml:posList></gml:LineStringSegment>"
        "</gml:segments></gml:Curve></gml:curveMember></gml:Ring></gml:exterior></gml:Polygon>"
    )
    reader = GeometryReader(gml)
    (handle,) = reader.read(doc).polygons
    built = reader.build()
    assert built.polygons[handle].area == 12 and shapely.has_z(built.polygons[handle])
    assert _said(rings.describe(built.repairs[handle])) == {"open": 1}


# -- CityJSON ----------------------------------------------------------------------------------


def _faces(obj: dict) -> list:
    """The faces of a CityJSON object's Solid shells: [[ring, ...], ...]."""
    return [face for g in obj.get("geometry", ()) for shell in g["boundaries"] for face in shell]


def test_rotterdam_polygon_of_two_distinct_vertices_is_dropped(sample, lake, read_lake):
    """The Rotterdam building has a face [8, 8, 18, 18]: it is dropped, the building kept."""
    path = sample("cityjson/rotterdam_one_v1.1.city.json")
    doc = json.loads(path.read_bytes())
    vertices = np.array(doc["vertices"])
    [(key, obj)] = doc["CityObjects"].items()
    [g] = obj["geometry"]
    flat = [len(np.unique(vertices[face[0]], axis=0)) < 3 for face in g["boundaries"]]
    assert sum(flat) == 1
    report = ingest(path, "r", lake, validate=False)
    assert (report.features, report.rejects) == (1, 0)
    assert _said(_rows(read_lake("r"))[key][NOTE]) == {"polygon": 1}
    semantic = [v is not None for v in g["semantics"]["values"]]
    kept = sum(s and not f for s, f in zip(semantic, flat, strict=False))
    assert read_lake("r", "surfaces").num_rows == kept


def _cityjson_expected(doc: dict, vertices: np.ndarray) -> tuple[dict, dict, dict]:
    """{(object, type): area}, {object: footprint area}, {object: volume} from a document."""
    areas: dict[tuple[str, str], float] = defaultdict(float)
    footprints, volumes = {}, {}
    for key, obj in doc["CityObjects"].items():
        for g in obj.get("geometry", ()):
            types = [s["type"] for s in g["semantics"]["surfaces"]]
            faces, values = g["boundaries"][0], g["semantics"]["values"][0]
            ground = []
            origin = vertices[faces[0][0][0]]
            volume = 0.0
            for face, value in zip(faces, values, strict=False):
                ring = vertices[face[0]]
                closed = np.vstack([ring, ring[:1]])
                areas[key, types[value]] += _area_3d(closed)
                if types[value] == "GroundSurface":
                    ground.append(shapely.Polygon(ring[:, :2]))
                p = ring - origin  # a fan of tetrahedra from the origin
                volume += np.einsum("ij,ij->i", p[:1], np.cross(p[1:-1], p[2:])).sum() / 6
            footprints[key] = shapely.union_all(ground).area
            volumes[key] = abs(volume)
    return dict(areas), footprints, volumes


def _closed(ring: np.ndarray) -> np.ndarray:
    return np.vstack([ring, ring[:1]])


def _semantic_face(g: dict, kind: str) -> int:
    """The index of a Solid's first face of semantic type `kind`."""
    types = [s["type"] for s in g["semantics"]["surfaces"]]
    return next(k for k, v in enumerate(g["semantics"]["values"][0]) if types[v] == kind)


def test_den_haag_damaged_cityjson_loses_only_what_is_broken(sample, lake, read_lake):
    path = sample("cityjson/denhaag_DH_01_subset_v1.1.city.json")
    doc = json.loads(path.read_bytes())
    t = doc.pop("transform")  # real coordinates, so that noise can be written
    vertices = np.array(doc["vertices"]) * t["scale"] + t["translate"]
    areas, footprints, volumes = _cityjson_expected(doc, vertices)
    collapsed, opened = [k for k, o in doc["CityObjects"].items() if o.get("geometry")][:2]
    g = doc["CityObjects"][collapsed]["geometry"][0]
    face = g["boundaries"][0][_semantic_face(g, "WallSurface")]
    areas[collapsed, "WallSurface"] -= _area_3d(_closed(vertices[face[0]]))
    face[0] = [face[0][0], face[0][1], face[0][0]]  # two distinct vertices
    g = doc["CityObjects"][opened]["geometry"][0]
    roof = _semantic_face(g, "RoofSurface")
    removed = g["boundaries"][0].pop(roof)  # the shell is open
    g["semantics"]["values"][0].pop(roof)
    areas[opened, "RoofSurface"] -= _area_3d(_closed(vertices[removed[0]]))
    expected: dict[str, Counter] = defaultdict(Counter)
    expected[collapsed]["polygon"] = 1
    added: list[np.ndarray] = []
    every = [(k, r) for k, o in doc["CityObjects"].items() for f in _faces(o) for r in f]
    for i, (key, ring) in enumerate((k, r) for k, r in every if len(set(r)) > 2):  # not collapsed
        if i % 4 == 1:  # a last vertex within 1e-7 m of the first
            added.append(vertices[ring[0]] + [1e-7, -1e-7, 1e-7])
            ring.append(len(vertices) + len(added) - 1)
            expected[key]["noise"] += 1
        elif i % 4 == 2:  # the first vertex repeated, as Den Haag's full tile writes it
            ring.append(ring[0])
    doc["vertices"] = np.vstack([vertices, *added]).tolist()
    damaged = path.with_name("damaged.city.json")
    damaged.write_text(json.dumps(doc), encoding="utf-8")

    report = ingest(damaged, "dh", lake, crs="EPSG:7415", validate=False)
    assert (report.records, report.features, report.rejects) == (12, 12, 0)
    props = _rows(read_lake("dh"))
    for key in doc["CityObjects"]:
        assert _said(props[key].get(NOTE)) == expected[key], key
    assert _surface_areas(read_lake, "dh") == pytest.approx(areas, rel=1e-7)
    for key, area in footprints.items():
        assert props[key]["citypipe:footprint_area_m2"] == pytest.approx(area, abs=1e-3)
        if key in (collapsed, opened):  # a face gone: the shell is open
            assert "citypipe:volume_m3" not in props[key]
        else:
            assert props[key]["citypipe:volume_m3"] == pytest.approx(volumes[key], abs=1e-3)


# -- properties of the repair ------------------------------------------------------------------


def _ring(n: int, radius: float, centre: tuple[float, float, float]) -> np.ndarray:
    """A convex ring of n positions around `centre`, closed (the first repeated)."""
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack(
        [centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle),
         np.full(n, centre[2])]
    )  # fmt: skip
    return np.vstack([ring, ring[:1]])


def _gml_polygon(ring: np.ndarray) -> etree._Element:
    text = " ".join(repr(float(v)) for v in ring.ravel())
    return etree.fromstring(
        f'<gml:Polygon xmlns:gml="{GML_NAMESPACES[1]}"><gml:exterior><gml:LinearRing>'
        f"<gml:posList>{text}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
    )


NOISE_OR_NOT = st.just(0.0) | st.floats(1e-8, 1e-7) | st.floats(-1e-7, -1e-8)
"""An offset of float noise in metres, large enough to change a coordinate of millions."""


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(3, 40),
    radius=st.floats(0.5, 500),
    east=st.floats(2e5, 8e5),
    north=st.floats(1e6, 9e6),
    offset=st.tuples(*[NOISE_OR_NOT] * 3).filter(any),
    leave_open=st.booleans(),
)
def test_any_noisy_or_open_ring_is_closed_with_its_area(n, radius, east, north, offset, leave_open):
    ring = _ring(n, radius, (east, north, 40.0))
    damaged = ring[:-1] if leave_open else ring + np.vstack([np.zeros((n, 3)), offset])
    reader = GeometryReader(GML_NAMESPACES[1])
    (handle,) = reader.read(_gml_polygon(damaged)).polygons
    built = reader.build()
    polygon = built.polygons[handle]
    coords = shapely.get_coordinates(polygon, include_z=True)
    assert (coords[0] == coords[-1]).all() and len(coords) == n + 1
    assert polygon.area == pytest.approx(shapely.Polygon(ring[:, :2]).area, rel=1e-9)
    assert _said(rings.describe(built.repairs[handle])) == {"open" if leave_open else "noise": 1}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=0, max_size=8), min_size=1, max_size=12))
def test_distinct_positions_are_counted_as_numpy_unique_counts_them(indices):
    """Rings drawn from four points, so that repeats are common: a ring is kept exactly when
    it has three distinct positions."""
    points = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, np.nan]])
    coords = np.concatenate([points[r] for r in indices]) if any(indices) else np.zeros((0, 3))
    sizes = np.array([len(r) for r in indices])
    fix = rings.repair(coords, sizes, np.ones(len(indices), dtype=np.int64))
    distinct = [len({tuple(np.nan_to_num(points[i])) for i in r}) >= 3 for r in indices]
    assert fix.polygon_kept.tolist() == distinct
    assert fix.counts[:, 3].tolist() == [0 if d else 1 for d in distinct]


@pytest.mark.parametrize("ulps", [1, 4, 64])
def test_a_geojson_ring_closed_within_float_noise_keeps_its_shape(sample, lake, read_lake, ulps):
    """Barcelona's 10 districts with the last position of every ring moved `ulps` units in the
    last place away from its first (toward the ring's inside and outside alike): each district
    keeps its parts and its area as the file's own rings give them, with a note, never a
    sliver or spike GEOS's make_valid would keep of the noise."""
    path = sample("barcelona_districtes.geojson")
    doc = json.loads(path.read_bytes())
    areas, parts = {}, {}
    for k, feature in enumerate(doc["features"]):
        g = feature["geometry"]
        polygons = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        shape = shapely.MultiPolygon([shapely.Polygon(p[0], p[1:]) for p in polygons])
        areas[k], parts[k] = shape.area, len(polygons)
        for n, ring in enumerate(r for p in polygons for r in p):
            step = np.inf if (k + n) % 2 else -np.inf
            last = np.asarray(ring[0], dtype=float)
            for _ in range(ulps):
                last = np.nextafter(last, step)
            ring[-1] = last.tolist()
        feature["id"] = k
    path.write_text(json.dumps(doc))
    ingest(path, "districts", lake)
    table = read_lake("districts")
    assert table.num_rows == len(doc["features"]) == 10
    ids, shapes = table.column("source_id").to_pylist(), table.column("geometry").to_pylist()
    for k, wkb in zip(ids, shapes, strict=True):
        got = shapely.from_wkb(wkb)
        assert shapely.get_num_geometries(got) == parts[int(k)]
        assert got.area == pytest.approx(areas[int(k)], rel=1e-9)


def test_a_collapsed_ring_beside_the_noise_rule_is_no_crash(tmp_path, lake):
    """A polygon collapsed to one position (found by the CSV property test): merging its
    repeated positions leaves no ring GEOS can build, so it is left to make_valid, as before
    the noise rule, and the row beside it lands."""
    path = tmp_path / "collapsed.csv"
    path.write_text(
        'name,wkt\ncollapsed,"POLYGON ((0 0, 0 0, 0 0, 0 0))"\nkept,"POINT (8.1 50.1)"\n'
    )
    report = ingest(path, "collapsed", lake, crs="OGC:CRS84")
    assert report.records == report.features + report.rejects == 2


@pytest.mark.parametrize(
    ("geometry", "was"),
    [
        ({"type": "LineString", "coordinates": [[2.1, 41.3], [2.1, 41.3]]}, "LineString"),
        ({"type": "Polygon", "coordinates": [[[2.1, 41.3]] * 4]}, "Polygon"),
    ],
)
def test_a_geometry_collapsed_to_one_spot_lands_as_a_point_saying_so(
    tmp_path, lake, read_lake, geometry, was
):
    """A line or ring whose positions are all one (a digitising slip): GEOS makes it the
    Point it is; the note says what it was, not only GEOS's words."""
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "a", "properties": {}, "geometry": geometry},
    ]}  # fmt: skip
    path = tmp_path / "spot.geojson"
    path.write_text(json.dumps(doc))
    ingest(path, "spot", lake)
    (row,) = read_lake("spot").to_pylist()
    assert shapely.from_wkb(row["geometry"]).coords[0] == (2.1, 41.3)
    assert f"the {was} became a Point" in json.loads(row["properties"])[NOTE]
