"""The geometry of a delimited text file: where it is (a column of hex (E)WKB, else of
WKT/EWKT, else of GeoJSON geometries, else Opendatasoft's "Geo Point", else a longitude/latitude
pair) and how each row's is read.

Only an EWKB/EWKT SRID declares a CRS. Without one, GeoJSON geometries (Opendatasoft's "Geo
Shape" export, PostGIS's ST_AsGeoJSON) and coordinate columns named as longitude/latitude are
lon/lat (`default_crs`: RFC 7946 defines GeoJSON's so); x/y, easting/northing and (E)WKB/WKT
columns are in a CRS only `--crs` names. Coordinate columns are found by the words in their
names, in the languages of city portals, and their values parsed as a column (decimal comma
allowed).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from citypipe.connectors.csv_values import cleaned
from citypipe.geo.types import CRS84, Points

__all__ = ["WKT_SHAPED", "Kind", "Layout", "detect", "geometries", "geometry_text"]

_SAMPLE = 100
"""Non-empty values of a column parsed to decide whether it holds geometries."""
_COORDINATE = r"^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)([eE][+-]?[0-9]+)?$"
_EWKT_SRID = r"SRID=(?P<srid>[0-9]+);\s*"
_SRID = rf"(?i)^{_EWKT_SRID}"
WKT_SHAPED = re.compile(
    rf"(?i)^\s*({_EWKT_SRID})?(MULTI)?(POINT|LINESTRING|POLYGON|CURVEPOLYGON|TRIANGLE|TIN|"
    r"POLYHEDRALSURFACE|GEOMETRYCOLLECTION)\s*(Z|M|ZM)?\s*(\(|EMPTY)"
)
"""A value that starts as (E)WKT does, readable or not (decimal commas, a missing bracket);
its pattern is RE2's too (pyarrow)."""
_LON_DEGREES = (
    "longitude",
    "lon",
    "lng",
    "long",
    "longitud",
    "longitudine",
    "laengengrad",
    "laenge",
    "lengtegraad",
    "laengdegrad",
    "lengdegrad",
    "pituusaste",
    "ilguma",
)
_LAT_DEGREES = (
    "latitude", "lat", "latitud", "latitudine", "breitengrad", "breite", "breedtegraad",
    "breddegrad", "leveysaste", "platuma",
)  # fmt: skip
_LON = (*_LON_DEGREES, "x", "easting", "rechtswert", "ostwert")
_LAT = (*_LAT_DEGREES, "y", "northing", "hochwert", "nordwert")
"""Words that name a coordinate column, alone or with prefixes/suffixes (x-koord, lon_wgs84,
geo_breite), in the languages of city portals; degrees first (lon/lat without a declared CRS),
then projected axes (in a CRS only `--crs` can name). Danish and Norwegian (breddegrad,
længdegrad), Finnish (leveysaste, pituusaste) and Lithuanian (platuma, ilguma) name degrees
alone; Polish, Czech or Hungarian "width" and "length" (szerokość, šířka, hosszúság) name them
only beside "geographic", which a column's one word cannot tell from a width in metres."""
_WGS84 = ("wgs84", "4326", "crs84")
_PROJECTED = ("utm", "mercator", "3857", "900913", "pseudo", "webmerc")
"""Words of a coordinate column's name that say WGS 84 (longitude, latitude in degrees), and
the starts of words that say it is projected (UTM32 on WGS 84, Web Mercator)."""
_GEOMETRY_WORDS = (
    "geometry", "geom", "wkt", "wkb", "ewkt", "ewkb", "geometrie", "geometria", "shape"
)  # fmt: skip
"""Words that name a geometry column (the_geom, wkb_geometry, GEOMETRIE, geometria, Esri's
Shape, Opendatasoft's Geo Shape)."""
_TRANSLITERATE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "ø": "oe"})

Kind = Literal["wkb", "wkt", "geojson", "latlon", "xy"]
TEXTS: tuple[Kind, ...] = ("wkb", "wkt", "geojson")
"""The kinds of a geometry column (its values geometries as text), in order of preference."""
_NAMES = {"wkb": "WKB", "wkt": "WKT", "geojson": "GeoJSON"}


@dataclass(frozen=True)
class Layout:
    """Where a file keeps its geometry and ids (column positions), chosen on the first batch."""

    kind: Kind | None
    columns: tuple[int, ...] = ()
    crs: str | None = None
    id: int | None = None
    default_crs: str | None = None
    """OGC:CRS84 for coordinate columns both named in degrees, else None."""


def _parse(values: pa.Array, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    """Geometries from hex (E)WKB or (E)WKT (None where null or unreadable), and SRIDs (0: none).

    NaN and numbers beyond a double (1e309 reads as infinity) are read as they are, without
    numpy's warnings: harmonise rejects their records with the reason."""
    if kind == "wkb":
        geoms = shapely.from_wkb(values.to_numpy(zero_copy_only=False), on_invalid="ignore")
        return geoms, np.maximum(shapely.get_srid(geoms), 0)
    if kind == "geojson":  # only objects: GEOS's reader is slow to refuse other text
        objects = pc.if_else(pc.starts_with(pc.utf8_ltrim_whitespace(values), "{"), values, None)
        geoms = shapely.from_geojson(objects.to_numpy(zero_copy_only=False), on_invalid="ignore")
        return geoms, np.zeros(len(values), dtype=np.int64)
    srid = pc.struct_field(pc.extract_regex(values, _SRID), [0])
    wkt = pc.replace_substring_regex(values, _SRID, "")
    with np.errstate(over="ignore", invalid="ignore"):
        geoms = shapely.from_wkt(wkt.to_numpy(zero_copy_only=False), on_invalid="ignore")
    return geoms, pc.cast(srid, pa.int64()).fill_null(0).to_numpy()


_LATLON = r"^\s*(?P<lat>[+-]?[0-9]+(?:\.[0-9]*)?)\s*,\s*(?P<lon>[+-]?[0-9]+(?:\.[0-9]*)?)\s*$"
"""Opendatasoft's "Geo Point" (geo_point_2d): latitude, longitude in one value, "48.85, 2.35"."""


def _latlon_column(batch: pa.RecordBatch) -> int | None:
    """The column named a geo point (Geo Point, geo_point_2d, geopoint) whose values are mostly
    "latitude, longitude"."""
    for i, name in enumerate(batch.schema.names):
        words = _tokens(name)
        if "geopoint" in words or any(a == "geo" and b == "point" for a, b in pairwise(words)):
            clean, present = cleaned(batch.column(i))
            pairs = pc.sum(pc.match_substring_regex(clean, _LATLON)).as_py() or 0
            if pairs > (pc.sum(present).as_py() or 0) / 2:
                return i
    return None


def _probe(values: pa.Array, kind: Kind) -> tuple[float, int]:
    """The share of the column's first non-empty values that are geometries of `kind`, and the
    first SRID among them (0: none)."""
    sample = _sample(values)
    if len(sample) == 0:
        return 0.0, 0
    geoms, srids = _parse(sample, kind)
    given = srids[srids > 0]
    share = np.count_nonzero(~shapely.is_missing(geoms)) / len(sample)
    return share, int(given[0]) if len(given) else 0


def _wkt_shaped(values: pa.Array) -> bool:
    """Whether most of the column's first non-empty values start as (E)WKT."""
    sample = _sample(values)
    shaped = pc.sum(pc.match_substring_regex(sample, WKT_SHAPED.pattern)).as_py() or 0
    return len(sample) > 0 and shaped > len(sample) / 2


def _sample(values: pa.Array) -> pa.Array:
    """The column's first `_SAMPLE` non-empty values, cleaned (csv_values.cleaned)."""
    clean, present = cleaned(values)
    return pc.filter(clean, present)[:_SAMPLE]


def geometry_text(values: list[str]) -> bool:
    """Whether most of `values` are geometries, as (E)WKT or hex (E)WKB."""
    column = pa.array(values, pa.string())
    return any(_probe(column, kind)[0] > 0.5 for kind in TEXTS)


def _tokens(name: str) -> list[str]:
    """The words of a column name, in ASCII lower case (umlauts as ae, oe, ue)."""
    ascii_name = unicodedata.normalize("NFKD", name.lower().translate(_TRANSLITERATE))
    return re.split(r"[^0-9a-z]+", ascii_name.encode("ascii", "ignore").decode())


def _axis_rank(name: str, words: tuple[str, ...]) -> int | None:
    """How early in `words` a word of the column name comes; None if it has none of them."""
    ranks = [words.index(t) for t in _tokens(name) if t in words]
    return min(ranks) if ranks else None


def _geometry_named(name: str) -> bool:
    """Whether the column's name says it holds geometries (geom, the_geom, WKT, wkb_geometry):
    one readable value among its first rows makes it the geometry column, so that a small file's
    unreadable rows are rejected with their reason instead of every row landing without one."""
    return _axis_rank(name, _GEOMETRY_WORDS) is not None


def _numbers(values: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Coordinates as float64 (decimal comma allowed), and the masks of given and readable ones."""
    clean, present = cleaned(values)
    readable = pc.fill_null(pc.match_substring_regex(clean, _COORDINATE), False)
    text = pc.replace_substring(pc.if_else(readable, clean, None), ",", ".")
    numbers = pc.cast(text, pa.float64())
    return numbers, present, readable


def _coordinate_column(batch: pa.RecordBatch, words: tuple[str, ...]) -> int | None:
    """The best-named column with one of `words` in its name whose values are mostly numbers."""
    ranked = sorted(
        (rank, i)
        for i, name in enumerate(batch.schema.names)
        if (rank := _axis_rank(name, words)) is not None
    )
    for _, i in ranked:
        _, present, readable = _numbers(batch.column(i))
        given = pc.sum(present).as_py() or 0
        if given and (pc.sum(readable).as_py() or 0) > given / 2:
            return i
    return None


def _xy_layout(batch: pa.RecordBatch, x: int, y: int) -> Layout:
    """Coordinate columns x and y: lon/lat by their names only where both name degrees, or
    both name WGS 84 without a projection (X_WGS84, y_wgs84: GPS positions)."""
    names = batch.schema.names
    x_rank, y_rank = _axis_rank(names[x], _LON), _axis_rank(names[y], _LAT)
    degrees = (
        x_rank is not None
        and x_rank < len(_LON_DEGREES)
        and y_rank is not None
        and y_rank < len(_LAT_DEGREES)
    ) or all(
        _axis_rank(names[i], _WGS84) is not None
        and not any(t.startswith(_PROJECTED) for t in _tokens(names[i]))
        for i in (x, y)
    )
    return Layout("xy", (x, y), default_crs=CRS84 if degrees else None)


def detect(batch: pa.RecordBatch, geometry: int | None, xy: tuple[int, int] | None) -> Layout:
    """Where the first batch keeps its geometry: the `geometry` column or the `xy` columns
    where options name them, else the first column mostly of (E)WKB (or with some, named as a
    geometry column), else of (E)WKT, else of GeoJSON geometries, else the best-named pair of
    coordinate columns; Layout(None) where there is none."""
    if xy is not None and geometry is None:
        return _xy_layout(batch, *xy)
    named = geometry is not None
    columns = [geometry] if geometry is not None else range(batch.num_columns)
    kind: Kind
    for kind in TEXTS:
        for i in columns:
            share, srid = _probe(batch.column(i), kind)
            if share > (0 if named or _geometry_named(batch.schema.names[i]) else 0.5):
                lonlat = CRS84 if kind == "geojson" else None
                return Layout(kind, (i,), f"EPSG:{srid}" if srid else None, default_crs=lonlat)
    if named:  # nothing readable in the first rows: each row's error will say why
        return Layout("wkt", tuple(columns))
    for i in columns:  # named a geometry and written as WKT, none readable: each row says why
        if _geometry_named(batch.schema.names[i]) and _wkt_shaped(batch.column(i)):
            return Layout("wkt", (i,))
    if (pair := _latlon_column(batch)) is not None:
        return Layout("latlon", (pair,), default_crs=CRS84)
    x, y = (_coordinate_column(batch, words) for words in (_LON, _LAT))
    if x is not None and y is not None and x != y:
        return _xy_layout(batch, x, y)
    return Layout(None)


def geometries(
    batch: pa.RecordBatch, layout: Layout
) -> tuple[np.ndarray | Points, list[str | None]]:
    """Shapely geometries (None where the row has none) or, from a coordinate pair, Points;
    and why a row's cannot be read."""
    if layout.kind == "xy":
        return _points(batch, layout)
    if layout.kind == "latlon":
        return _geo_points(batch, layout.columns[0])
    if layout.kind is not None:
        return _parsed(batch, layout, layout.kind)
    return np.full(batch.num_rows, None, dtype=object), [None] * batch.num_rows


def _points(batch: pa.RecordBatch, layout: Layout) -> tuple[Points, list[str | None]]:
    """Points from the coordinate columns (NaN where a row's are not both readable)."""
    names = batch.schema.names
    errors: list[str | None] = [None] * batch.num_rows
    x, x_given, x_ok = _numbers(batch.column(layout.columns[0]))
    y, y_given, y_ok = _numbers(batch.column(layout.columns[1]))
    readable = pc.and_(x_ok, y_ok)
    ok = readable.to_numpy(zero_copy_only=False)
    xy = np.column_stack([a.to_numpy(zero_copy_only=False) for a in (x, y)])
    xy[~ok] = np.nan
    wrong = pc.and_(pc.or_(x_given, y_given), pc.invert(readable))
    for r in np.flatnonzero(wrong.to_numpy(zero_copy_only=False)):
        cells = [f"{names[i]}={batch.column(i)[r].as_py()!r}" for i in layout.columns]
        errors[r] = f"unreadable coordinates: {', '.join(cells)}"
    return Points(xy), errors


def _geo_points(batch: pa.RecordBatch, column: int) -> tuple[Points, list[str | None]]:
    """Points from a "latitude, longitude" column (NaN where a row's is not one)."""
    clean, present = cleaned(batch.column(column))
    pair = pc.extract_regex(clean, _LATLON)
    lat, lon = (pc.cast(pc.struct_field(pair, [k]), pa.float64()) for k in (0, 1))
    xy = np.column_stack([a.to_numpy(zero_copy_only=False) for a in (lon, lat)])
    unread = present.to_numpy(zero_copy_only=False) & pc.is_null(pair).to_numpy(
        zero_copy_only=False
    )
    name = batch.schema.names[column]
    errors: list[str | None] = [None] * batch.num_rows
    for r in np.flatnonzero(unread):
        errors[r] = f"unreadable coordinates: {name}={clean[r].as_py()!r}"
    return Points(xy), errors


def _parsed(
    batch: pa.RecordBatch, layout: Layout, kind: Kind
) -> tuple[np.ndarray, list[str | None]]:
    """Geometries from the (E)WKB or (E)WKT column; a row whose SRID is not the first rows' has
    none."""
    errors: list[str | None] = [None] * batch.num_rows
    i = layout.columns[0]
    clean, present = cleaned(batch.column(i))
    geoms, srids = _parse(clean, kind)
    what = f"{_NAMES[kind]} in column {batch.schema.names[i]}"
    unread = present.to_numpy(zero_copy_only=False) & shapely.is_missing(geoms)
    for r in np.flatnonzero(unread):
        errors[r] = f"unreadable {what}: {clean[r].as_py()[:80]!r}"
    srid = int(layout.crs.removeprefix("EPSG:")) if layout.crs else 0
    first = layout.crs or "no SRID"
    for r in np.flatnonzero((srids > 0) & (srids != srid)):
        errors[r] = f"SRID {srids[r]} of the {what} differs from the first rows' ({first})"
        geoms[r] = None
    return geoms, errors
