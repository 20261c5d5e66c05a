"""The UTM zone 3D objects in geographic coordinates are measured in: the one the EPSG
database gives for their centre (the arithmetic replaces a 50 ms query per batch)."""

from __future__ import annotations

import pyproj
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from citypipe.core.measure import _utm_zone


@settings(max_examples=40, deadline=None)
@given(st.floats(-180, 180), st.floats(-90, 90))
def test_the_zone_is_one_the_epsg_database_gives_for_the_point(lon, lat):
    # on a zone's edge (within float noise) either neighbour is right
    assume(abs(lat) > 1e-9 and abs((lon + 180) / 6 - round((lon + 180) / 6)) > 1e-9)
    found = pyproj.database.query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=pyproj.aoi.AreaOfInterest(lon, lat, lon, lat)
    )
    zone = _utm_zone(lon, lat)
    if not found:
        assert zone is None
    else:
        assert str(zone) in {z.code for z in found}


def test_tokyo_and_melbourne():
    # PLATEAU's building (139.7 E, 35.7 N) is in zone 54N; Melbourne (145.0 E, 37.8 S) in 55S,
    # the zone its CityGML 3.0 roads are given in (EPSG:32755, the MANIFEST)
    assert _utm_zone(139.7, 35.7) == 32654
    assert _utm_zone(144.96, -37.81) == 32755


def test_no_zone_off_the_earth():
    assert _utm_zone(float("nan"), 10.0) is None
    assert _utm_zone(200.0, 10.0) is None
