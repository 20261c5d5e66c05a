"""Newell's vectors of flat faces, the volumes they bound, whether those close, and heights
(newell.pyx): what mypy sees."""

import numpy as np

def area_vectors(
    coords: np.ndarray, ring: np.ndarray, polygon: np.ndarray, faces: int, axes: tuple[int, ...]
) -> np.ndarray: ...
def volumes(
    coords: np.ndarray, ring: np.ndarray, polygon: np.ndarray, owner: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
