"""The distinct positions of a coordinate array (positions.pyx): what mypy sees."""

import numpy as np

LIMIT: int

def distinct(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]: ...
