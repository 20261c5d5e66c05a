"""The CityGML walk compiled (gml_walk.pyx): what mypy sees of it."""

from typing import Any

import numpy as np

from citypipe.connectors.citygml_objects import ObjectReader
from citypipe.connectors.citygml_records import Record
from citypipe.connectors.gml import GeometryReader
from citypipe.connectors.gml_xlinks import Ref, Xlinks

def read(reader: GeometryReader, elem: Any, out: list[Ref]) -> bool: ...
def properties(reader: ObjectReader, rec: Record, elem: Any) -> bool: ...
def resolve(xlinks: Xlinks, refs: list[Ref]) -> tuple[list[int], list[str]]: ...
def parse_numbers(texts: list[str], blank: list[int]) -> tuple[np.ndarray, np.ndarray] | None: ...

class Detached:
    def free(self) -> None: ...

def detach(model: Any, count: int) -> Detached | None: ...
