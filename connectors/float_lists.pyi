"""Nested lists of numbers as a float array, compiled (float_lists.pyx): what mypy sees of it."""

from typing import Any

import numpy as np

def floats_of(nested: Any, levels: int, count: int, width: int = 0) -> np.ndarray | None: ...
