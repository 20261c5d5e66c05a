"""The distinct positions of a coordinate array (positions.pyx): what mypy sees."""

import numpy as np

LIMIT: int

def distinct(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]: ...

class Table:
    def __init__(self, xy: np.ndarray) -> None: ...
    def codes(self, parts: list[np.ndarray]) -> np.ndarray: ...
