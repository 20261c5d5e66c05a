"""JSON-FG 1.0 solids in `place`: Prism, MultiPrism, Polyhedron, MultiPolyhedron.

The samples (data/samples/jsonfg/) follow the JSON-FG 1.0 standard's own examples; what is
asserted comes from the files: their coordinates (transformed here with pyproj), their limits,
their own stated areas; never from citypipe's output.
"""

from __future__ import annotations

import json

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import shape

from citypipe.connectors import jsonfg_solids
from citypipe.core import orientation, solids
from citypipe.core.ingest import ingest

RD_NEW = pyproj.Transformer.from_crs("EPSG:28992", "OGC:CRS84", always_xy=True)  # of EPSG:7415
UTM32 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)  # of EPSG:5555


def _doc(path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _rows(read_lake, source: str) -> dict[str, dict]:
    rows = {r["source_id"]: r for r in read_lake(source).to_pylist()}
    for r in rows.values():
        r["geometry"] = shapely.from_wkb(r["geometry"])
        r["geometry_3d"] = shapely.from_wkb(r["geometry_3d"]) if r["geometry_3d"] else None
        r["properties"] = json.loads(r["properties"])
    return rows


def test_a_prism_of_a_point_is_a_vertical_line(sample, lake, read_lake):
    """Annex C's pylon: a point in EPSG:7415 extruded from 2.02 to 8.02."""
    path = sample("jsonfg/pylon_prism.json")
    place = _doc(path)["place"]
    report = ingest(path, "pylon", lake)
    assert (report.format, report.features, report.rejects) == ("JSON-FG 1.0", 1, 0)
    row = _rows(read_lake, "pylon")["pylon.1"]
    lon, lat = RD_NEW.transform(*place["base"]["coordinates"])
    assert row["source_crs"] == "EPSG:7415"
    assert shapely.get_coordinates(row["geometry"]) == pytest.approx(
        np.array([[lon, lat]]), abs=1e-9
    )
    assert row["geometry_3d"].geom_type == "LineString"
    line = shapely.get_coordinates(row["geometry_3d"], include_z=True)
    expected = [[lon, lat, place["lower"]], [lon, lat, place["upper"]]]
    assert line == pytest.approx(np.array(expected), abs=1e-9)
    assert row["height_m"] == pytest.approx(place["upper"] - place["lower"])


def test_a_prism_of_a_line_is_a_vertical_ribbon(sample, lake, read_lake):
    """Annex C's fence: a line string extruded from 2.02 to 3.22."""
    path = sample("jsonfg/fence_prism.json")
    place = _doc(path)["place"]
    ingest(path, "fence", lake)
    row = _rows(read_lake, "fence")["fence.1"]
    base = np.array(RD_NEW.transform(*np.array(place["base"]["coordinates"]).T)).T
    assert shapely.get_coordinates(row["geometry"]) == pytest.approx(base, abs=1e-9)
    ribbon = shapely.get_coordinates(row["geometry_3d"], include_z=True)
    assert set(np.round(ribbon[:, 2], 6)) == {place["lower"], place["upper"]}
    assert {tuple(np.round(p, 9)) for p in ribbon[:, :2]} == {tuple(np.round(p, 9)) for p in base}
    assert row["height_m"] == pytest.approx(place["upper"] - place["lower"])


def test_a_multiprism_has_the_union_of_its_bases_as_footprint(sample, lake, read_lake):
    """Annex C's Toronto City Hall: three towers on one podium height, in OGC:CRS84h."""
    path = sample("jsonfg/toronto_city_hall_multiprism.json")
    doc = _doc(path)
    prisms = doc["place"]["prisms"]
    report = ingest(path, "tch", lake)
    assert (report.features, report.rejects) == (1, 0)
    row = _rows(read_lake, "tch")[doc["id"]]
    assert row["source_crs"] == "OGC:CRS84h"
    # the file states the area of its footprint: 3553.573 m²
    assert row["properties"]["citypipe:footprint_area_m2"] == pytest.approx(
        doc["properties"]["poly_area"], rel=1e-3
    )
    # every corner of every base is a corner of the footprint, lon/lat as written
    corners = {tuple(c) for p in prisms for c in p["base"]["coordinates"][0]}
    assert corners <= {tuple(c) for c in shapely.get_coordinates(row["geometry"]).tolist()}
    top = max(p["upper"] for p in prisms)
    bottom = min(p["lower"] for p in prisms)
    assert row["height_m"] == pytest.approx(top - bottom)
    heights = set(shapely.get_coordinates(row["geometry_3d"], include_z=True)[:, 2].tolist())
    assert heights == {bottom, *(p["upper"] for p in prisms)}


def test_polyhedra_and_prisms_in_the_crs_closest_to_them(sample, lake, read_lake):
    """A collection in EPSG:5555 (UTM 32N + DHHN92): the standard's building Polyhedron, a
    MultiPolyhedron, a prism whose own CRS is a safe CURIE and one whose feature's CRS is an ad
    hoc compound (UTM 32N + DHHN2016)."""
    path = sample("jsonfg/buildings_polyhedra_prisms.json")
    features = {f["id"]: f for f in _doc(path)["features"]}
    report = ingest(path, "bld", lake)
    assert (report.format, report.features, report.rejects) == ("JSON-FG 1.0", 4, 0)
    rows = _rows(read_lake, "bld")
    assert {k: r["source_crs"] for k, r in rows.items()} == {
        "DENW19AL0000giv5BL": "EPSG:5555", "building-and-garage": "EPSG:5555",
        "courtyard": "EPSG:5555", "shed": "EPSG:25832+7837",
    }  # fmt: skip
    assert {r["theme"] for r in rows.values()} == {"building"}  # featureType app:building

    shell = features["DENW19AL0000giv5BL"]["place"]["coordinates"][0]
    row = rows["DENW19AL0000giv5BL"]
    corners = np.array([p for face in shell for p in face[0]])
    lon, lat = UTM32.transform(corners[:, 0], corners[:, 1])
    got = shapely.get_coordinates(row["geometry_3d"], include_z=True)
    assert got == pytest.approx(np.column_stack([lon, lat, corners[:, 2]]), abs=1e-9)
    bottom = shape({"type": "Polygon", "coordinates": shell[0]})  # the face at z=100
    area = row["properties"]["citypipe:footprint_area_m2"]  # in m², to the mm²
    assert area == pytest.approx(bottom.area, abs=1e-3)
    assert row["height_m"] == pytest.approx(corners[:, 2].max() - corners[:, 2].min())
    # the roof rises from 110 over one edge to 120 over the other: the mean height is 15
    assert row["properties"]["citypipe:volume_m3"] == pytest.approx(bottom.area * 15, rel=5e-3)

    garage = features["building-and-garage"]["place"]["coordinates"][1][0]
    box = np.array([p for face in garage for p in face[0]])
    garage_area = np.ptp(box[:, 0]) * np.ptp(box[:, 1])
    both = rows["building-and-garage"]
    assert both["properties"]["citypipe:footprint_area_m2"] == pytest.approx(
        bottom.area + garage_area, abs=1e-3
    )

    for key in ("courtyard", "shed"):
        place = features[key]["place"]
        base = shape(place["base"])
        height = place["upper"] - place["lower"]
        props = rows[key]["properties"]
        assert props["citypipe:footprint_area_m2"] == pytest.approx(base.area, abs=1e-3)
        assert props["citypipe:volume_m3"] == pytest.approx(base.area * height, abs=1e-3)
        assert rows[key]["height_m"] == pytest.approx(height)
    assert len(rows["courtyard"]["geometry"].interiors) == 1  # the courtyard is a void


def _collection(*places, **members) -> dict:
    return {
        "type": "FeatureCollection",
        **members,
        "features": [
            {"type": "Feature", "id": f"f{i}", "geometry": None, "place": p, "properties": {}}
            for i, p in enumerate(places)
        ],
    }


def _box(x0: float, y0: float, x1: float, y1: float, z0: float, z1: float) -> list:
    """A box's shell, its faces counter-clockwise seen from outside."""
    b = [[x0, y0, z0], [x0, y1, z0], [x1, y1, z0], [x1, y0, z0]]
    t = [[x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]]
    s = [
        [[x0, y0, z0], [x1, y0, z0], [x1, y0, z1], [x0, y0, z1]],
        [[x1, y0, z0], [x1, y1, z0], [x1, y1, z1], [x1, y0, z1]],
        [[x1, y1, z0], [x0, y1, z0], [x0, y1, z1], [x1, y1, z1]],
        [[x0, y1, z0], [x0, y0, z0], [x0, y0, z1], [x0, y1, z1]],
    ]
    return [[r + [r[0]]] for r in [b, t, *s]]


def test_a_solid_without_a_crs_is_in_crs84h(tmp_path, lake, read_lake):
    """JSON-FG's default for 3D coordinates is OGC:CRS84h: lon, lat, ellipsoidal height."""
    shell = _box(8.0, 50.0, 8.0001, 50.0001, 120.0, 133.5)
    path = tmp_path / "box.json"
    path.write_text(json.dumps(_collection({"type": "Polyhedron", "coordinates": [shell]})))
    ingest(path, "box", lake)
    row = _rows(read_lake, "box")["f0"]
    assert row["source_crs"] == "OGC:CRS84h"
    assert row["height_m"] == pytest.approx(133.5 - 120.0)
    assert shapely.bounds(row["geometry"]).tolist() == pytest.approx([8.0, 50.0, 8.0001, 50.0001])


def test_solids_beside_points_in_one_place_batch(tmp_path, lake, read_lake):
    """Place points come as a coordinate array: a prism among them still gets its footprint."""
    prism = {
        "type": "Prism",
        "base": {"type": "Point", "coordinates": [81220.15, 455113.71]},
        "upper": 5.0,
    }
    point = {"type": "Point", "coordinates": [81230.0, 455120.0]}
    path = tmp_path / "mixed.json"
    crs = "http://www.opengis.net/def/crs/EPSG/0/7415"
    path.write_text(json.dumps(_collection(point, prism, coordRefSys=crs)))
    report = ingest(path, "mixed", lake)
    assert (report.features, report.rejects) == (2, 0)
    rows = _rows(read_lake, "mixed")
    expected = np.array([RD_NEW.transform(81230.0, 455120.0)])
    assert shapely.get_coordinates(rows["f0"]["geometry"]) == pytest.approx(expected, abs=1e-9)
    # no lower: the prism rises from the origin of the vertical axis
    assert rows["f1"]["height_m"] == 5.0 and rows["f0"]["height_m"] is None


POINT = {"type": "Point", "coordinates": [1, 2]}


@pytest.mark.parametrize(
    ("place", "reason"),
    [
        ({"type": "Prism", "base": POINT, "lower": 9, "upper": 3}, "lower 9.0 is above upper 3.0"),
        ({"type": "Prism", "base": POINT, "lower": 1}, "'upper' is missing"),
        ({"type": "Prism", "base": POINT, "upper": "high"}, "'upper' is not a number"),
        ({"type": "Prism", "base": {"type": "Polyhedron", "coordinates": []}, "upper": 3},
         "the base is not"),
        ({"type": "MultiPrism", "prisms": []}, "no prisms"),
        ({"type": "Prism", "base": {"type": "LineString", "coordinates": [[0, 0], [1]]},
          "upper": 3}, "the base is a position of 1 number"),
        ({"type": "Polyhedron", "coordinates": [[[[[0, 0], [1, 0], [1, 1], [0, 0]]]]]},
         "three coordinates"),
        ({"type": "MultiPolyhedron", "coordinates": {"not": "a list"}},
         "invalid JSON-FG MultiPolyhedron"),
    ],
)  # fmt: skip
def test_a_solid_that_cannot_be_read_is_rejected_with_the_reason(
    tmp_path, lake, read_lake, place, reason
):
    good = {"type": "Prism", "base": {"type": "Point", "coordinates": [8.0, 50.0]}, "upper": 3}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_collection(good, place)))
    report = ingest(path, "bad", lake, validate=False)
    assert (report.features, report.rejects) == (1, 1)
    rejected = read_lake("bad", "rejects").to_pylist()[0]
    assert rejected["source_id"] == "f1" and reason in rejected["reason"]
    assert json.loads(rejected["record"])["place"] == place


@pytest.mark.parametrize("seed", range(8))
def test_a_polygon_prism_is_a_closed_solid_of_base_area_times_height(seed):
    """Random star-shaped polygons, some with a hole, in any ring orientation: the extruded
    faces close a shell whose volume is the base's area times upper - lower."""
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 12)))
    radii = rng.uniform(20, 50, len(angles))
    ring = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    ring = ring[::-1] if seed % 2 else ring  # clockwise half of the time
    holes = [[[-5, -5], [-5, 5], [5, 5], [5, -5], [-5, -5]]] if seed % 3 == 0 else []
    base = {"type": "Polygon", "coordinates": [[*ring.tolist(), ring[0].tolist()], *holes]}
    lower, upper = rng.uniform(-10, 10), rng.uniform(11, 60)
    solid = jsonfg_solids.read({"type": "Prism", "base": base, "lower": lower, "upper": upper})
    area = shape(base).area
    assert solid.footprint.area == pytest.approx(area)
    assert solids.volumes(np.array([solid.shape]))[0] == pytest.approx(area * (upper - lower))
    assert solids.heights(np.array([solid.shape]))[0] == pytest.approx(upper - lower)
    # the faces look outwards: down at the bottom, up at the top
    normals = orientation.area_vectors(shapely.get_parts(solid.shape))
    assert normals[0, 2] < 0 < normals[1, 2]


def _without_first_face(shells: list) -> list:
    return [shells[0][1:], *shells[1:]]


def _first_position_2d(shells: list) -> list:
    face = shells[0][0]
    return [[[[face[0][0][:2], *face[0][1:]], *face[1:]], *shells[0][1:]], *shells[1:]]


def _first_ring_cut_to_2_positions(shells: list) -> list:
    face = shells[0][0]
    return [[[face[0][:2], *face[1:]], *shells[0][1:]], *shells[1:]]


def _first_ring_opened(shells: list) -> list:
    face = shells[0][0]
    return [[[face[0][:-1], *face[1:]], *shells[0][1:]], *shells[1:]]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda shells: shells[0], "a Polyhedron's coordinates nested fewer than 5 arrays deep"),
        (lambda shells: [shells], "a Polyhedron's coordinates nested more than 5 arrays deep"),
        (lambda shells: [], "a polyhedron without shells"),
        (lambda shells: [[]], "shell 1 is empty"),
        (lambda shells: [[[]]], "shell 1 has a face without rings"),
        (_first_position_2d, ("a position of 2 numbers in shell 1 (a solid's hold three "
                             "coordinates, x, y and z)")),
        (_first_ring_cut_to_2_positions, "a ring of fewer than 3 distinct positions in shell 1"),
        (_without_first_face, ("shell 1 is not closed: {edges} edges bound an odd number of its "
                              "faces")),
    ],
)  # fmt: skip
def test_a_malformed_polyhedron_is_rejected_saying_what_is_wrong(
    sample, lake, read_lake, change, reason
):
    """The sample's Polyhedron with an array level missing or too many, without shells, faces
    or rings, with its first position cut to 2D (mixed dimensions), a ring cut to 2 positions,
    or its first face taken away (a shell open along that face's edges): rejected with a reason
    in JSON-FG's terms (they were numpy's "inhomogeneous shape", "list index out of range", or
    an open shell landed as a solid); the sample's other solids landed."""
    path = sample("jsonfg/buildings_polyhedra_prisms.json")
    doc = _doc(path)
    place = next(f["place"] for f in doc["features"] if f["place"]["type"] == "Polyhedron")
    first_ring = place["coordinates"][0][0][0]
    place["coordinates"] = change(place["coordinates"])
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = ingest(path, "solids", lake)
    assert (report.records, report.rejects) == (len(doc["features"]), 1)
    [why] = read_lake("solids", "rejects").column("reason").to_pylist()
    edges = len(first_ring) - 1  # the face's ring is closed: its last position is its first
    assert why == "invalid JSON-FG Polyhedron: " + reason.format(edges=edges)


def test_a_polyhedron_whose_rings_are_left_open_is_read_as_closed(sample, lake, read_lake):
    """The sample's Polyhedron with its first ring's closing position left out, as GeoJSON
    readers close a polygon's: the same solid lands."""
    path = sample("jsonfg/buildings_polyhedra_prisms.json")
    doc = _doc(path)
    place = next(f["place"] for f in doc["features"] if f["place"]["type"] == "Polyhedron")
    expected = shape({"type": "MultiPolygon", "coordinates": place["coordinates"][0]})
    place["coordinates"] = _first_ring_opened(place["coordinates"])
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = ingest(path, "solids", lake)
    assert report.rejects == 0
    feature = next(f for f in doc["features"] if f["place"] is place)
    landed = jsonfg_solids.read(place).shape
    assert landed.equals(expected) and feature["id"] in _rows(read_lake, "solids")


def test_a_prism_base_of_2d_and_3d_positions_is_read_by_geojsons_rules(sample, lake, read_lake):
    """The sample's polygon Prism with a z added to its base's second position: GeoJSON's
    readers take such a polygon in 2D (it was refused with numpy's "inhomogeneous shape"); the
    same prism lands."""
    path = sample("jsonfg/buildings_polyhedra_prisms.json")
    doc = _doc(path)
    feature = next(f for f in doc["features"] if f["place"]["type"] == "Prism")
    base = feature["place"]["base"]
    expected = shapely.force_2d(shape(base))
    base["coordinates"][0][1] = [*base["coordinates"][0][1], 7.5]
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = ingest(path, "solids", lake)
    assert report.rejects == 0
    assert jsonfg_solids.read(feature["place"]).footprint.equals(expected)
    assert feature["id"] in _rows(read_lake, "solids")
