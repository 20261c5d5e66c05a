"""A CityJSON document's numbers lifted out of its bytes (cityjson_lift.pyx): what mypy sees."""

import numpy as np

class Passed:
    semantics: np.ndarray
    members: np.ndarray
    values: np.ndarray
    codes: np.ndarray
    names: list[str]
    texts: np.ndarray
    def __init__(
        self,
        semantics: np.ndarray,
        members: np.ndarray,
        values: np.ndarray,
        codes: np.ndarray,
        names: list[str],
        texts: np.ndarray,
    ) -> None: ...

class Boundaries:
    levels: list[np.ndarray]
    idx: np.ndarray
    where: np.ndarray
    objects: int
    passed: Passed
    data: bytes
    def __init__(
        self,
        levels: list[np.ndarray],
        idx: np.ndarray,
        where: np.ndarray,
        objects: int,
        passed: Passed,
        data: bytes,
    ) -> None: ...

def lift(
    data: bytes, read: tuple[bytes, ...] | None = None, found: tuple[bytes, ...] = ()
) -> tuple[bytes, np.ndarray | None, Boundaries | None, dict[bytes, tuple[int, int]]] | None: ...
