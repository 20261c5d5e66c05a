from typing import Any

from citypipe.connectors.gml import GeometryReader
from citypipe.connectors.gml_xlinks import Ref

def read(reader: GeometryReader, elem: Any, out: list[Ref]) -> bool: ...
