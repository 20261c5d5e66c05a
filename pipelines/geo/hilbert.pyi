"""Hilbert distances of points on a grid over an extent (hilbert.pyx): what mypy sees."""

import numpy as np

def distances(
    x: np.ndarray,
    y: np.ndarray,
    low_x: float,
    scale_x: float,
    low_y: float,
    scale_y: float,
    digits: np.ndarray,
    turns: np.ndarray,
    level: int,
    step: int,
    null_key: int | np.uint64,
) -> np.ndarray: ...
