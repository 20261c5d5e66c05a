"""A batch's polygon handles flattened in C (gml_handles.pxi) as numpy's iterators flatten
them: the lists of handles of any records (`gml_polygons.flattened`), and their thematic
surfaces' handles and types (`citygml_records._SurfaceHandles.of`)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from citypipe.connectors import citygml_records, gml_polygons
from citypipe.connectors.citygml_records import Record, _SurfaceHandles
from citypipe.connectors.gml_compiled import compiled

pytestmark = pytest.mark.skipif(compiled is None, reason="gml_walk did not build")

handle = st.integers(-(2**63), 2**63 - 1)
handles = st.lists(st.lists(handle, max_size=5), max_size=8)
kinds = st.sampled_from(["RoofSurface", "WallSurface", "GroundSurface", "TrafficArea"])


def _same(got: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> None:
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tolist() == b.tolist()


@given(handles)
def test_lists_of_handles_flatten_as_numpy_flattens_them(lists: list[list[int]]) -> None:
    with mock.patch.object(gml_polygons, "compiled", None):
        expected = gml_polygons.flattened(lists)
    _same(gml_polygons.flattened(lists), expected)


@given(st.lists(st.lists(st.tuples(kinds, st.lists(handle, max_size=4)), max_size=4), max_size=6))
def test_surfaces_handles_and_types_flatten_as_numpy_flattens_them(
    surfaces: list[list[tuple[str, list[int]]]],
) -> None:
    """Records of any thematic surfaces, of any number of polygons (none too)."""
    records = []
    for i, pairs in enumerate(surfaces):
        records.append(Record((None, "Building", i), None, "Building", None, i))
        records[-1].surface_handles = pairs
    with mock.patch.object(citygml_records, "compiled", None):
        expected = _SurfaceHandles.of(records)
    _same(_SurfaceHandles.of(records), expected)


def test_what_is_no_list_of_handles_is_refused() -> None:
    with pytest.raises(TypeError):
        compiled.flattened([(1, 2)])
    rec = Record((None, "Building", 0), None, "Building", None, 0)
    rec.surface_handles = [("RoofSurface", (1, 2))]
    with pytest.raises(TypeError):
        compiled.surface_handles([rec])
