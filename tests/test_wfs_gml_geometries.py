"""WFS GetFeature responses in GML: what a generated response's features become. Every geometry
kind of GML 2 / 3.1.1 / 3.2 (arcs linearised within their tolerance, boxes as polygons),
properties typed, counts declared and checked, and hostile or broken documents: a record with a
broken geometry is rejected alone, a DTD or an unreadable member refuses the document.
Responses are made by tests/wfs_gml_docs.py; what is expected is what the test wrote.
"""

from __future__ import annotations

import json

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from wfs_gml_docs import SETTINGS, one_batch, point_property, wfs_doc, wfs_member

from citypipe.connectors.wfs_gml import (
    collection_counts,
    read_feature_collection,
)
from citypipe.core.ingest import ingest
from citypipe.geo.errors import CitypipeError, DataError, NotFeatureData


def test_gml2_geometries_ids_and_coordinate_separators():
    polygon = (
        '<app:g><gml:MultiPolygon srsName="EPSG:25832"><gml:polygonMember><gml:Polygon>'
        "<gml:outerBoundaryIs><gml:LinearRing><gml:coordinates>0,0 10,0 10,10 0,10 0,0"
        "</gml:coordinates></gml:LinearRing></gml:outerBoundaryIs><gml:innerBoundaryIs>"
        "<gml:LinearRing><gml:coordinates>2,2 4,2 4,4 2,2</gml:coordinates>"
        "</gml:LinearRing></gml:innerBoundaryIs></gml:Polygon></gml:polygonMember>"
        "</gml:MultiPolygon></app:g>"
    )
    lines = (
        '<app:g><gml:MultiLineString srsName="EPSG:25832"><gml:lineStringMember>'
        '<gml:LineString><gml:coordinates decimal="," cs=";" ts="|">1,5;2|3;4,5'
        "</gml:coordinates></gml:LineString></gml:lineStringMember></gml:MultiLineString>"
        "</app:g>"
    )
    members = wfs_member("1.0.0", polygon, "a.1") + wfs_member("1.0.0", lines, "a.2")
    batch = one_batch(wfs_doc(members, "1.0.0"))
    assert list(batch.source_ids) == ["a.1", "a.2"]
    poly, lines = batch.geometries
    assert poly.geom_type == "MultiPolygon" and poly.area == 100 - 2
    assert lines.geom_type == "MultiLineString"
    assert shapely.get_coordinates(lines).tolist() == [[1.5, 2], [3, 4.5]]


def test_gml32_curves_surfaces_points_and_no_geometry():
    g = '<app:g srsName="EPSG:25832">{}</app:g>'
    bodies = {
        "curve": '<gml:Curve srsName="EPSG:25832"><gml:segments><gml:LineStringSegment>'
        "<gml:posList>0 0 1 0</gml:posList></gml:LineStringSegment><gml:LineStringSegment>"
        "<gml:posList>1 0 1 1</gml:posList></gml:LineStringSegment></gml:segments></gml:Curve>",
        "surface": '<gml:MultiSurface srsName="EPSG:25832"><gml:surfaceMember>'
        "<gml:CompositeSurface>"
        "<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>0 0 1 0 1 1 0 0"
        "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>"
        "<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>5 5 6 5 6 6 5 5"
        "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>"
        "</gml:CompositeSurface></gml:surfaceMember></gml:MultiSurface>",
        "points": '<gml:MultiPoint srsName="EPSG:25832"><gml:pointMember><gml:Point>'
        "<gml:pos>1 2</gml:pos></gml:Point></gml:pointMember><gml:pointMember><gml:Point>"
        "<gml:pos>3 4</gml:pos></gml:Point>"
        "</gml:pointMember></gml:MultiPoint>",
    }
    members = "".join(wfs_member("2.0.0", g.format(b), k) for k, b in bodies.items())
    members += wfs_member("2.0.0", "<app:label>nowhere</app:label>", "none")
    batches = list(read_feature_collection(wfs_doc(members), crs="EPSG:25832"))
    geoms = {
        sid: geom for b in batches for sid, geom in zip(b.source_ids, b.geometries, strict=True)
    }
    assert geoms["curve"].wkt == "LINESTRING (0 0, 1 0, 1 1)"
    assert geoms["surface"].geom_type == "MultiPolygon" and len(geoms["surface"].geoms) == 2
    assert geoms["points"].wkt == "MULTIPOINT ((1 2), (3 4))"
    assert geoms["none"] is None


def test_a_feature_without_geometry_is_ingested(tmp_path, lake, read_lake):
    members = wfs_member("2.0.0", "<app:label>nowhere</app:label>", "n.1") + wfs_member(
        "2.0.0",
        '<app:g><gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>47.99 7.85</gml:pos>'
        "</gml:Point></app:g>",
        "n.2",
    )
    path = tmp_path / "n.gml"
    path.write_bytes(wfs_doc(members, attrs=' numberMatched="2" numberReturned="2"'))
    report = ingest(path, "n", lake)
    assert (report.features, report.rejects, report.declared_count) == (2, 0, 2)
    rows = {r["source_id"]: r for r in read_lake("n").to_pylist()}
    assert rows["n.1"]["geometry"] is None and rows["n.2"]["geometry"] is not None


def test_nested_collections_additional_objects_and_properties():
    inner = (
        "<wfs:member><wfs:FeatureCollection>"
        + wfs_member("2.0.0", "<app:n>2</app:n>", "in.1")
        + "</wfs:FeatureCollection></wfs:member>"
    )
    extra = (
        "<wfs:additionalObjects><wfs:SimpleFeatureCollection>"
        + wfs_member("2.0.0", "<app:n>3</app:n>", "extra.1")
        + "</wfs:SimpleFeatureCollection></wfs:additionalObjects>"
    )
    first = (
        "<gml:name>Erster</gml:name><app:n>1</app:n><app:code>007</app:code>"
        '<app:height uom="m">12.5</app:height><app:tag>a</app:tag><app:tag>b</app:tag>'
        '<app:gone xsi:nil="true"/><app:ok>true</app:ok>'
        '<app:owner xlink:href="#o.1"/><app:address><app:Address>'
        "<app:street>Hauptstraße</app:street>"
        "<app:no>5</app:no></app:Address></app:address>"
    )
    batch = one_batch(wfs_doc(wfs_member("2.0.0", first, "top.1") + inner + extra))
    assert list(batch.source_ids) == ["top.1", "in.1", "extra.1"]
    props = list(batch.properties)
    assert [p["n"] for p in props] == [1, 2, 3]  # every value of `n` is an integer
    top = props[0]
    assert top["name"] == "Erster" and top["code"] == "007" and top["ok"] is True
    assert top["height"] == {"value": 12.5, "uom": "m"} and top["tag"] == ["a", "b"]
    assert "gone" not in top and top["owner"] == "#o.1"
    assert top["address"] == {"Address": {"street": "Hauptstraße", "no": "5"}}
    assert list(batch.feature_classes) == ["Thing"] * 3


def test_counts_declared_and_checked(tmp_path, lake):
    members = "".join(wfs_member("2.0.0", f"<app:n>{i}</app:n>", f"c.{i}") for i in range(3))
    data = wfs_doc(members, attrs=' numberMatched="10" numberReturned="4"')
    counts = collection_counts(data)
    assert (counts.matched, counts.returned) == (10, 4)
    assert sum(map(len, read_feature_collection(data, batch_size=2))) == 3
    assert [len(b) for b in read_feature_collection(data, batch_size=2)] == [2, 1]
    path = tmp_path / "short.gml"
    path.write_bytes(data)
    with pytest.raises(CitypipeError, match="matches_declared_count"):
        ingest(path, "short", lake)
    assert not lake.partition("features", "short").exists()
    older = wfs_doc(
        members.replace("wfs:member", "gml:featureMember"), "1.1.0", ' numberOfFeatures="3"'
    )
    assert collection_counts(older).returned == 3


def test_a_hits_response_is_not_feature_data(tmp_path, lake):
    path = tmp_path / "hits.gml"
    path.write_bytes(wfs_doc("", attrs=' numberMatched="693" numberReturned="0"'))
    with pytest.raises(NotFeatureData, match="hits response.*693"):
        ingest(path, "hits", lake)


def test_a_record_with_a_broken_geometry_is_rejected_alone(tmp_path, lake, read_lake):
    good = point_property("EPSG:25832", "500000 5400000")
    bad = point_property("EPSG:25832", "500000 north")
    path = tmp_path / "b.gml"
    path.write_bytes(wfs_doc(wfs_member("2.0.0", good, "g") + wfs_member("2.0.0", bad, "b")))
    report = ingest(path, "b", lake)
    assert (report.features, report.rejects) == (1, 1)
    rejects = read_lake("b", "rejects").to_pylist()
    assert "not numbers" in rejects[0]["reason"] and 'gml:id="b"' in rejects[0]["record"]


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ('<gml:Point srsName="EPSG:25832"><gml:pos> </gml:pos></gml:Point>', "without positions"),
        ('<gml:Point srsName="EPSG:25832"><gml:pos srsDimension="2">1 2 3</gml:pos></gml:Point>',
         "not a multiple"),
        ('<gml:Point srsName="EPSG:25832"><gml:pos>1 2 3 4</gml:pos></gml:Point>', "2 positions"),
        ('<gml:Point srsName="EPSG:25832"><gml:pos>1 nan</gml:pos></gml:Point>', "not finite"),
        ('<gml:LineString srsName="EPSG:25832"><gml:posList>1 2</gml:posList></gml:LineString>',
         "with 1 position"),
        (('<gml:LineString srsName="EPSG:25832"><gml:posList>1 2 x 4</gml:posList>'
          "</gml:LineString>"), "not numbers"),
        ('<gml:Point srsName="EPSG:25832"><gml:coord><gml:X>1</gml:X></gml:coord></gml:Point>',
         "a coord without X and Y"),
        ('<gml:Point srsName="EPSG:25832"><gml:Pos>1 2</gml:Pos></gml:Point>',
         "without posList, pos, coordinates or coord"),
    ],
)  # fmt: skip
def test_points_and_lines_read_per_batch_reject_what_is_not_positions(geometry, reason):
    """A batch's Points and LineStrings are built together: a bad one is its record's error
    alone, and the good ones around it keep their positions."""
    good = point_property("EPSG:25832", "500000 5400000")
    line = (
        '<gml:LineString srsName="EPSG:25832"><gml:posList>0 0 3 4</gml:posList></gml:LineString>'
    )
    members = (
        wfs_member("2.0.0", good, "a")
        + wfs_member("2.0.0", f"<app:g>{geometry}</app:g>", "bad")
        + wfs_member("2.0.0", f"<app:g>{line}</app:g>", "c")
    )
    batch = one_batch(wfs_doc(members))
    assert list(batch.source_ids) == ["a", "bad", "c"]
    assert batch.errors[0] is None and batch.errors[2] is None
    assert reason in batch.errors[1] and batch.geometries[1] is None
    assert batch.geometries[0].wkt == "POINT (500000 5400000)"
    assert batch.geometries[2].wkt == "LINESTRING (0 0, 3 4)"


def test_a_dtd_is_refused(tmp_path, lake):
    data = wfs_doc(wfs_member("2.0.0", "<app:n>&x;</app:n>")).replace(
        b"\n<wfs:", b'\n<!DOCTYPE x [<!ENTITY x "boom">]>\n<wfs:', 1
    )
    path = tmp_path / "dtd.gml"
    path.write_bytes(data)
    with pytest.raises(DataError, match="DTD"):
        ingest(path, "dtd", lake)


@SETTINGS
@given(
    values=st.lists(
        st.one_of(st.integers(-(2**62), 2**62), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=6,
    )
)
def test_numbers_are_typed_per_property(values):
    members = "".join(
        wfs_member("2.0.0", f"<app:v>{v!r}</app:v>", f"v.{i}") for i, v in enumerate(values)
    )
    got = [p["v"] for p in one_batch(wfs_doc(members)).properties]
    assert got == pytest.approx(
        [float(v) for v in values] if any(isinstance(v, float) for v in values) else values
    )


def test_feature_members_and_the_first_of_several_geometries():
    """GML 3.1.1 gml:featureMembers hold several features; of two geometry properties the
    first is the feature's geometry and the second a property, as WKT in OGC:CRS84."""
    line = (
        '<app:route><gml:LineString srsName="EPSG:25832"><gml:posList>0 0 5 5</gml:posList>'
        "</gml:LineString></app:route>"
    )
    first = (
        f'<app:T gml:id="m.1">{point_property("EPSG:25832", "1 2")}{line}<app:n>1</app:n></app:T>'
    )
    second = '<app:T gml:id="m.2"><app:n>2</app:n></app:T>'
    data = wfs_doc(f"<gml:featureMembers>{first}{second}</gml:featureMembers>", "1.1.0")
    with_crs, without = read_feature_collection(data)  # the second names no CRS
    assert (with_crs.crs, without.crs) == ("EPSG:25832", None)
    assert list(with_crs.source_ids) + list(without.source_ids) == ["m.1", "m.2"]
    assert with_crs.geometries[0].wkt == "POINT (1 2)" and without.geometries[0] is None
    assert list(without.properties) == [{"n": 2}]
    route = shapely.from_wkt(with_crs.properties[0].pop("route"))
    assert with_crs.properties[0] == {"n": 1}
    to_lonlat = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    expected = np.column_stack(to_lonlat.transform([0, 5], [0, 5]))
    assert np.allclose(shapely.get_coordinates(route), expected, rtol=0, atol=1e-12)


_GEOMETRIES = [
    '<gml:Point srsName="{srs}"><gml:pos>{a}</gml:pos></gml:Point>',
    '<gml:LineString srsName="{srs}"><gml:posList>{a} {b}</gml:posList></gml:LineString>',
    (
        '<gml:Polygon srsName="{srs}"><gml:exterior><gml:LinearRing><gml:posList>{a} {b} {a}'
        "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
    ),
    (
        '<gml:Curve srsName="{srs}"><gml:segments><gml:Arc><gml:posList>{a} {b}</gml:posList>'
        "</gml:Arc></gml:segments></gml:Curve>"
    ),
]


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(
    lambda t: t.replace("&", "&amp;").replace("<", "&lt;")
)


_COORDS = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=5).map(
        lambda v: " ".join(map(repr, v))
    ),
    _TEXT,
)


@SETTINGS
@given(
    features=st.lists(
        st.tuples(st.sampled_from(_GEOMETRIES), _COORDS, _COORDS, _TEXT), min_size=1, max_size=5
    ),
    srs=st.sampled_from(["EPSG:25832", "urn:ogc:def:crs:EPSG::4326", "EPSG:999999", "#local"]),
)
def test_any_geometry_text_is_a_record_or_a_reject(features, srs):
    """Whatever the coordinates and property texts hold, every feature is one record: read, or
    carrying its reason; the reader never fails otherwise."""
    members = "".join(
        wfs_member(
            "2.0.0", f"<app:g>{g.format(srs=srs, a=a, b=b)}</app:g><app:t>{t}</app:t>", f"r{i}"
        )
        for i, (g, a, b, t) in enumerate(features)
    )
    batches = list(read_feature_collection(wfs_doc(members)))
    assert sum(map(len, batches)) == len(features)
    for batch in batches:
        for geometry, error in zip(batch.geometries, batch.errors or [], strict=True):
            assert (geometry is None) == (error is not None)
            if geometry is not None:
                assert np.isfinite(shapely.get_coordinates(geometry)).all()


def test_a_text_node_over_10_mb_needs_huge_tree(tmp_path, lake):
    """libxml2 refuses text nodes over 10 MB unless asked (the CityGML reader's option too)."""
    n = 1_000_000  # positions: about 13 MB of posList text
    ring = " ".join(f"{i % 997}.25 {i // 997}.5" for i in range(n)) + " 0.25 0.5"
    body = (
        '<app:g><gml:LineString srsName="EPSG:25832"><gml:posList>'
        f"{ring}</gml:posList></gml:LineString></app:g>"
    )
    path = tmp_path / "huge.gml"
    path.write_bytes(wfs_doc(wfs_member("2.0.0", body)))
    with pytest.raises(DataError, match="huge_tree"):
        ingest(path, "h", lake, validate=False)
    report = ingest(path, "h", lake, options={"huge_tree": True}, validate=False)
    assert report.features == 1


def test_a_ring_of_unicode_blanks_is_a_reject_not_a_crash():
    """A posList of no-break spaces is blank to Python but not to ASCII splitting: the ring
    has no numbers, its feature carries a reason (hypothesis found this)."""
    ring = '<gml:Polygon srsName="EPSG:25832"><gml:exterior><gml:LinearRing><gml:posList>'
    ring += "\xa0  \xa0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
    point = '<gml:Point srsName="EPSG:25832"><gml:pos>1 2</gml:pos></gml:Point>'
    members = wfs_member("2.0.0", f"<app:g>{point}</app:g>", "p") + wfs_member(
        "2.0.0", f"<app:g>{ring}</app:g>", "r"
    )
    (batch,) = list(read_feature_collection(wfs_doc(members)))
    assert batch.geometries[0] is not None and batch.geometries[1] is None
    assert batch.errors is not None and batch.errors[1]


def test_features_in_members_no_reader_knows_are_refused_not_lost(sample, lake):
    """Jena's parking as GDAL writes GML 3.2, its members renamed as a producer of its own might
    name them: the 103 features landed as 0 records with exit 0, the source replaced by nothing.
    Refused now with one line naming the element; a collection with no member (an empty
    answer) still lands as 0 records."""
    import pyogrio

    path = sample("jena_parking.geojson")
    gml = path.with_suffix(".gml")
    pyogrio.write_dataframe(
        pyogrio.read_dataframe(path), gml, driver="GML", dataset_options={"FORMAT": "GML3.2"}
    )
    text = gml.read_text(encoding="utf-8")
    assert text.count("<ogr:featureMember>") == len(json.loads(path.read_text())["features"])
    gml.write_text(text.replace("ogr:featureMember>", "ogr:record>"), encoding="utf-8")
    with pytest.raises(DataError, match="no feature member citypipe knows.*record"):
        ingest(gml, "jena_gml", lake)
    assert not lake.holds("features")
    head, _, _ = text.partition("<ogr:featureMember>")
    gml.write_text(head + "</ogr:FeatureCollection>\n", encoding="utf-8")
    assert ingest(gml, "jena_gml", lake).records == 0


@pytest.mark.parametrize("extra", ["tuple", "additional"])
def test_features_numberreturned_does_not_count_one_each_are_not_held_to_it(
    extra, tmp_path, lake, read_lake
):
    """numberReturned counts a join's tuple once for its features and wfs:additionalObjects not
    at all (ISO 19142): a response counting so (2 members, 3 features) was refused as
    matches_declared_count failed; it lands, every feature read."""
    a, b, c = (wfs_member("2.0.0", f"<app:n>{i}</app:n>", f"f.{i}") for i in range(3))
    if extra == "tuple":
        members = a + f"<wfs:member><wfs:Tuple>{b}{c}</wfs:Tuple></wfs:member>"
    else:
        members = (
            a
            + b
            + (
                "<wfs:additionalObjects><wfs:SimpleFeatureCollection>"
                f"{c}</wfs:SimpleFeatureCollection></wfs:additionalObjects>"
            )
        )
    path = tmp_path / "counted.gml"
    path.write_bytes(wfs_doc(members, attrs=' numberMatched="2" numberReturned="2"'))
    report = ingest(path, "counted", lake)
    assert (report.records, report.features) == (3, 3)
    assert sorted(read_lake("counted").column("source_id").to_pylist()) == ["f.0", "f.1", "f.2"]


@pytest.mark.parametrize(
    ("version", "box"),
    [
        ("1.0.0", ('<gml:Box srsName="EPSG:4326"><gml:coordinates>7.8,47.9 7.9,48.1'
                  "</gml:coordinates></gml:Box>")),
        ("1.0.0", ('<gml:Box srsName="EPSG:4326"><gml:coord><gml:X>7.8</gml:X><gml:Y>47.9</gml:Y>'
                  "</gml:coord><gml:coord><gml:X>7.9</gml:X><gml:Y>48.1</gml:Y></gml:coord>"
                  "</gml:Box>")),
        ("2.0.0", ('<gml:Envelope srsName="urn:ogc:def:crs:EPSG::4326"><gml:lowerCorner>47.9 7.8'
                  "</gml:lowerCorner><gml:upperCorner>48.1 7.9</gml:upperCorner></gml:Envelope>")),
    ],
)  # fmt: skip
def test_a_feature_whose_only_geometry_is_a_box_lands_as_its_polygon(
    version, box, tmp_path, lake, read_lake
):
    """A feature whose one geometry property holds a gml:Box (GML 2) or gml:Envelope: it landed
    without geometry, the box a property; GDAL reads it as the polygon of its corners, and so
    does citypipe. Beside another geometry it stays a property."""
    point = point_property("urn:ogc:def:crs:EPSG::4326", "48.0,7.85", "coordinates")
    members = wfs_member(version, f"<app:extent>{box}</app:extent>", "boxed") + wfs_member(
        version, f"<app:extent>{box}</app:extent>{point}", "both"
    )
    path = tmp_path / "box.gml"
    path.write_bytes(wfs_doc(members, version))
    report = ingest(path, "box", lake)
    assert (report.features, report.rejects) == (2, 0)
    table = read_lake("box")
    rows = dict(zip(table.column("source_id").to_pylist(), table.to_pylist(), strict=True))
    polygon = shapely.from_wkb(rows["boxed"]["geometry"])
    assert polygon.equals(shapely.box(7.8, 47.9, 7.9, 48.1))
    assert shapely.from_wkb(rows["both"]["geometry"]).equals(shapely.Point(7.85, 48.0))
    assert "extent" in json.loads(rows["both"]["properties"])
