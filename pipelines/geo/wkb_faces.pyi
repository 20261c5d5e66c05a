"""The WKB of solids written from their flat faces in one pass (wkb_faces.pyx): what mypy sees."""

import numpy as np

def multipolygons_z(
    xy: np.ndarray,
    codes: np.ndarray,
    z: np.ndarray,
    ring: np.ndarray,
    polygon: np.ndarray,
    owner: np.ndarray,
    present: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None: ...
def cut(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray, parts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]: ...
def polygons_2d(
    xy: np.ndarray, rings: np.ndarray, polygons: np.ndarray, present: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None: ...
