"""A CityJSON document's numbers lifted out of its bytes (cityjson_lift.pyx): what mypy sees."""

import numpy as np

PLACE: str

class Boundaries:
    levels: list[np.ndarray]
    idx: np.ndarray
    where: np.ndarray
    texts: list[bytes]
    objects: int
    def __init__(
        self,
        levels: list[np.ndarray],
        idx: np.ndarray,
        where: np.ndarray,
        texts: list[bytes],
        objects: int,
    ) -> None: ...

def lift(
    data: bytes, read: tuple[bytes, ...] | None = None
) -> tuple[bytes, np.ndarray | None, Boundaries] | None: ...
