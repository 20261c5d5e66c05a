"""A batch pickled for the pipe (Record.__reduce__) loads as the records it was: every slot equal,
and a part's parent the very record of the batch it points to (BuildingUnits_Storeys: Storeys,
BuildingUnits and BuildingRooms in their Building, whose geometry they share by xlink)."""

from __future__ import annotations

import pickle
from functools import partial
from typing import Any

import numpy as np
from conftest import CORPUS

from citypipe.connectors.citygml import CityGMLConnector
from citypipe.connectors.citygml_process import take
from citypipe.connectors.citygml_records import Record

FILE = CORPUS / "citygml3" / "BuildingUnits_Storeys_xlink.gml"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def test_a_batch_loads_as_it_was_read() -> None:
    connector = CityGMLConnector(FILE)
    batches = list(connector._read(partial(take, lambda: 0)))
    records, rings, _ = batches[0]
    loaded, loaded_rings = pickle.loads(pickle.dumps((records, rings), protocol=5))
    assert loaded_rings == rings
    assert [type(r) for r in loaded] == [Record] * len(records)
    at = {id(rec): i for i, rec in enumerate(records)}
    parts = 0
    for rec, back in zip(records, loaded, strict=True):
        for name in Record.__slots__:
            if name == "parent":
                continue
            assert _same(getattr(rec, name), getattr(back, name)), name
        if rec.parent is not None:
            parts += 1
            assert back.parent is loaded[at[id(rec.parent)]]
        else:
            assert back.parent is None
    source = FILE.read_bytes()  # one member, its Building; every other object is a part
    assert source.count(b"<cityObjectMember") == 1
    kinds = ("BuildingRoom", "BuildingUnit", "Storey")
    assert parts == len(records) - 1 == sum(source.count(f"<bldg:{k} ".encode()) for k in kinds)
