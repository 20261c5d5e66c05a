"""WFS GetFeature responses in GML: where their positions are. Which way round: each WFS
version's convention for "EPSG:4326", URNs and GML 2 URLs, the caller's version where the
response does not say, the one axis rule of every CRS spelling; GML 2's coord / coordinates
with any separators, 3D positions without an srsDimension; and where arcs pass (linearised
within their tolerance). On generated responses (tests/wfs_gml_docs.py); property tests read
back what they wrote.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from wfs_gml_docs import (
    GML2,
    SETTINGS,
    lonlat_bounds,
    one_batch,
    point_property,
    wfs_doc,
    wfs_member,
)

from citypipe.connectors.gml_arcs import ARC_TOLERANCE
from citypipe.connectors.wfs_gml import (
    read_response,
)
from citypipe.core.ingest import ingest


@pytest.mark.parametrize(
    ("version", "pos", "order"),
    [
        ("1.0.0", "<gml:coordinates>7.85,47.99</gml:coordinates>", "xy"),
        ("1.1.0", "<gml:pos>47.99 7.85</gml:pos>", "authority"),
        ("2.0.0", "<gml:pos>47.99 7.85</gml:pos>", "authority"),
    ],
)
def test_short_epsg4326_follows_each_wfs_versions_convention(
    version, pos, order, tmp_path, lake, read_lake
):
    """The same place (Freiburg, 7.85 E 47.99 N) as each version writes it under "EPSG:4326"."""
    body = f'<app:geom><gml:Point srsName="EPSG:4326">{pos}</gml:Point></app:geom>'
    data = wfs_doc(wfs_member(version, body), version)
    assert one_batch(data).axis_order == order
    path = tmp_path / "p.gml"
    path.write_bytes(data)
    ingest(path, "p", lake)
    assert lonlat_bounds(read_lake("p"))[:2] == pytest.approx([7.85, 47.99], abs=1e-12)


def test_urn_is_lat_lon_and_gml2_url_is_lon_lat_in_any_version():
    urn = point_property("urn:ogc:def:crs:EPSG::4326", "47.99,7.85", "coordinates")
    url = point_property("http://www.opengis.net/gml/srs/epsg.xml#4326", "7.85 47.99")
    assert one_batch(wfs_doc(wfs_member("1.0.0", urn), "1.0.0")).axis_order == "authority"
    assert one_batch(wfs_doc(wfs_member("2.0.0", url))).axis_order == "xy"


def test_the_callers_wfs_version_decides_for_a_response_that_does_not_say():
    body = point_property("EPSG:4326", "7.85,47.99", "coordinates")
    data = (
        f'<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs" xmlns:gml="{GML2}" '
        f'xmlns:app="http://example.org/app"><gml:featureMember><app:T fid="a">{body}'
        "</app:T></gml:featureMember></wfs:FeatureCollection>"
    ).encode()
    assert read_response(data).gml == "2" and one_batch(data).axis_order == "xy"
    assert one_batch(data, wfs_version="1.1.0").axis_order == "authority"


lon = st.floats(-179.9, 179.9, allow_nan=False)


lat = st.floats(-89.9, 89.9, allow_nan=False)


@SETTINGS
@given(
    points=st.lists(st.tuples(lon, lat), min_size=1, max_size=8),
    version=st.sampled_from(["1.0.0", "1.1.0", "2.0.0"]),
)
def test_points_in_every_convention_read_back_as_written(points, version):
    """Each version's writing of EPSG:4326 (x/y in 1.0, lat/lon in 1.1 and 2.0): reading it
    and applying the batch's axis order gives back the longitude and latitude written."""
    members = ""
    for i, (x, y) in enumerate(points):
        pos = f"{x!r},{y!r}" if version == "1.0.0" else f"{y!r} {x!r}"
        tag = "coordinates" if version == "1.0.0" else "pos"
        members += wfs_member(version, point_property("EPSG:4326", pos, tag), f"p.{i}")
    batch = one_batch(wfs_doc(members, version))
    xy = shapely.get_coordinates(np.asarray(batch.geometries, dtype=object))
    if batch.axis_order == "authority":
        xy = xy[:, ::-1]
    assert xy.tolist() == [list(p) for p in points]


def test_a_3d_crs_without_srs_dimension_reads_three_ordinates():
    """EPSG:4979 positions have three ordinates (pyproj says so) where no srsDimension does."""
    body = (
        '<app:g><gml:LineString srsName="urn:ogc:def:crs:EPSG::4979"><gml:posList>'
        "47.99 7.85 280 48.00 7.86 290</gml:posList></gml:LineString></app:g>"
        '<app:parcel><app:Parcel gml:id="p.9"><app:no>9</app:no><app:shape>'
        '<gml:Point srsName="EPSG:25832"><gml:pos>1 2</gml:pos></gml:Point></app:shape>'
        "</app:Parcel></app:parcel>"
    )
    batch = one_batch(wfs_doc(wfs_member("2.0.0", body)))
    assert shapely.get_coordinates(batch.geometries[0], include_z=True).tolist() == [
        [47.99, 7.85, 280],
        [48.00, 7.86, 290],
    ]
    assert batch.properties[0] == {"parcel": {"Parcel": {"no": "9"}}}  # nested: as written


@pytest.mark.parametrize(
    ("srs", "code", "citygml_or_wfs10", "wfs11_or_20"),
    [
        ("EPSG:4326", 4326, "xy", "authority"),
        ("EPSG:6706", 6706, "xy", "authority"),
        ("urn:ogc:def:crs:EPSG::4326", 4326, "authority", "authority"),
        ("urn:x-ogc:def:crs:EPSG:4326", 4326, "authority", "authority"),
        ("urn:x-ogc:def:crs:EPSG:6.3:4326", 4326, "authority", "authority"),  # a version
        ("urn:opengis:def:crs:EPSG::4326", 4326, "authority", "authority"),  # GDAL reads both
        ("urn:opengis:crs:EPSG::25832", 25832, "authority", "authority"),
        ("urn:EPSG:geographicCRS:4326", 4326, "authority", "authority"),  # GML 3.1.1's examples
        (" urn:EPSG:projectedCRS:25832 ", 25832, "authority", "authority"),
        ("http://www.opengis.net/def/crs/EPSG/0/6706", 6706, "authority", "authority"),
        ("http://www.opengis.net/gml/srs/epsg.xml#4326", 4326, "xy", "xy"),
    ],
)
def test_the_one_axis_rule(srs, code, citygml_or_wfs10, wfs11_or_20):
    """crs.axis_order, the rule CityGML and WFS responses share; every spelling names the
    EPSG code pyproj reads from it, whichever order applies."""
    from citypipe.geo import crs

    assert crs.axis_order(srs) == citygml_or_wfs10
    assert crs.axis_order(srs, "authority") == wfs11_or_20
    assert crs.resolve(srs).to_epsg() == code


def _coord(position: tuple[float, ...]) -> str:
    return "<gml:coord>" + "".join(
        f"<gml:{axis}>{v!r}</gml:{axis}>" for axis, v in zip("XYZ", position, strict=False)
    ) + "</gml:coord>"  # fmt: skip


def _gml2_geometries(positions: list[tuple[float, ...]], writer) -> list[str]:
    """A Point, a LineString and a Polygon (a triangle's ring) of the positions, in GML 2."""
    ring = [positions[0], positions[1], positions[2], positions[0]]
    return [
        f"<gml:Point>{writer(positions[:1])}</gml:Point>",
        f"<gml:LineString>{writer(positions)}</gml:LineString>",
        (
            "<gml:Polygon><gml:outerBoundaryIs><gml:LinearRing>"
            f"{writer(ring)}</gml:LinearRing></gml:outerBoundaryIs></gml:Polygon>"
        ),
    ]


_SEPARATORS = st.sampled_from([(",", " ", "."), (";", "|", ","), (" ", ";", "."), (",", "\n", ".")])


_ORDINATE = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 6))


@SETTINGS
@given(
    positions=st.integers(2, 3).flatmap(
        lambda dim: st.lists(
            st.tuples(*[_ORDINATE] * dim), min_size=3, max_size=6, unique_by=lambda p: p[:2]
        )
    ),
    separators=_SEPARATORS,
)
def test_gml2_coord_and_coordinates_read_back_as_written(positions, separators):
    """WFS 1.0 / GML 2 positions as gml:coord (X, Y, Z elements) and as gml:coordinates with
    any cs / ts / decimal: the same geometries, in the dimension of the tuples, whatever the
    CRS's (3D tuples under the 2D EPSG:25832 were read as 2D positions, or refused; gml:coord
    was refused as "without posList, pos or coordinates")."""
    cs, ts, decimal = separators

    def coordinates(ps: list[tuple[float, ...]]) -> str:
        tuples = ts.join(cs.join(repr(v).replace(".", decimal) for v in p) for p in ps)
        return (
            f'<gml:coordinates cs="{cs}" ts="{ts}" decimal="{decimal}">{tuples}</gml:coordinates>'
        )

    members = ""
    for writer in (lambda ps: "".join(map(_coord, ps)), coordinates):
        for geometry in _gml2_geometries(positions, writer):
            geometry = geometry.replace(">", ' srsName="EPSG:25832">', 1)
            members += wfs_member("1.0.0", f"<app:g>{geometry}</app:g>", f"f.{len(members)}")
    batch = one_batch(wfs_doc(members, "1.0.0"))
    assert not any(batch.errors)
    dim = len(positions[0])
    ring = [positions[0], positions[1], positions[2], positions[0]]
    expected = [positions[:1], positions, ring] * 2
    for geometry, want in zip(batch.geometries, expected, strict=True):
        got = shapely.get_coordinates(geometry, include_z=dim == 3)
        assert got.tolist() == [list(p) for p in want]


def test_a_3d_point_pos_without_srs_dimension_is_3d_as_gdal_writes_it(tmp_path, lake, read_lake):
    """GDAL's GML 3 writes a 3D point as a gml:pos of three values under a 2D CRS, without
    srsDimension (ogr2ogr -f GML -dsco FORMAT=GML3), and reads it back so: it was refused as
    "3 coordinate values, not a multiple of srsDimension 2"."""
    body = point_property("urn:ogc:def:crs:EPSG::4326", "47.99 7.85 280")
    path = tmp_path / "gdal.gml"
    path.write_bytes(wfs_doc(wfs_member("2.0.0", body)))
    report = ingest(path, "gdal", lake)
    assert (report.features, report.rejects) == (1, 0)
    point = shapely.from_wkb(read_lake("gdal").column("geometry_3d")[0].as_py())
    assert shapely.get_coordinates(point, include_z=True).tolist() == [[7.85, 47.99, 280]]


def test_arcs_are_linearised_within_the_tolerance():
    """A half disc of radius 100 m (an Arc closed by a LineStringSegment) and a Circle."""
    cx, cy, r = 500_000.0, 5_400_000.0, 100.0
    arc = f"{cx + r} {cy} {cx} {cy + r} {cx - r} {cy}"
    ring = (
        '<app:g><gml:Polygon srsName="EPSG:25832"><gml:exterior><gml:Ring><gml:curveMember>'
        f"<gml:Curve><gml:segments><gml:Arc><gml:posList>{arc}</gml:posList></gml:Arc>"
        f"<gml:LineStringSegment><gml:posList>{cx - r} {cy} {cx + r} {cy}</gml:posList>"
        "</gml:LineStringSegment></gml:segments></gml:Curve></gml:curveMember></gml:Ring>"
        "</gml:exterior></gml:Polygon></app:g>"
    )
    circle = (
        '<app:g><gml:Curve srsName="EPSG:25832"><gml:segments><gml:Circle><gml:posList>'
        f"{arc}</gml:posList></gml:Circle></gml:segments></gml:Curve></app:g>"
    )
    batch = one_batch(
        wfs_doc(wfs_member("2.0.0", ring, "half") + wfs_member("2.0.0", circle, "full"))
    )
    half, full = batch.geometries
    assert half.geom_type == "Polygon" and full.geom_type == "LineString" and full.is_closed
    for geom, area in (
        (half, math.pi * r * r / 2),
        (shapely.Polygon(full.coords), math.pi * r * r),
    ):
        xy = shapely.get_coordinates(geom)
        on_circle = np.hypot(xy[:, 0] - cx, xy[:, 1] - cy)
        assert np.all((np.abs(on_circle - r) < 1e-6) | (np.abs(xy[:, 1] - cy) < 1e-9))
        mid = (xy[1:] + xy[:-1]) / 2  # the chords' midpoints stray least from the arc at most
        deviation = r - np.hypot(mid[:, 0] - cx, mid[:, 1] - cy)
        assert deviation[np.abs(xy[1:, 1] - cy) > 1e-9].max() <= ARC_TOLERANCE * r * 1.0001
        assert geom.area == pytest.approx(area, rel=2 * ARC_TOLERANCE)
    assert shapely.get_coordinates(half)[0].tolist() == [cx + r, cy]


@SETTINGS
@given(
    cx=st.floats(-1e6, 1e6),
    cy=st.floats(-1e6, 1e6),
    r=st.floats(0.01, 1e4),
    angles=st.lists(st.floats(0, 2 * math.pi), min_size=3, max_size=3, unique=True),
)
def test_an_arc_passes_through_its_three_positions(cx, cy, r, angles):
    a, b, c = sorted(angles)
    if min(b - a, c - b) < 1e-3:
        return  # positions too close to one another to define a circle well
    pts = [(cx + r * math.cos(t), cy + r * math.sin(t)) for t in (a, b, c)]
    pos = " ".join(f"{x!r} {y!r}" for x, y in pts)
    body = (
        '<app:g><gml:Curve srsName="EPSG:25832"><gml:segments><gml:Arc><gml:posList>'
        f"{pos}</gml:posList></gml:Arc></gml:segments></gml:Curve></app:g>"
    )
    line = one_batch(wfs_doc(wfs_member("2.0.0", body))).geometries[0]
    xy = shapely.get_coordinates(line)
    assert xy[0].tolist() == list(pts[0]) and xy[-1].tolist() == list(pts[2])
    assert shapely.distance(line, shapely.Point(pts[1])) <= 2 * ARC_TOLERANCE * r + 1e-6
    assert np.abs(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) - r).max() <= 1e-6 * max(
        r, abs(cx), abs(cy), 1
    )


def test_an_arc_string_in_a_multi_curve_is_one_line():
    arcs = "0 0 1 1 2 0 3 -1 4 0"  # two half circles of radius 1, one up, one down
    body = (
        '<app:g><gml:MultiCurve srsName="EPSG:25832"><gml:curveMember><gml:Curve><gml:segments>'
        f"<gml:ArcString><gml:posList>{arcs}</gml:posList></gml:ArcString></gml:segments>"
        "</gml:Curve></gml:curveMember></gml:MultiCurve></app:g>"
    )
    (line,) = one_batch(wfs_doc(wfs_member("2.0.0", body))).geometries[0].geoms
    assert line.length == pytest.approx(2 * math.pi, rel=ARC_TOLERANCE)
    assert shapely.get_coordinates(line)[[0, -1]].tolist() == [[0, 0], [4, 0]]
    assert line.distance(shapely.Point(1, 1)) < 1e-9 and line.distance(shapely.Point(3, -1)) < 1e-9


def test_an_arc_with_a_coordinate_beyond_any_crs_is_rejected_with_the_reason():
    """An Arc through 5.6e102: its centre is computed from squares, which overflow (the reader
    failed with "cannot convert float NaN to integer", or made a line through inf and NaN;
    hypothesis found it): its record is rejected naming the coordinate."""
    arc = (
        '<gml:Curve srsName="EPSG:25832"><gml:segments><gml:Arc><gml:posList>'
        "5.6e102 0 2.8e90 0 0 0</gml:posList></gml:Arc></gml:segments></gml:Curve>"
    )
    good = point_property("EPSG:25832", "500000 5400000")
    batch = one_batch(
        wfs_doc(wfs_member("2.0.0", f"<app:g>{arc}</app:g>", "arc") + wfs_member("2.0.0", good))
    )
    assert batch.geometries[0] is None and batch.geometries[1] is not None
    assert "a coordinate beyond ±1e10" in batch.errors[0]
