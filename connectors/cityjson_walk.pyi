"""The CityJSON object walk compiled (cityjson_walk.pyx): what mypy sees of it (the batch and
the vertices are cityjson_objects' Batch and cityjson_values' Vertices, whose modules import
this one)."""

from collections.abc import Iterable
from typing import Any

import numpy as np

class SemanticValues:
    def lists(self) -> tuple[list[Any], Any]: ...

def add(batch: Any, items: Iterable[tuple[str, Any]], base: int, vertices: Any) -> None: ...
def flatten(jobs: list[Any], depth: int) -> tuple[list[np.ndarray], np.ndarray] | None: ...
def semantic_values(jobs: list[Any]) -> tuple[np.ndarray, ...] | None: ...
def positions(raw: list[Any]) -> np.ndarray | None: ...
def close_rings(
    xyz: np.ndarray,
    rows: np.ndarray,
    per_job: np.ndarray,
    per_surface: np.ndarray,
    sizes: np.ndarray,
    noise: float,
) -> tuple[np.ndarray, ...] | None: ...
