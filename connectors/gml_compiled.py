"""The compiled GML walk (gml_walk.pyx: the surface walk, CityGML properties, coordinate
parsing), or None where it did not build: the one import guard, so that every reader using it
(gml, citygml_objects, gml_polygons) falls back to its Python code alike.
"""

from __future__ import annotations

try:
    from citypipe.connectors import gml_walk as compiled
except ImportError:
    compiled = None  # type: ignore[assignment]

__all__ = ["compiled"]
