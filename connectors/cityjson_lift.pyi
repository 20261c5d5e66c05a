"""A CityJSON document's vertices lifted out of its bytes (cityjson_lift.pyx): what mypy sees."""

import numpy as np

LIFTED: bytes

def lift(data: bytes) -> tuple[bytes, np.ndarray] | None: ...
