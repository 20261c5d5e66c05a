"""A small map of a source's features as standalone SVG: shown in its validation report and on
its Dagster materialisation, drawn offline (no tiles, no script), so a glance tells whether the
data landed where it should.

Large sources are drawn from an even sample of their rows; lake files are in spatial order, so
every k-th row still covers the whole extent.
"""

from __future__ import annotations

import html
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import shapely

__all__ = ["MAX_SHAPES", "WIDTH", "map_svg", "read_geometries", "sample"]

MAX_SHAPES = 4000
"""Geometries drawn at most; beyond, an even sample of the rows."""
WIDTH = 480
"""Width of the drawing in pixels; its height follows the extent's aspect (at most WIDTH)."""
_FILL = "#2b6cb0"
_MARGIN = 8
_AREA_TYPES = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def read_geometries(file: Path, limit: int = MAX_SHAPES) -> np.ndarray:
    """The geometries (lon/lat) of a features file, an even sample of `limit` rows at most."""
    column = pq.read_table(file, columns=["geometry"]).column("geometry")
    geometries = shapely.from_wkb(sample(column, limit).to_numpy(zero_copy_only=False))
    return geometries[~(shapely.is_missing(geometries) | shapely.is_empty(geometries))]


def sample(values: Any, limit: int) -> Any:
    """An even sample of `limit` of `values` (an array or Arrow column), all where fewer."""
    if len(values) <= limit:
        return values
    return values.take(np.linspace(0, len(values) - 1, limit).astype(np.int64))


def _to_pixels(geometries: np.ndarray) -> tuple[np.ndarray, int]:
    """Geometries in pixel space (y down, centred across WIDTH), metres-true at the extent's
    middle latitude; and the drawing's height."""
    xmin, ymin, xmax, ymax = shapely.total_bounds(geometries)
    shrink = np.cos(np.radians((ymin + ymax) / 2))  # a degree of longitude is shorter
    span_x, span_y = max((xmax - xmin) * shrink, 1e-9), max(ymax - ymin, 1e-9)
    scale = (WIDTH - 2 * _MARGIN) / max(span_x, span_y)
    left = (WIDTH - span_x * scale) / 2

    def pixels(xy: np.ndarray) -> np.ndarray:
        x = (xy[:, 0] - xmin) * shrink * scale + left
        return np.column_stack((x, (ymax - xy[:, 1]) * scale + _MARGIN))

    # half a pixel's detail kept (of latitude; of longitude a little less), before the
    # positions are moved: the fewer, the cheaper
    shown = shapely.simplify(geometries, 0.5 / scale, preserve_topology=False)
    height = round(span_y * scale) + 2 * _MARGIN
    return shapely.transform(shown, pixels), height


def _svg(geometry: Any) -> str:
    """One shape drawn: shapely's lines take a stroke colour, collections one colour, the rest
    a fill."""
    if geometry.geom_type in ("LineString", "LinearRing", "MultiLineString"):
        return str(geometry.svg(scale_factor=0.6, stroke_color=_FILL, opacity=0.55))
    if geometry.geom_type == "GeometryCollection":
        return str(geometry.svg(scale_factor=0.6, color=_FILL))
    return str(geometry.svg(scale_factor=0.6, fill_color=_FILL, opacity=0.55))


def _areas(drawn: np.ndarray) -> list[str]:
    """Polygons and multipolygons (in pixels) drawn as shapely's `svg` draws them, one path
    each, written from their coordinate arrays at once: shapely writes every coordinate through
    Python objects, which took most of a report page's time (barris: 2,200 positions)."""
    if not len(drawn):
        return []
    _, coords, offsets = shapely.to_ragged_array(drawn)  # in 2D: _to_pixels' transform
    rings, polygons = offsets[:2]  # where each ring starts in coords, each polygon in rings
    parts = offsets[2] if len(offsets) == 3 else np.arange(len(polygons))  # multipolygons
    points = [f"{x},{y}" for x, y in np.rint(coords).astype(np.int64).tolist()]  # whole pixels
    paths = [f"M {' L '.join(points[a:b])} z" for a, b in itertools.pairwise(rings.tolist())]
    return [
        f'<path fill-rule="evenodd" fill="{_FILL}" stroke="#555555" stroke-width="1.2" '
        f'opacity="0.55" d="{" ".join(paths[a:b])}" />'
        for a, b in itertools.pairwise(polygons[parts].tolist())  # each geometry's rings
        if b > a
    ]


def map_svg(geometries: np.ndarray, title: str = "") -> str | None:
    """An SVG document drawing `geometries` (lon/lat); None when there is nothing to draw."""
    if not len(geometries):
        return None
    xmin, ymin, xmax, ymax = shapely.total_bounds(geometries)
    drawn, height = _to_pixels(geometries)
    areas = np.isin(shapely.get_type_id(drawn), _AREA_TYPES)  # under the lines and points
    shapes = "".join([*_areas(drawn[areas]), *map(_svg, drawn[~areas])])
    extent = f"lon {xmin:.5f} .. {xmax:.5f}, lat {ymin:.5f} .. {ymax:.5f}"
    caption = html.escape(f"{title}; {extent}" if title else extent)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height + 18}" '
        f'viewBox="0 0 {WIDTH} {height + 18}" role="img"><title>{caption}</title>'
        f'<rect width="100%" height="100%" fill="#f7fafc" stroke="#cbd5e0"/>{shapes}'
        f'<text x="4" y="{height + 13}" font-family="sans-serif" font-size="10" '
        f'fill="#4a5568">{caption}</text></svg>'
    )
