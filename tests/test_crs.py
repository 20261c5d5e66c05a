"""CRS declarations in every spelling the corpus uses, and the axis-order rule.

Expected codes are EPSG facts (what the AdV registry and the OGC URN scheme name); the axis
directions asserted are pyproj's, so a wrong rule shows up as coordinates in the wrong place.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.geo import crs, transform
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
    faces = np.tile(corners, (transform._SHARED_MIN // 2, 1))[::-1]
    placed = crs.to_crs84(crs.resolve(declared), crs.axis_order(declared))(faces)
    alone = [_to_lonlat(declared, x, y) for x, y, _ in corners[::-1]]
    assert len(faces) >= transform._SHARED_MIN
    np.testing.assert_array_equal(placed[:4, :2], np.array(alone))
    np.testing.assert_array_equal(placed[:, :2], np.tile(placed[:4, :2], (len(faces) // 4, 1)))
    np.testing.assert_array_equal(placed[:, 2], faces[:, 2])
    # 75 km west of 12 E, where a degree of longitude is some 72 km; 5,483 km of meridian arc
    assert (10.9 < placed[:, 0]).all() and (placed[:, 0] < 11.1).all()
    assert (49.3 < placed[:, 1]).all() and (placed[:, 1] < 49.6).all()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, -0.0, 1.5, -2.25, 1e300, np.nan, np.inf, -np.inf]),
            st.sampled_from([0.0, -0.0, 3.0, np.nan, -np.inf]),
        ),
        min_size=0,
        max_size=3000,
    )
)
@pytest.mark.filterwarnings("ignore:invalid value")
def test_distinct_positions_are_those_pandas_finds(pairs: list[tuple[float, float]]) -> None:
    """The compiled search numbers positions as `pandas.factorize` of x + iy does (0.0 and
    -0.0 one position, NaN parts equal, an infinite y a NaN real part), in order of first
    appearance, each as its first row holds it; over arrays one after another as over one."""
    if transform.compiled is None:
        pytest.skip("the positions kernel (positions.pyx) did not build")
    xy = np.array(pairs, dtype=float).reshape(-1, 2)
    codes, first = transform.compiled.distinct([xy[: len(xy) // 3], xy[len(xy) // 3 :]])
    expected, found = pd.factorize(xy[:, 0] + 1j * xy[:, 1], use_na_sentinel=False)
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(first[:, 0] + 1j * first[:, 1], found)
    firsts = np.unique(codes, return_index=True)[1]  # the first row of each
    np.testing.assert_array_equal(first, xy[firsts])


def test_many_distinct_positions_are_those_pandas_finds() -> None:
    """Positions far more distinct than a city model's (the table grown several times while
    it is filled): numbered as `pandas.factorize` numbers them."""
    if transform.compiled is None:
        pytest.skip("the positions kernel (positions.pyx) did not build")
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 1_000, (60_000, 2))[rng.integers(0, 60_000, 90_000)]
    codes, first = transform.compiled.distinct([xy[:20_000], xy[20_000:]])
    expected, found = pd.factorize(xy[:, 0] + 1j * xy[:, 1], use_na_sentinel=False)
    assert len(found) > 40_000
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(first[:, 0] + 1j * first[:, 1], found)


def test_distinct_positions_moved_are_every_corner_moved() -> None:
    """The repeated corners of a model moved once each, found with the compiled search or with
    pandas: every corner where PROJ puts it alone."""
    rng = np.random.default_rng(3)
    corners = rng.uniform([80_000, 450_000], [82_000, 452_000], (700, 2))[
        rng.integers(0, 700, 5000)
    ]
    to = crs.to_crs84(crs.resolve("EPSG:28992"), "xy")
    alone = np.column_stack(to._tr.transform(corners[:, 0], corners[:, 1], errcheck=False))
    kernel = transform.compiled
    for compiled in {kernel, None}:
        transform.compiled = compiled
        try:
            _, moved, codes = to.distinct(corners)
        finally:
            transform.compiled = kernel
        assert len(moved) <= 700
        np.testing.assert_array_equal(moved[codes], alone)


@pytest.mark.parametrize("count", [300, 5000])
@pytest.mark.parametrize("search", ["compiled", "pandas"])
def test_positions_moved_before_are_not_moved_again(count: int, search: str, monkeypatch) -> None:
    """A batch's footprints are found among its solids' corners, moved before (on another
    thread): those are taken as they were moved, the others moved by PROJ, each corner where
    PROJ puts it alone; with the compiled search, with pandas, and among too few positions to
    look for repeats. The solids' moved positions are marked (shifted by 1 degree) to tell
    where each came from."""
    if search == "pandas":
        monkeypatch.setattr(transform, "compiled", None)
    rng = np.random.default_rng(5)
    solids = rng.uniform([80_000, 450_000], [82_000, 452_000], (count // 7, 2))
    footprints = np.concatenate([solids[rng.integers(0, len(solids), count)], solids[:3] + 0.5])
    to = crs.to_crs84(crs.resolve("EPSG:28992"), "xy")
    alone = np.column_stack(to._tr.transform(footprints[:, 0], footprints[:, 1], errcheck=False))
    known = to.distinct(solids)
    _, moved, codes = to.distinct(footprints, known=known._replace(moved=known.moved + 1.0))
    np.testing.assert_array_equal(moved[codes][:-3], alone[:-3] + 1.0)  # taken as known
    np.testing.assert_array_equal(moved[codes][-3:], alone[-3:])  # moved by PROJ
