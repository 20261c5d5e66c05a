"""GeoJSON, OGC API - Features and JSON-FG files: counts, places and the CRS traps."""

from __future__ import annotations

import gc
import json
import tempfile
from pathlib import Path

import numpy as np
import orjson
import pyproj
import pytest
import shapely
from conftest import SAMPLES, in_source_order
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors.geojson import GeoJSONConnector
from citypipe.connectors.jsonstream import open_json
from citypipe.core.ingest import ingest
from citypipe.geo.errors import DataError
from citypipe.geo.types import Points


def _points(table) -> np.ndarray:
    return shapely.get_coordinates(
        shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    )


def _source_features(path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def test_fountains_agree_with_their_utm_coordinates(sample, lake, read_lake):
    """All 1988 Barcelona fountains land within 1 m of the file's own ETRS89 / UTM 31N X/Y."""
    path = sample("barcelona_drinking_fountains.geojson")
    report = ingest(path, "fountains", lake)
    assert (report.records, report.features, report.rejects) == (1988, 1988, 0)
    table = read_lake("fountains")
    props = [json.loads(p) for p in table.column("properties").to_pylist()]
    to_utm = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:25831", always_xy=True)
    lonlat = _points(table)
    x, y = to_utm.transform(lonlat[:, 0], lonlat[:, 1])
    fx = np.array([p["INVENTARI_COORDENADA_X"] for p in props], dtype=float)
    fy = np.array([p["INVENTARI_COORDENADA_Y"] for p in props], dtype=float)
    assert np.hypot(x - fx, y - fy).max() < 1.0


def test_legacy_crs_member_in_utm_lands_in_esslingen(sample, lake, read_lake):
    path = sample("esslingen_parking_epsg25832.geojson")
    report = ingest(path, "esslingen", lake)
    assert report.features == 250 and report.declared_crs == "urn:ogc:def:crs:EPSG::25832"
    table = in_source_order(read_lake("esslingen"))
    assert set(table.column("source_crs").to_pylist()) == {"EPSG:25832"}
    xy = _points(table)
    # Esslingen am Neckar lies around 9.31 E, 48.74 N
    assert (abs(xy[:, 0] - 9.31) < 0.1).all() and (abs(xy[:, 1] - 48.74) < 0.06).all()
    first = _source_features(path)[0]["geometry"]["coordinates"][0][0]
    lon, lat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True).transform(
        *first[:2]
    )
    out = shapely.from_wkb(table.column("geometry")[0].as_py())
    assert shapely.get_coordinates(out)[0] == pytest.approx([lon, lat], abs=1e-9)


@pytest.mark.parametrize(
    ("href", "lands"),
    [
        ("http://spatialreference.org/ref/epsg/25832/proj4/", True),
        ("https://epsg.io/25832", True),
        ("https://example.org/crs/esslingen.wkt", False),
    ],
)
def test_a_link_crs_is_read_for_its_epsg_code_and_never_fetched(
    sample, tmp_path, lake, read_lake, href, lands
):
    doc = json.loads(sample("esslingen_parking_epsg25832.geojson").read_text(encoding="utf-8"))
    doc["crs"] = {"type": "link", "properties": {"href": href, "type": "proj4"}}
    path = tmp_path / "linked.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    if not lands:
        with pytest.raises(DataError, match="never fetches"):
            ingest(path, "linked", lake)
        return
    assert ingest(path, "linked", lake).features == 250
    first = doc["features"][0]["geometry"]["coordinates"][0][0]
    lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True).transform(
        *first[:2]
    )
    assert _points(in_source_order(read_lake("linked")))[0] == pytest.approx(lonlat, abs=1e-9)


def test_wfs_geojson_in_utm_lands_in_freiburg(sample, lake, read_lake):
    report = ingest(
        sample("freiburg_wfs110_GetFeature_parking_live_epsg25832.geojson"), "freiburg", lake
    )
    assert report.features == 19 and report.declared_count == 19
    xy = _points(read_lake("freiburg"))
    # Freiburg im Breisgau: about 7.85 E, 47.99 N
    assert (abs(xy[:, 0] - 7.85) < 0.1).all() and (abs(xy[:, 1] - 47.99) < 0.05).all()


@pytest.mark.parametrize(
    "name, count",
    [
        ("karlsruhe_geoserver_wfs_GetFeature_disabled_parking.geojson", 693),
        ("jena_parking.geojson", 103),
    ],
)
def test_epsg4326_urn_written_lon_lat_stays_lon_lat(sample, lake, read_lake, name, count):
    """GeoServer writes lon, lat under urn:ogc:def:crs:EPSG::4326; nothing may be swapped."""
    path = sample(name)
    assert ingest(path, "s", lake).features == count
    features = _source_features(path)
    out = _points(in_source_order(read_lake("s"), [f.get("id") for f in features]))
    src = np.array([f["geometry"]["coordinates"][:2] for f in features])
    assert np.allclose(out, src)


def test_jena_geometry_matches_its_own_utm_attribute(sample, lake, read_lake):
    """Jena's features carry `the_geom` in EPSG:25832: our lon/lat must be the same place."""
    path = sample("jena_parking.geojson")
    ingest(path, "jena", lake)
    table = read_lake("jena")
    to_utm = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:25832", always_xy=True)
    lonlat = _points(table)
    x, y = to_utm.transform(lonlat[:, 0], lonlat[:, 1])
    utm = np.array(
        [
            json.loads(p)["the_geom"]["coordinates"][:2]
            for p in table.column("properties").to_pylist()
        ]
    )
    assert np.hypot(x - utm[:, 0], y - utm[:, 1]).max() < 2.0


def test_bicing_geometry_matches_latitude_longitude_attributes(sample, lake, read_lake):
    ingest(sample("barcelona_bicing_stations.geojson"), "bicing", lake)
    table = read_lake("bicing")
    assert table.num_rows == 465
    props = [json.loads(p) for p in table.column("properties").to_pylist()]
    attrs = np.array([[p["longitude"], p["latitude"]] for p in props])
    assert np.abs(_points(table) - attrs).max() < 1e-5


def test_ids_names_and_themes(sample, lake, read_lake):
    path = sample("karlsruhe_geoserver_wfs_GetFeature_disabled_parking.geojson")
    ingest(path, "ka", lake, theme="parking", fields={"name": "standort"})
    features = _source_features(path)
    table = in_source_order(read_lake("ka"), [f["id"] for f in features]).to_pylist()
    first = features[0]
    assert table[0]["source_id"] == first["id"] == "behinderten_parkplaetze.1"
    assert table[0]["feature_id"] == "ka/behinderten_parkplaetze.1"
    assert table[0]["name"] == first["properties"]["standort"]
    assert {r["theme"] for r in table} == {"parking"}
    assert json.loads(table[0]["properties"]) == first["properties"]


def test_districts_keep_catalan_names(sample, lake, read_lake):
    ingest(sample("barcelona_districtes.geojson"), "districtes", lake, fields={"name": "NOM"})
    names = set(read_lake("districtes").column("name").to_pylist())
    assert len(names) == 10 and "Sant Martí" in names and "Eixample" in names


def test_oapif_items_and_single_features(sample, lake, read_lake):
    report = ingest(sample("nrw_kataster_ldproxy_items_gebaeudebauwerk.json"), "nrw", lake)
    assert report.format == "OGC API - Features" and report.features == 10
    assert all(i.startswith("DENW") for i in read_lake("nrw").column("source_id").to_pylist())
    report = ingest(sample("vineyards_ldproxy_items_crs84.json"), "vineyards", lake)
    # one page of 1587: numberReturned (3) is what the page must hold
    assert (report.features, report.declared_count) == (3, 3)


def test_jsonfg_and_geojson_of_one_feature_agree(sample, lake, read_lake):
    fg = ingest(sample("pdok_gokoala_item_4030_jsonfg.json"), "fg", lake)
    gj = ingest(sample("pdok_gokoala_item_4030_geojson.json"), "gj", lake)
    assert fg.format.startswith("JSON-FG") and gj.format == "OGC API - Features"
    a, b = read_lake("fg").to_pylist()[0], read_lake("gj").to_pylist()[0]
    assert a["source_id"] == b["source_id"] == "4030"
    assert shapely.get_coordinates(shapely.from_wkb(a["geometry"])).tolist() == [
        [4.88925, 52.38692]
    ]
    assert a["geometry"] == b["geometry"] and json.loads(a["properties"]) == json.loads(
        b["properties"]
    )


def test_stream_batches_match_a_whole_parse(sample):
    """Cut into tiny batches, the streamed features are the same as one orjson parse."""
    path = sample("barcelona_drinking_fountains.geojson")
    doc = open_json(path, "features", batch_bytes=4096)
    streamed = [f for batch in doc.batches() for f in batch]
    whole = orjson.loads(path.read_bytes())
    assert len(list(zip(doc._cuts, doc._cuts[1:], strict=False))) > 100
    assert streamed == whole["features"] and doc.count == 1988
    assert doc.header["crs"] == whole["crs"]
    small = open_json(path, "features")  # fits one batch: parsed whole, the same result
    assert [f for b in small.batches() for f in b] == streamed
    assert (small.header, small.count) == (doc.header, doc.count)


def test_header_members_after_the_features_are_read(tmp_path):
    """GeoServer puts `crs` and counts after the features array."""
    p = tmp_path / "late.json"
    p.write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","id":"a\\"}","geometry":null,'
        '"properties":{"t":"]}"}}],"totalFeatures":1,"crs":{"type":"name","properties":{"name":"EPSG:3857"}}}'
    )
    doc = open_json(p, "features", batch_bytes=8)
    assert (
        doc.header["crs"]["properties"]["name"] == "EPSG:3857" and doc.header["totalFeatures"] == 1
    )
    assert [f["id"] for b in doc.batches() for f in b] == ['a"}']


def test_2d_points_are_handed_over_as_coordinates_and_the_rest_as_shapes(sample):
    from citypipe.connectors.geojson_shapes import to_geometries
    from citypipe.geo.types import Points

    geometries = [
        f["geometry"] for f in _source_features(sample("barcelona_drinking_fountains.geojson"))
    ]
    points, errors = to_geometries([*geometries, None])
    assert isinstance(points, Points) and not any(errors)
    assert points.xy[0].tolist() == geometries[0]["coordinates"]
    assert points.present.tolist() == [True] * len(geometries) + [False]
    for odd in (
        {"type": "Point", "coordinates": [2.1, 41.4, 12.0]},
        {"type": "Point", "coordinates": []},
    ):
        shapes, _ = to_geometries(
            [geometries[0], odd]
        )  # Z or an empty point: shapely keeps them apart
        assert isinstance(shapes, np.ndarray) and shapes[1].has_z == (len(odd["coordinates"]) == 3)


def test_positions_with_heights_keep_them_but_are_not_measured_as_objects(
    tmp_path, lake, read_lake
):
    """A point and a line with Z (a lamp post at 12 m, a pipe): Z kept in geometry_3d, but no
    height, footprint area or volume, which only 3D objects (solids, surfaces) have."""
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "lamp", "properties": {},
         "geometry": {"type": "Point", "coordinates": [2.17, 41.387, 12.0]}},
        {"type": "Feature", "id": "pipe", "properties": {},
         "geometry": {"type": "LineString",
                      "coordinates": [[2.17, 41.387, 3.0], [2.171, 41.388, 4.0]]}},
    ]}  # fmt: skip
    path = tmp_path / "z.geojson"
    path.write_text(json.dumps(doc))
    ingest(path, "z", lake, validate=False)
    table = read_lake("z")
    assert table.column("height_m").to_pylist() == [None, None]
    lamp = shapely.from_wkb(table.column("geometry_3d")[0].as_py())
    assert (lamp.x, lamp.y, lamp.z) == (2.17, 41.387, 12.0)
    for props in map(json.loads, table.column("properties").to_pylist()):
        assert not any(k.startswith("citypipe:") for k in props)


def test_positions_of_two_three_and_four_values_keep_their_plan(sample, tmp_path, lake, read_lake):
    """Barcelona's districts with heights on some positions only (a ring of 2D and 3D positions,
    a collection of a 3D district and a 2D point) and four values on others (RFC 7946 lets a
    reader ignore the fourth): every district lands where the file puts it, none rejected."""
    path = sample("barcelona_districtes.geojson")
    doc = json.loads(path.read_bytes())
    plans = [shapely.from_geojson(json.dumps(f["geometry"])) for f in doc["features"]]
    first = doc["features"][0]["geometry"]  # a Polygon: its ring's every other position 3D
    first["coordinates"] = [
        [p + [12.5] if i % 2 else p for i, p in enumerate(r)] for r in first["coordinates"]
    ]
    second = doc["features"][1]["geometry"]  # a 3D polygon and a 2D point, collected
    centre = shapely.centroid(plans[1])
    second_3d = {
        "type": "Polygon",
        "coordinates": [[p + [7] for p in r] for r in second["coordinates"]],
    }
    doc["features"][1]["geometry"] = {
        "type": "GeometryCollection",
        "geometries": [second_3d, {"type": "Point", "coordinates": [centre.x, centre.y]}],
    }
    third = doc["features"][2]["geometry"]  # four values everywhere
    third["coordinates"] = [
        [[x, y, 3, 99] for x, y in r] for part in third["coordinates"] for r in [part[0]]
    ]
    third["type"] = "MultiPolygon"
    third["coordinates"] = [[r] for r in third["coordinates"]]
    mixed = tmp_path / "mixed.geojson"
    mixed.write_text(json.dumps(doc))
    report = ingest(mixed, "districts", lake)
    assert (report.features, report.rejects) == (10, 0)
    by_name = {
        json.loads(p)["NOM"]: shapely.from_wkb(g)
        for p, g in zip(
            read_lake("districts").column("properties").to_pylist(),
            read_lake("districts").column("geometry").to_pylist(),
            strict=True,
        )
    }
    names = [f["properties"]["NOM"] for f in doc["features"]]
    assert shapely.equals(by_name[names[0]], plans[0])
    assert shapely.equals(by_name[names[1]], shapely.union(plans[1], centre))
    assert (
        shapely.get_coordinates(by_name[names[2]]).tolist()
        == shapely.get_coordinates(
            shapely.MultiPolygon([shapely.Polygon(p.exterior) for p in shapely.get_parts(plans[2])])
        ).tolist()
    )


def test_a_document_of_one_geometry_is_one_feature(tmp_path, lake, read_lake):
    """RFC 7946 lets a GeoJSON text be a geometry alone: Esslingen's first car park's polygon,
    its legacy crs member with it, lands where the FeatureCollection puts it."""
    collection = json.loads((SAMPLES / "esslingen_parking_epsg25832.geojson").read_bytes())
    geometry = {**collection["features"][0]["geometry"], "crs": collection["crs"]}
    path = tmp_path / "one.geojson"
    path.write_text(json.dumps(geometry), encoding="utf-8")
    report = ingest(path, "one", lake)
    assert (report.records, report.features) == (1, 1)
    whole = ingest(SAMPLES / "esslingen_parking_epsg25832.geojson", "all", lake)
    assert whole.features == 250
    first = in_source_order(read_lake("all")).column("geometry")[0].as_py()
    assert read_lake("one").column("geometry")[0].as_py() == first


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        (lambda x, y: {"type": "MultiPoint", "coordinates": [[x, y], [x]]},
         "a position of 1 number "),
        (lambda x, y: {"type": "Polygon", "coordinates": [[x, y], [x, y + 1e-4], [x, y]]},
         "a Polygon's coordinates nested fewer than 3 arrays deep"),
        (lambda x, y: {"type": "Point"}, "a Point without coordinates"),
    ],
)  # fmt: skip
def test_a_malformed_geometry_is_rejected_in_geojsons_terms(sample, lake, read_lake, shape, reason):
    """One of Jena's parking points rewritten with malformed positions: rejected with a reason a
    user can act on (it was numpy's: "inhomogeneous shape after 1 dimensions", "Input operand 0
    does not have enough dimensions"), the other features landed."""
    path = sample("jena_parking.geojson")
    doc = json.loads(path.read_text(encoding="utf-8"))
    first = doc["features"][0]
    first["geometry"] = shape(*first["geometry"]["coordinates"][:2])
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = ingest(path, "jena", lake)
    assert (report.records, report.rejects) == (len(doc["features"]), 1)
    [why] = read_lake("jena", "rejects").column("reason").to_pylist()
    assert why.startswith("invalid GeoJSON geometry: ") and reason in why


@pytest.mark.parametrize("written", [list, lambda p: json.dumps(p, ensure_ascii=False)])
def test_properties_that_are_not_an_object_are_rejected_as_read(sample, lake, read_lake, written):
    """One of Jena's parking features with its properties written as an array of its values, or
    as JSON text (exporters that serialise twice): they were dropped and the feature landed
    with none; it is rejected with the reason, its properties in the record as read."""
    path = sample("jena_parking.geojson")
    doc = json.loads(path.read_text(encoding="utf-8"))
    first = doc["features"][0]
    values = list(first["properties"].values())
    first["properties"] = written(first["properties"] if written is not list else values)
    path.write_text(json.dumps(doc), encoding="utf-8")
    report = ingest(path, "jena", lake)
    count = len(doc["features"])
    assert (report.records, report.features, report.rejects) == (count, count - 1, 1)
    [reject] = read_lake("jena", "rejects").to_pylist()
    assert "properties are a" in reject["reason"] and "not an object" in reject["reason"]
    assert json.loads(reject["record"])["properties"] == first["properties"]


def test_a_multipolygon_with_a_polygon_of_no_rings_lands_without_it(tmp_path, lake, read_lake):
    """A MultiPolygon member `[]` (a polygon without rings) beside a square, or alone: the batch
    crashed the process (shapely's from_ragged_array, a segmentation fault); the empty polygon
    holds nothing and is left out, as shapely's `shape` leaves it out of `[[]]`."""
    square = [[[2.1, 41.3], [2.2, 41.3], [2.2, 41.4], [2.1, 41.3]]]
    shapes = [[[], square], [[]], [square]]
    features = [
        {"type": "Feature", "id": f"m{i}", "properties": {},
         "geometry": {"type": "MultiPolygon", "coordinates": c}}
        for i, c in enumerate(shapes)
    ]  # fmt: skip
    path = tmp_path / "multi.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    report = ingest(path, "multi", lake)
    assert (report.records, report.rejects) == (3, 0)
    table = read_lake("multi")
    ids, geometries = table.column("source_id").to_pylist(), table.column("geometry").to_pylist()
    landed = dict(zip(ids, geometries, strict=True))
    polygon = shapely.Polygon(square[0])
    assert shapely.from_wkb(landed["m0"]).equals(polygon)
    assert shapely.from_wkb(landed["m2"]).equals(polygon)


def test_an_id_that_is_neither_string_nor_number_is_kept_as_its_json(tmp_path, lake, read_lake):
    """RFC 7946 ids are strings or numbers; a `true` or an object id was kept as Python writes
    it ("True", "{'a': 1}"), which no JSON reader reads back; it is kept as its JSON."""
    ids = [True, {"a": 1}, [1, "x"], "s", 7]
    features = [
        {"type": "Feature", "id": i, "properties": {"n": n}, "geometry": None}
        for n, i in enumerate(ids)
    ]
    path = tmp_path / "ids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    ingest(path, "ids", lake)
    table = read_lake("ids")
    landed = {
        json.loads(p)["n"]: i
        for p, i in zip(
            table.column("properties").to_pylist(),
            table.column("source_id").to_pylist(),
            strict=True,
        )
    }
    assert [landed[n] for n in range(len(ids))] == [
        i if isinstance(i, str) else json.dumps(i, separators=(",", ":")) for i in ids
    ]


_KEY = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
_FOREIGN = st.dictionaries(
    _KEY.filter(lambda k: k not in ("type", "id", "geometry", "properties", "features",
                                    "coordinates", "geometries", "crs", "bbox", "place",
                                    "coordRefSys", "time", "featureType", "links")),
    _JSON, max_size=3,
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    top=_FOREIGN,
    feature=_FOREIGN,
    geometry=_FOREIGN,
    properties=st.dictionaries(_KEY, _JSON, max_size=4),
    lonlat=st.tuples(st.floats(-179.9, 179.9), st.floats(-89.9, 89.9)),
)
def test_foreign_members_at_every_level_leave_features_as_they_are(
    top, feature, geometry, properties, lonlat
):
    """Members GeoJSON does not define, on the collection, the feature and the geometry (RFC
    7946 6.1 allows them), and any JSON in the properties: the point and the properties read
    as written, whatever the foreign members hold."""
    point = {"type": "Point", "coordinates": list(lonlat), **geometry}
    doc = {"type": "FeatureCollection", **top, "features": [
        {"type": "Feature", **feature, "geometry": point, "properties": properties}
    ]}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "foreign.geojson"
        path.write_bytes(orjson.dumps(doc))
        [batch] = list(GeoJSONConnector(path).read())
    assert list(batch.errors or [None]) == [None]
    assert list(batch.properties) == [properties]
    shapes = batch.geometries
    xy = shapes.xy if isinstance(shapes, Points) else shapely.get_coordinates(shapes)
    assert np.asarray(xy).tolist() == [list(lonlat)]


def test_a_crs_member_on_a_feature_or_its_geometry_declares_its_coordinates(
    tmp_path, lake, read_lake
):
    """GeoJSON 2008 (section 3): an object's `crs` member declares its coordinates, one
    without acquires its parent's. Amsterdam's Dam in a collection declared in UTM 31N, one
    feature in Web Mercator (its own member), one in CRS84 (its geometry's member): each lands
    on the Dam; read in the collection's CRS, the two were rejected."""
    dam = (4.8932, 52.3731)
    utm, mercator = (
        pyproj.Transformer.from_crs("OGC:CRS84", code, always_xy=True).transform(*dam)
        for code in ("EPSG:32631", "EPSG:3857")
    )

    def point(xy, **more):
        return {"type": "Point", "coordinates": list(xy), **more}

    def name(code):
        return {"type": "name", "properties": {"name": code}}

    features = [
        {"type": "Feature", "properties": {"n": 1}, "geometry": point(utm)},
        {"type": "Feature", "properties": {"n": 2}, "geometry": point(mercator),
         "crs": {"type": "EPSG", "properties": {"code": 3857}}},
        {"type": "Feature", "properties": {"n": 3},
         "geometry": point(dam, crs=name("urn:ogc:def:crs:OGC:1.3:CRS84"))},
    ]  # fmt: skip
    path = tmp_path / "dam.geojson"
    doc = {"type": "FeatureCollection", "crs": name("EPSG:32631"), "features": features}
    path.write_text(json.dumps(doc))
    report = ingest(path, "dam", lake)
    assert (report.features, report.rejects) == (3, 0)
    table = read_lake("dam")
    landed = {
        json.loads(p)["n"]: shapely.from_wkb(g)
        for p, g in zip(table["properties"].to_pylist(), table["geometry"].to_pylist(), strict=True)
    }
    for n in (1, 2, 3):
        assert (landed[n].x, landed[n].y) == pytest.approx(dam, abs=1e-9)


@pytest.mark.parametrize("kind", ["Polygon", "MultiPolygon"])
def test_a_ring_closed_within_float_noise_is_closed_on_its_first_position(
    tmp_path, lake, read_lake, kind
):
    """A ring whose last position is its first plus 1e-12 (4.9 rounded on a conversion to
    4.899999999999999 at one end): closed on the first position, not by one more position a
    trillionth of a degree away; a ring open by a real gap is still closed by one more."""
    noisy = [[4.899999999999999, 52.3], [4.91, 52.3], [4.91, 52.31], [4.9, 52.31],
             [4.9 + 1e-12, 52.3 + 1e-12]]  # fmt: skip
    gap = [[5.0, 52.0], [5.1, 52.0], [5.1, 52.1], [5.0, 52.1], [5.0, 52.01]]
    features = [
        {"type": "Feature", "properties": {"n": n},
         "geometry": {"type": kind, "coordinates": [[ring]] if kind == "MultiPolygon" else [ring]}}
        for n, ring in enumerate((noisy, gap))
    ]  # fmt: skip
    path = tmp_path / "rings.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    ingest(path, "rings", lake)
    table = read_lake("rings")
    landed = {
        json.loads(p)["n"]: shapely.get_coordinates(shapely.from_wkb(g)).tolist()
        for p, g in zip(table["properties"].to_pylist(), table["geometry"].to_pylist(), strict=True)
    }
    assert landed[0] == [*noisy[:4], noisy[0]]
    assert landed[1] == [*gap, gap[0]]


@pytest.mark.parametrize("name", ["CRS:84", "crs:84"])
def test_a_crs_member_naming_wms_crs84_is_longitude_latitude(tmp_path, lake, read_lake, name):
    """WMS 1.3's CRS:84 (OGC:CRS84, longitude first), as WFS capabilities list it and GeoJSON
    writers copy it into a `crs` member: refused as an unknown CRS, it is OGC:CRS84."""
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Point",
               "coordinates": [2.1734, 41.3851]}}  # fmt: skip
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": name}},
           "features": [feature]}  # fmt: skip
    path = tmp_path / "crs84.geojson"
    path.write_text(json.dumps(doc))
    assert ingest(path, "crs84", lake).features == 1
    [geometry] = read_lake("crs84")["geometry"].to_pylist()
    point = shapely.from_wkb(geometry)
    assert (point.x, point.y) == (2.1734, 41.3851)


@pytest.mark.parametrize(
    "coordinates",
    [
        [[[0, 0], [1, 0], [1, 1], [0, 0]]],  # a Polygon's ring
        [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 5]]]],
    ],
)
def test_reading_polygons_leaves_no_cycle(tmp_path, coordinates):
    """The batch's position lists are freed as soon as the read lets go of them, not kept by
    a reference cycle until the cycle collector runs (a run pauses it: Barcelona's barris
    held 30,000 lists until the collection after the run)."""
    kind = "Polygon" if len(coordinates) == 1 else "MultiPolygon"
    feature = {"type": "Feature", "geometry": {"type": kind, "coordinates": coordinates}}
    path = tmp_path / "shapes.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": [feature] * 3}))
    gc.collect()
    gc.disable()
    try:
        batches = list(GeoJSONConnector(path).read())
        assert len(batches[0]) == 3
        del batches
        assert gc.collect() == 0
    finally:
        gc.enable()
