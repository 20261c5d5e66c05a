"""3D measures: a 10 m x 20 m x 6 m box building, whose areas and volume are known by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from citypipe.connectors import registry
from citypipe.connectors.base import FileConnector, Solids, SourceBatch, SourceInfo, Surface
from citypipe.core import orientation, solids, warehouse
from citypipe.core.ingest import ingest

E, N = 500_000.0, 5_400_000.0  # UTM zone 32N, near Stuttgart
W, D, H = 10.0, 20.0, 6.0


def box_faces() -> list[Surface]:
    """The six faces, counter-clockwise seen from outside (CityGML's rule)."""
    x0, y0, x1, y1 = E, N, E + W, N + D
    P = lambda *pts: shapely.Polygon(pts)
    faces = [
        ("GroundSurface", P((x0, y0, 0), (x0, y1, 0), (x1, y1, 0), (x1, y0, 0))),
        ("RoofSurface", P((x0, y0, H), (x1, y0, H), (x1, y1, H), (x0, y1, H))),
        ("WallSurface", P((x0, y0, 0), (x1, y0, 0), (x1, y0, H), (x0, y0, H))),  # faces south
        ("WallSurface", P((x1, y0, 0), (x1, y1, 0), (x1, y1, H), (x1, y0, H))),  # east
        ("WallSurface", P((x1, y1, 0), (x0, y1, 0), (x0, y1, H), (x1, y1, H))),  # north
        ("WallSurface", P((x0, y1, 0), (x0, y0, 0), (x0, y0, H), (x0, y1, H))),  # west
    ]
    return [Surface(kind, polygon) for kind, polygon in faces]


class BoxConnector(FileConnector):
    """A connector as a 3D format would write one: a solid, its surfaces, no footprint."""

    name = "boxes"
    title = "Boxes"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        return 1.0 if head.startswith(b"BOX") else 0.0

    def inspect(self) -> SourceInfo:
        return SourceInfo(format="Boxes", crs="EPSG:25832", count=1)

    def read(self) -> Iterator[SourceBatch]:
        faces = box_faces()
        yield SourceBatch(
            source_ids=["b1"],
            geometries=np.array([None], dtype=object),
            properties=[{"roofType": "1000", "function": "31001_1000"}],
            records=["BOX b1"],
            crs="EPSG:25832",
            feature_classes=["Building"],
            solids=Solids([shapely.MultiPolygon([p for _, p in faces])], [faces]),
        )


@pytest.fixture
def boxes(monkeypatch, tmp_path):
    monkeypatch.setitem(registry.BUILTIN, "boxes", f"{__name__}:BoxConnector")
    registry.available.cache_clear()
    registry.load.cache_clear()
    path = tmp_path / "b.box"
    path.write_bytes(b"BOX")
    yield path
    registry.available.cache_clear()
    registry.load.cache_clear()


def test_measures_of_a_box(boxes, lake, read_lake):
    report = ingest(boxes, "boxes", lake)
    assert report.features == 1
    row = read_lake("boxes").to_pylist()[0]
    props = json.loads(row["properties"])
    assert props["citypipe:footprint_area_m2"] == pytest.approx(W * D)
    assert props["citypipe:volume_m3"] == pytest.approx(W * D * H)
    assert row["height_m"] == pytest.approx(H) and row["theme"] == "building"
    footprint = shapely.from_wkb(row["geometry"])
    assert not shapely.has_z(footprint) and len(shapely.get_coordinates(footprint)) == 5
    surfaces = read_lake("boxes", "surfaces").to_pylist()
    walls = {
        round(s["azimuth_deg"]): s["area_m2"]
        for s in surfaces
        if s["surface_type"] == "WallSurface"
    }
    assert walls == pytest.approx({0: W * H, 90: D * H, 180: W * H, 270: D * H})
    roof = next(s for s in surfaces if s["surface_type"] == "RoofSurface")
    assert roof["tilt_deg"] == pytest.approx(0) and roof["azimuth_deg"] is None
    assert shapely.get_coordinates(shapely.from_wkb(roof["geometry_3d"]), include_z=True)[0, 2] == H

    warehouse.refresh(lake)
    _, rows = warehouse.query(
        lake,
        "SELECT roof_type, footprint_area_m2, roof_area_m2, wall_area_m2, volume_m3 FROM buildings",
    )
    assert rows == [
        (
            "1000",
            pytest.approx(W * D),
            pytest.approx(W * D),
            pytest.approx(2 * (W + D) * H),
            pytest.approx(W * D * H),
        )
    ]


def test_an_open_shell_has_no_volume():
    faces = [p for _, p in box_faces()][:5]
    assert np.isnan(solids.volumes(np.array([shapely.MultiPolygon(faces)], dtype=object))[0])


def test_a_roof_written_clockwise_still_faces_up():
    roof = box_faces()[1][1].reverse()
    area, tilt, azimuth = orientation.surface_measures(
        np.array([roof], dtype=object), ["RoofSurface"]
    )
    assert (area[0], tilt[0]) == (pytest.approx(W * D), pytest.approx(0)) and np.isnan(azimuth[0])


@given(
    st.lists(st.sampled_from(["GroundSurface", "RoofSurface", "WallSurface", "OuterFloor", ""])),
    st.sampled_from(["Ground", "Roof", "Floor"]),
    st.booleans(),
)
def test_surface_types_that_name_a_word_are_those_that_hold_it(types, word, as_array):
    """`types_with` says of each type, list or array, whether it holds the word."""
    given_types = np.array(types, dtype=object) if as_array else types
    got = orientation.types_with(given_types, word)
    assert got.dtype == bool and got.tolist() == [word in t for t in types]


component = st.floats(allow_infinity=False, width=64) | st.sampled_from([0.0, -0.0, 1e-300])


@given(st.lists(st.tuples(component, component, component, st.booleans()), max_size=40))
def test_orientations_are_norm_s_and_modulo_s_to_the_bit(drawn):
    """Areas from the vectors' lengths as `np.linalg.norm` makes them, azimuths turned into
    [0, 360) as `% 360` turns them: the same bits for any vector (zeros of either sign, NaN,
    tiny and huge components), a roof looking down flipped."""
    vectors = np.array([v[:3] for v in drawn], dtype=float).reshape(-1, 3)
    roofs = np.array([v[3] for v in drawn], dtype=bool)
    area, tilt, azimuth = orientation.orientations(vectors, roofs)
    n = vectors.copy()
    n[roofs & (n[:, 2] < 0)] *= -1
    length = np.linalg.norm(n, axis=1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        turned = np.degrees(np.arctan2(n[:, 0], n[:, 1])) % 360
        wanted_tilt = np.degrees(np.arccos(np.clip(n[:, 2] / length, -1, 1)))
    flat = (
        (wanted_tilt < orientation.FLAT_DEG)
        | (wanted_tilt > 180 - orientation.FLAT_DEG)
        | (length == 0)
    )
    turned[flat] = np.nan
    assert area.tobytes() == (length / 2).tobytes()
    assert tilt.tobytes() == wanted_tilt.tobytes() and azimuth.tobytes() == turned.tobytes()
