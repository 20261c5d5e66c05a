"""The edges of flat faces hashed in one pass (edges.pyx): what mypy sees."""

import numpy as np

def edge_hashes(
    key: np.ndarray, ring: np.ndarray, polygon: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
def kept_faces(
    plane: np.ndarray, owner: np.ndarray, grounded: np.ndarray, count: int
) -> tuple[np.ndarray, ...]: ...
def outline(
    edge: np.ndarray,
    obj: np.ndarray,
    at: np.ndarray,
    forward: np.ndarray,
    xy: np.ndarray,
    count: int,
    traced: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
def face_outline(
    key: np.ndarray,
    xy: np.ndarray,
    ring: np.ndarray,
    polygon: np.ndarray,
    owner: np.ndarray,
    keep: np.ndarray,
    count: int,
    traced: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None: ...
def rings(
    ends: np.ndarray, owner: np.ndarray, objects: np.ndarray, ccw: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
