"""Some faces of a batch taken out of its flat arrays (taken.pyx): what mypy sees."""

import numpy as np

def taken(
    coords: np.ndarray, ring: np.ndarray, polygon: np.ndarray, face: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
