"""CityJSON solids handed over as their faces' arrays alone (`Solids.faces`, no GEOS geometry
built or freed) are placed as the same solids built: footprints, 3D WKB, measures and semantic
surfaces byte for byte, in a CRS PROJ moves and in one it does not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import shapely
from conftest import CORPUS

from citypipe.connectors.base import SourceBatch
from citypipe.connectors.cityjson import CityJSONConnector
from citypipe.core.geometry import Placed, Placer

FILES = [
    "cityjson/rotterdam_one_v1.1.city.json",
    "cityjson/denhaag_DH_01_subset_v1.1.city.json",
    "cityjson/3dbag_multi_lod_v2.0.city.json",
    "cityjson/3dbag_b2.city.jsonl",
]


def _placed(batch: SourceBatch, crs: str) -> tuple[Placed, list[str | None]]:
    reasons: list[str | None] = list(batch.errors or [None] * len(batch))
    return Placer("s", "CityJSON", crs).place(batch, reasons, [None] * len(batch)), reasons


def _wkb(values: np.ndarray | pa.Array | None) -> list[bytes | None]:
    if values is None:
        return []
    if isinstance(values, pa.Array):
        return values.to_pylist()
    return list(shapely.to_wkb(values, output_dimension=3))


def _same(a: Placed, b: Placed) -> None:
    assert _wkb(a.geometry) == _wkb(b.geometry)
    rows = slice(None)
    assert a.wkb_3d(rows) == b.wkb_3d(rows)
    np.testing.assert_array_equal(a.bounds, b.bounds)
    assert (a.measures is None) == (b.measures is None)
    if a.measures is None or b.measures is None:  # no metres for coordinates off the Earth
        return
    for name in ("footprint_area", "volume", "height", "surface_area", "surface_tilt"):
        np.testing.assert_array_equal(getattr(a.measures, name), getattr(b.measures, name))
    if a.measures.surface_owner is not None:
        everything = np.arange(len(a.measures.surface_owner))
        assert a.measures.surface_wkb_of(everything) == b.measures.surface_wkb_of(everything)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("crs", ["EPSG:7415", "OGC:CRS84"])
def test_solids_left_unbuilt_place_as_built(name: str, crs: str) -> None:
    """Every polygonal solid of the corpus's CityJSON files comes unbuilt; placed read as RD
    New (PROJ moves it) or as longitude/latitude (read as they are: the file's metres are
    outside lon/lat, rejected alike), it gives what the built solids give."""
    for batch in CityJSONConnector(CORPUS / name).read():
        assert batch.solids is not None and batch.solids.faces is not None
        unbuilt = np.asarray(batch.solids.geometry_3d, dtype=object)
        assert shapely.is_missing(unbuilt).all() and len(batch.solids.faces.owner)
        built = replace(batch, solids=batch.solids.built())
        assert not shapely.is_missing(np.asarray(built.solids.geometry_3d, dtype=object)).all()
        (a, why_a), (b, why_b) = _placed(batch, crs), _placed(built, crs)
        assert why_a == why_b
        _same(a, b)


def test_solids_left_unbuilt_in_lonlat_place_as_built(tmp_path: Path) -> None:
    """A file whose vertices are longitude/latitude (nothing for PROJ to move: the 3D WKB is
    then GEOS's of the built solids) places as its solids built."""
    path = CORPUS / "cityjson/denhaag_DH_01_subset_v1.1.city.json"
    (batch,) = CityJSONConnector(path).read()
    assert batch.solids is not None and batch.solids.faces is not None
    faces = batch.solids.faces
    xy = faces.coords[:, :2]
    lonlat = (xy - xy.min(axis=0)) * 1e-7 + [4.3, 52.07]
    moved = faces._replace(coords=np.column_stack([lonlat, faces.coords[:, 2]]))
    batch = replace(batch, solids=replace(batch.solids, faces=moved))
    built = replace(batch, solids=batch.solids.built())
    (a, why_a), (b, why_b) = _placed(batch, "OGC:CRS84"), _placed(built, "OGC:CRS84")
    assert why_a == why_b and not any(why_a)
    _same(a, b)
