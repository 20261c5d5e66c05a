"""`SurfaceColumns.named`: which semantic surfaces' types name a word, as `orientation.types_with`
says of the types themselves, for the columns and those cut from them (`take`, `dropped`),
whether a batch has a few types (compared as arrays) or many (looked up one by one)."""

from __future__ import annotations

import numpy as np
import pytest

from citypipe.core import orientation
from citypipe.geo.surfaces import SurfaceColumns


def columns(types: list[str], records: int) -> SurfaceColumns:
    """Surfaces of `types`, dealt to `records` records in turn (each record's together)."""
    owner = np.sort(np.arange(len(types)) % records)
    kinds = np.array([str(t) for t in types], dtype=object)  # each a str of its own
    listed = np.bincount(owner, minlength=records) > 0
    face = np.full(len(types), -1)
    return SurfaceColumns(listed, owner, kinds, face, lambda: np.empty(0, object), tuple)


CITYGML_TYPES = ["GroundSurface", "RoofSurface", "WallSurface", "OuterFloorSurface"]


@pytest.mark.parametrize("kinds", [CITYGML_TYPES, [f"Roof{k}" for k in range(30)] + ["Ground"]])
def test_named_says_what_types_with_says(kinds: list[str]) -> None:
    """A batch's 600 surfaces of 4 CityGML types, or of 31 (more than are compared as
    arrays, looked up past 16): the grounds, the roofs and none of a word no type holds; on
    the whole columns, on some records' surfaces and without others'."""
    rng = np.random.default_rng(7)
    types = [kinds[k] for k in rng.integers(0, len(kinds), 600)]
    whole = columns(types, 40)
    rows = np.array([1, 2, 5, 30, 39])
    for cut in (
        whole,
        whole.take(rows),
        whole.dropped([0, 3, 17]),
        whole.take(rows).take(rows[:2]),
    ):
        for word in ("Ground", "Roof", "Window"):
            assert cut.named(word).tolist() == orientation.types_with(cut.types, word).tolist()
    assert whole.named("Ground").sum() == types.count("GroundSurface") + types.count("Ground")
    assert not whole.named("Window").any()
