"""Polygons of one short ring vouched valid (simple_rings.pyx): what mypy sees."""

import numpy as np

def simple_rings(xy: np.ndarray, offsets: np.ndarray) -> np.ndarray: ...
