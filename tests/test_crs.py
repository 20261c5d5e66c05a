"""CRS declarations in every spelling the corpus uses, and the axis-order rule.

Expected codes are EPSG facts (what the AdV registry and the OGC URN scheme name); the axis
directions asserted are pyproj's, so a wrong rule shows up as coordinates in the wrong place.
"""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from citypipe.geo import crs
from citypipe.geo.errors import ConfigurationError

# declaration -> (EPSG codes of its horizontal and vertical parts, axis order of the declaration)
SPELLINGS = {
    "EPSG:25832": ([25832], "xy"),
    "urn:ogc:def:crs:EPSG::25832": ([25832], "authority"),
    "urn:ogc:def:crs:EPSG:6.6:25832": ([25832], "authority"),
    # EPSG:6697 is JGD2011 (6668) + JGD2011 vertical height (6695)
    "http://www.opengis.net/def/crs/EPSG/0/6697": ([6668, 6695], "authority"),
    "https://www.opengis.net/def/crs/EPSG/0/6697": ([6668, 6695], "authority"),
    "urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783": ([25832, 5783], "authority"),
    "EPSG:7415": ([28992, 5709], "xy"),
    "EPSG:4979": ([4979], "xy"),
    "urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016": ([25832, 7837], "xy"),
    "urn:adv:crs:ETRS89_UTM32*DE_DHHN92_NH": ([25832, 5783], "xy"),
    "urn:adv:crs:DE_DHDN_3GK4*DE_DHN92_NH": ([31468, 5783], "xy"),
    "urn:adv:crs:DE_DHDN_3GK4*DE_DHHN92_NH": ([31468, 5783], "xy"),
    "urn:adv:crs:ETRS89_UTM32": ([25832], "xy"),
    "urn:adv:crs:ETRS89_UTM33*DE_DHHN2016_NH": ([25833, 7837], "xy"),
    # Saxony's and Thuringia's former systems, and the former GDR's heights
    "urn:adv:crs:DE_RD/83_3GK4*DE_SNN76_NH": ([3398, 5785], "xy"),
    "urn:adv:crs:DE_PD/83_3GK3": ([3396], "xy"),
    # OGC API - Features Part 2's compound CRS URI: ETRS89 / UTM 32N + DHHN2016 height
    "http://www.opengis.net/def/crs-compound?1=http://www.opengis.net/def/crs/EPSG/0/25832"
    "&2=http://www.opengis.net/def/crs/EPSG/0/7837": ([25832, 7837], "authority"),
}


def _codes(c: pyproj.CRS) -> list[int | None]:
    """EPSG codes of the components: the horizontal and the vertical CRS of a compound."""
    return [p.to_epsg() for p in (c.sub_crs_list if c.is_compound else [c])]


@pytest.mark.parametrize("declared", SPELLINGS)
def test_every_spelling_resolves_to_its_epsg_codes(declared):
    codes, order = SPELLINGS[declared]
    resolved = crs.resolve(declared)
    assert _codes(resolved) == codes
    assert crs.axis_order(declared) == order


def test_compound_crs_labels_name_both_parts():
    assert crs.label(crs.resolve("urn:adv:crs:ETRS89_UTM32*DE_DHHN2016_NH*GCG2016")) == (
        "EPSG:25832+7837"
    )
    # pyproj finds the registered compound for UTM 32N + DHHN92
    assert crs.label(crs.resolve("urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783")) == "EPSG:5555"


@pytest.mark.parametrize(
    "declared, name",
    [("#local-CRS-1", "#local-CRS-1"), ("urn:adv:crs:ETRS89_UTM99*DE_DHHN92_NH", "ETRS89_UTM99")],
)
def test_unknown_and_local_crs_are_reported_as_written(declared, name):
    with pytest.raises(ConfigurationError, match=name):
        crs.resolve(declared)


def _to_lonlat(declared: str, a: float, b: float) -> tuple[float, float]:
    """Where the pipeline puts the coordinate pair (a, b) declared with `declared`."""
    c, order = crs.resolve(declared), crs.axis_order(declared)
    if crs.is_lonlat(c, order):
        return a, b
    lon, lat, _ = crs.to_crs84(c, order)(np.array([[a, b, 0.0]]))[0]
    return lon, lat


def test_urn_and_short_epsg_4326_read_the_same_pair_swapped():
    assert [a.direction for a in pyproj.CRS("EPSG:4326").axis_info] == ["north", "east"]
    urn = _to_lonlat("urn:ogc:def:crs:EPSG::4326", 38.89, -77.0)
    short = _to_lonlat("EPSG:4326", 38.89, -77.0)
    assert urn == pytest.approx((-77.0, 38.89))
    assert short == pytest.approx((38.89, -77.0))


@pytest.mark.parametrize(
    "declared, pair, lonlat",
    [
        # PLATEAU: JGD2011 + height, a compound whose horizontal part is latitude first
        ("http://www.opengis.net/def/crs/EPSG/0/6697", (35.68, 139.7), (139.7, 35.68)),
        # WGS 84 3D geographic: the URI form is latitude first, the short form as GDAL reads it
        ("http://www.opengis.net/def/crs/EPSG/0/4979", (38.89, -77.0), (-77.0, 38.89)),
        ("EPSG:4979", (-77.0, 38.89), (-77.0, 38.89)),
        # Gauss-Krueger zone 4 is northing first in EPSG; AdV data are easting first (Fuerth)
        ("urn:adv:crs:DE_DHDN_3GK4*DE_DHN92_NH", (4424648.79, 5482614.69), (10.96, 49.48)),
    ],
)
def test_geographic_compound_and_adv_crs_land_where_they_should(declared, pair, lonlat):
    assert _to_lonlat(declared, *pair) == pytest.approx(lonlat, abs=0.01)


def test_gauss_krueger_is_northing_first_in_epsg():
    """Why AdV URNs are not read in the authority's order."""
    assert [a.direction for a in pyproj.CRS("EPSG:31468").axis_info] == ["north", "east"]


def test_shared_positions_are_transformed_as_each_alone():
    """A solid's corners repeat (three faces or more to a vertex): an array of them, long
    enough to be transformed position by distinct position, is placed where each position
    alone is. Corners of the first wall of the Munich tile (corpus: citygml/munich_LOD2_...,
    urn:adv:crs:DE_DHDN_3GK4*DE_DHN92_NH: Gauss-Krueger zone 4, its meridian 12 E at a false
    easting of 4,500 km), repeated as faces repeat them."""
    declared = "urn:adv:crs:DE_DHDN_3GK4*DE_DHN92_NH"
    corners = np.array(
        [
            [4424786.47, 5482658.98, 311.56],
            [4424786.47, 5482658.98, 314.204],
            [4424782.06, 5482658.74, 314.204],
            [4424782.06, 5482658.74, 311.56],
        ]
    )
    faces = np.tile(corners, (crs._SHARED_MIN // 2, 1))[::-1]
    placed = crs.to_crs84(crs.resolve(declared), crs.axis_order(declared))(faces)
    alone = [_to_lonlat(declared, x, y) for x, y, _ in corners[::-1]]
    assert len(faces) >= crs._SHARED_MIN
    np.testing.assert_array_equal(placed[:4, :2], np.array(alone))
    np.testing.assert_array_equal(placed[:, :2], np.tile(placed[:4, :2], (len(faces) // 4, 1)))
    np.testing.assert_array_equal(placed[:, 2], faces[:, 2])
    # 75 km west of 12 E, where a degree of longitude is some 72 km; 5,483 km of meridian arc
    assert (10.9 < placed[:, 0]).all() and (placed[:, 0] < 11.1).all()
    assert (49.3 < placed[:, 1]).all() and (placed[:, 1] < 49.6).all()
