"""Source table -> shared schema v1: one `SourceBatch` in, features and rejects out.

Everything a connector hands over is turned into the typed columns of schemas/feature-v1.yaml:
coordinates to OGC:CRS84 (2D, valid), stable feature ids, a theme from the vocabulary, the
mapped attributes (name, observed_at, height_m) and every attribute as JSON. A record that
cannot be harmonised becomes a reject with the reason and the record as it was read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely
from shapely.errors import GEOSException

from citypipe import schemas
from citypipe.connectors import coordinates
from citypipe.connectors.base import SourceBatch
from citypipe.core import solids
from citypipe.core.properties import json_texts, max_value_bytes, record_text
from citypipe.core.seen_ids import SeenIds
from citypipe.geo import crs as crslib
from citypipe.geo import wkb
from citypipe.geo.errors import ConfigurationError, UnknownCRS
from citypipe.geo.types import AxisOrder, Points

__all__ = ["HarmonisedBatch", "Harmoniser", "record_text"]

REPAIR_NOTE = "citypipe:geometry_repaired"
POSITION_NOTE = "citypipe:position_conflict"
POSITION_TOLERANCE_M = 500.0
"""How far a geometry may lie from the latitude / longitude its record states before that is
reported: generous for attributes rounded or taken at a building's centre, yet far below what a
wrong CRS or swapped axes make of the position."""
_GEOD = pyproj.Geod(ellps="WGS84")
_MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
_LONLAT_MIN, _LONLAT_MAX = np.array([-180.0, -90.0]), np.array([180.0, 90.0])


def _timestamp(value: Any) -> datetime | None:
    """A time from ISO 8601 text, a datetime or epoch seconds / milliseconds; None if unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Mapping):  # NGSI / JSON-FG wrappers such as {"@value": ...}
        value = value.get("@value") or value.get("value") or value.get("instant")
    t: datetime | None = None
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        n = float(value)
        seconds = n / 1000 if abs(n) >= 1e11 else n
        try:
            t = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if t is None:
        return None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return t if _MIN_TIME <= t <= _MAX_TIME else None


def _by_record(
    f: Callable[..., np.ndarray], *columns: Sequence[Any]
) -> tuple[np.ndarray, dict[int, str]]:
    """`f` over whole columns, or record by record where GEOS refuses one: the results (None
    for the refused), and GEOS's message for each refused record."""
    try:
        return f(*columns), {}
    except GEOSException:
        pass
    out, failed = np.full(len(columns[0]), None, dtype=object), {}
    for i in range(len(out)):
        try:
            out[i] = f(*(c[i : i + 1] for c in columns))[0]
        except GEOSException as e:
            failed[i] = str(e).strip()
    return out, failed


def _untransformable(label: str) -> str:
    return f"coordinates that {label} cannot take to longitude/latitude"


def _own_ids(ids: pa.Array) -> pa.Array:
    """A source's ids as they appear in feature ids: with a leading `#` doubled, as generated
    ids (`#1`) are the only ones that start with a single `#`."""
    return pc.if_else(pc.starts_with(ids, "#"), pc.binary_join_element_wise("#", ids, ""), ids)


def _float(value: Any) -> float | None:
    if isinstance(value, Mapping):
        value = value.get("value", value.get("@value"))
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("value", value.get("@value"))
    return None if value is None else str(value)


@dataclass
class _Geometry:
    """What `Harmoniser._geometry` makes of a batch's geometries, aligned with its records."""

    geometry: np.ndarray | Points
    geometry_3d: np.ndarray | None
    """None when no record has 3D."""
    source_crs: str | None
    bounds: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))
    """xmin, ymin, xmax, ymax of each 2D geometry (NaN where it has none)."""
    footprint_area: np.ndarray | None = None
    volume: np.ndarray | None = None
    surface_owner: np.ndarray | None = None
    surface_types: list[str] = field(default_factory=list)
    surface_polygons: np.ndarray | None = None
    surface_area: np.ndarray | None = None
    surface_tilt: np.ndarray | None = None
    surface_azimuth: np.ndarray | None = None
    height: np.ndarray | None = None

    def height_at(self, i: int) -> float | None:
        """Height of record i from its 3D geometry (top minus bottom), where it has one."""
        h = None if self.height is None else self.height[i]
        return None if h is None or np.isnan(h) else float(h)


FOOTPRINT_AREA = "citypipe:footprint_area_m2"
VOLUME = "citypipe:volume_m3"


def _extras(geo: _Geometry, notes: list[str | None]) -> list[dict[str, Any] | None]:
    """What citypipe adds to a record's properties: a repair note, a 3D object's measures."""
    out: list[dict[str, Any] | None] = (
        [{REPAIR_NOTE: w} if w else None for w in notes] if any(notes) else [None] * len(notes)
    )
    for key, values in ((FOOTPRINT_AREA, geo.footprint_area), (VOLUME, geo.volume)):
        if values is None:
            continue
        for i in np.flatnonzero(~np.isnan(values)):
            out[i] = {**(out[i] or {}), key: round(float(values[i]), 3)}
    return out


def _metres(
    crs: pyproj.CRS, axis_order: str, geometries: np.ndarray
) -> Callable[[np.ndarray], np.ndarray] | None:
    """A `shapely.transform` function from `crs` to metres east and north: the CRS itself where
    it is projected, else the UTM zone of the geometries' centre; None where that centre is not
    on the Earth (coordinates that are not what the CRS says: the range check rejects them)."""
    h = crs.sub_crs_list[0] if crs.is_compound else crs
    swap = axis_order == "authority" and h.axis_info[0].direction in ("north", "south")
    tr = None
    if not h.is_projected:
        x0, y0, x1, y1 = shapely.total_bounds(geometries)
        lon, lat = ((y0 + y1) / 2, (x0 + x1) / 2) if swap else ((x0 + x1) / 2, (y0 + y1) / 2)
        if not np.isfinite([lon, lat]).all():  # no geometry left to measure
            return None
        zone = pyproj.database.query_utm_crs_info(
            datum_name="WGS 84", area_of_interest=pyproj.aoi.AreaOfInterest(lon, lat, lon, lat)
        )
        if not zone:
            return None
        tr = pyproj.Transformer.from_crs(h, pyproj.CRS.from_epsg(zone[0].code), always_xy=True)

    def apply(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        x, y = (coords[:, 1], coords[:, 0]) if swap else (coords[:, 0], coords[:, 1])
        out[:, 0], out[:, 1] = tr.transform(x, y) if tr else (x, y)
        return out

    return apply


@lru_cache(maxsize=64)
def _lowercase_index(keys: frozenset[str]) -> dict[str, str]:
    """Lower-cased attribute name -> a batch's own spelling (the first in sorted order); the
    batches of one source mostly share their attribute names, so it is made once for them."""
    lower: dict[str, str] = {}
    for k in sorted(keys):
        lower.setdefault(k.lower(), k)
    return lower


def _metres_apart(geometries: np.ndarray | Points, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Geodesic distance from each lon/lat position to the nearest point of its geometry."""
    if isinstance(geometries, Points):
        x, y = geometries.xy.T
        return _GEOD.inv(x, y, lon, lat)[2]
    ends = shapely.shortest_line(geometries, shapely.points(lon, lat))
    ends = shapely.get_coordinates(ends).reshape(-1, 4)
    return _GEOD.inv(ends[:, 0], ends[:, 1], ends[:, 2], ends[:, 3])[2]


def _positioned(geometries: np.ndarray | Points) -> np.ndarray:
    """Which records have a geometry with a position (neither missing nor empty)."""
    if isinstance(geometries, Points):
        return geometries.present
    return ~shapely.is_missing(geometries) & ~shapely.is_empty(geometries)


def _has_coordinates(batch: SourceBatch) -> bool:
    """Whether any record of the batch has a position: a footprint, a 3D geometry or surfaces."""
    if _positioned(batch.geometries).any():
        return True
    solids3d = batch.columns.get("geometry_3d")
    if solids3d is not None and _positioned(np.asarray(solids3d, dtype=object)).any():
        return True
    surfaces = batch.columns.get("surfaces")
    return surfaces is not None and any(surfaces)


@dataclass
class HarmonisedBatch:
    features: pa.RecordBatch
    rejects: list[dict[str, Any]]
    """The run's rejects: the records harmonise cannot guarantee (validation rejects none)."""
    surfaces: pa.RecordBatch | None = None
    """Rows of the surfaces table, for the features that have semantic surfaces."""
    warnings: Counter[str] = field(default_factory=Counter)
    """Problems of kept features worth a user's look (counted per message), e.g. positions
    that contradict the record's own latitude / longitude."""


@dataclass
class Harmoniser:
    """Harmonises the batches of one ingest run; remembers ids across batches to keep them unique."""

    source: str
    source_format: str
    ingested_at: datetime
    run_id: str = ""
    theme: str | None = None
    crs: str | None = None
    axis_order: AxisOrder | None = None
    """Overrides the connector's reading of the coordinates' axis order (`--axis-order`)."""
    fields: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    """The file (or address) read, named when the source is refused."""
    max_value_bytes: int = field(default_factory=max_value_bytes)
    """Text values longer than this (UTF-8 bytes) are cut, with a note (pipelines.properties)."""
    crss: dict[str, pyproj.CRS] = field(default_factory=dict, init=False)
    """The CRSs the source's coordinates were read in (one, bar a source that declares several),
    by definition: what the heights of `geometry_3d` refer to (`crs.crs_3d`)."""
    _seen: SeenIds = field(default_factory=SeenIds, repr=False)
    _records: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.theme is not None and self.theme not in schemas.themes():
            raise ConfigurationError(
                f"unknown theme {self.theme!r}; themes: {', '.join(schemas.themes())}"
            )
        if self.crs is not None:
            try:
                crslib.resolve(self.crs)
            except ConfigurationError as e:
                raise ConfigurationError(f"--crs: {e}") from None
        self._mappings = {
            col: (self.fields[col],) if col in self.fields else names
            for col, names in schemas.mappings().items()
        }
        self._schema = schemas.feature_schema().arrow

    # -- steps ---------------------------------------------------------------------------

    def _mapped_keys(self, column: str, keys: frozenset[str]) -> list[str]:
        """The attributes of a batch that fill `column`, in order of preference."""
        names = self._mappings.get(column, ())
        lower = _lowercase_index(keys)
        exact = [n for n in names if n in keys]
        loose = [lower[n.lower()] for n in names if n.lower() in lower]
        return list(dict.fromkeys(exact + loose))

    @staticmethod
    def _first_filled(props: Mapping[str, Any], keys: list[str]) -> Any:
        for k in keys:
            v = props.get(k)
            if v is not None and v != "":
                return v
        return None

    def _feature_ids(self, source_ids: list[str | None]) -> tuple[pa.Array, list[str | None]]:
        """feature_ids, and a reason to reject where the source repeats an id.

        The source's id where it has one; else the record's number in the source (`#1`, `#2`
        ...), which an unchanged source, or a live feed that keeps its order, keeps across runs.
        Generated ids have a namespace of their own: a source's id that starts with `#` has
        it doubled (`##1`), so that no id of a source can be one given to another record.
        """
        first, n = self._records + 1, len(source_ids)
        self._records += n
        missing = source_ids.count(None)
        dups: list[str | None] = [None] * n
        if missing < n:
            own = [i for i, sid in enumerate(source_ids) if sid is not None] if missing else None
            for k in self._seen.add([source_ids[i] for i in own] if own else source_ids):
                i = own[k] if own else k
                dups[i] = f"duplicate id {source_ids[i]!r} in the source"
        prefix = f"{self.source}/"
        numbers = None
        if missing:  # numbers, which never repeat
            numbers = pa.array(np.arange(first, first + n)).cast(pa.string())
            numbers = pc.binary_join_element_wise(f"{prefix}#", numbers, "")
            if missing == n:
                return numbers, dups
        ids = pc.binary_join_element_wise(prefix, _own_ids(pa.array(source_ids, pa.string())), "")
        return (ids if numbers is None else pc.coalesce(ids, numbers)), dups

    def _position_conflicts(
        self,
        geoms: np.ndarray | Points,
        props: Sequence[Mapping[str, Any]],
        keys: frozenset[str],
        reasons: list[str | None],
    ) -> Iterator[tuple[int, str, str]]:
        """Records whose geometry lies far from the latitude / longitude they state themselves
        (attributes in schemas/mappings.yaml), with the message and the stated position: the
        sign of a wrong CRS or axis order that lands every point on the globe, just in the
        wrong place."""
        lat_keys, lon_keys = (
            self._mapped_keys("latitude", keys),
            self._mapped_keys("longitude", keys),
        )
        if not lat_keys or not lon_keys:
            return
        first = self._first_filled
        lat = np.array([_float(first(p, lat_keys)) for p in props], dtype=float)
        lon = np.array([_float(first(p, lon_keys)) for p in props], dtype=float)
        usable = (np.abs(lat) <= 90) & (np.abs(lon) <= 180) & _positioned(geoms)
        usable &= np.array([r is None for r in reasons])
        idx = np.flatnonzero(usable)
        if not len(idx):
            return
        far = _metres_apart(geoms[idx], lon[idx], lat[idx]) > POSITION_TOLERANCE_M
        if not far.any():
            return
        swapped = np.abs(lon[idx]) <= 90
        swapped[swapped] = (
            _metres_apart(geoms[idx][swapped], lat[idx][swapped], lon[idx][swapped])
            <= POSITION_TOLERANCE_M
        )
        for k in np.flatnonzero(far):
            hint = (
                "it matches them with the axes swapped: --axis-order fixes it"
                if swapped[k]
                else "the declared CRS or axis order may be wrong (--crs / --axis-order)"
            )
            i = int(idx[k])
            yield (
                i,
                (
                    f"geometry more than {POSITION_TOLERANCE_M:.0f} m from the latitude/longitude the "
                    f"record states; {hint}"
                ),
                f"{lat[i]}, {lon[i]}",
            )

    def _source_crs(self, batch: SourceBatch) -> tuple[pyproj.CRS | None, bool]:
        """The CRS of the batch's coordinates, and whether the source declares it (else its
        format defines it). Refuses the whole source where neither names a CRS pyproj knows
        and there are coordinates to place: one decision for the source, never a guess."""
        declared = self.crs or batch.crs
        try:
            if declared is not None:
                return crslib.resolve(declared), True
            if batch.default_crs is not None:
                return crslib.resolve(batch.default_crs), False
            why = (
                f"no CRS is declared, and {self.source_format} coordinates without one are not "
                "longitude/latitude"
            )
        except ConfigurationError as e:
            why = str(e)
        if not _has_coordinates(batch):
            return None, False
        raise UnknownCRS(
            f"{self.path or f'source {self.source!r}'}: {why}; pass --crs with the CRS the "
            "coordinates are in (e.g. --crs EPSG:25832), or crs: in its catalog entry"
        )

    def _geometry(
        self, batch: SourceBatch, reasons: list[str | None], notes: list[str | None]
    ) -> _Geometry:
        """2D CRS84 geometries, 3D ones where the source has Z, the source CRS label, and for
        3D objects their measures and semantic surfaces."""
        crs, declared = self._source_crs(batch)
        if crs is None:  # nothing to place
            n = len(batch)
            return _Geometry(np.full(n, None, object), None, None, np.full((n, 4), np.nan))
        self.crss.setdefault(crs.srs, crs)
        label = crslib.label(crs)
        axis = self.axis_order or batch.axis_order
        to_crs84 = None if crslib.is_lonlat(crs, axis) else crslib.to_crs84(crs, axis)
        if isinstance(batch.geometries, Points):
            xy = self._points(batch.geometries, to_crs84, label, reasons)
            out = _Geometry(Points(xy), None, label, np.hstack([xy, xy]))
        else:
            out = self._shapes(batch, crs, to_crs84, label, reasons, notes)
        # NaN (no geometry, or an empty one) is outside no range. The CRS is decided: what falls
        # outside is the records' data (or a wrong declaration), rejected with its reason
        outside = ((out.bounds[:, :2] < _LONLAT_MIN) | (out.bounds[:, 2:] > _LONLAT_MAX)).any(
            axis=1
        )
        if not outside.any():
            return out
        if (outside == _positioned(out.geometry)).all():
            # not one position is lon/lat: the batch is not in the CRS it is read in, and so
            # are its records without geometry of their own (a Building made of BuildingParts)
            outside = np.ones(len(batch), dtype=bool)
        why = (
            f"coordinates fall outside longitude/latitude when read as {label}; the declared "
            "CRS or axis order is wrong (--crs fixes it)"
            if declared
            else "coordinates fall outside longitude/latitude, which the source's format means "
            "when no CRS is declared; pass --crs with the CRS they are in (e.g. --crs EPSG:25832)"
        )
        for i in np.flatnonzero(outside):
            reasons[i] = reasons[i] or why
        return out

    @staticmethod
    def _points(
        points: Points,
        to_crs84: Callable[[np.ndarray], np.ndarray] | None,
        label: str,
        reasons: list[str | None],
    ) -> np.ndarray:
        """`_geometry` for Points: the lon/lat array, NaN where a record has none or is rejected
        for coordinates that are not finite, not on any Earth, or not transformable."""
        xy, present = points.xy, points.present
        bad = present.copy()
        bad[present] = coordinates.out_of_bounds(xy[present])
        if bad.any() or to_crs84 is not None:
            xy = xy.copy()
        for i in np.flatnonzero(bad).tolist():
            reasons[i] = reasons[i] or f"geometry has {coordinates.describe_position(xy[i])}"
            xy[i] = np.nan
        if to_crs84 is not None:
            ok = present & ~bad
            xy[ok] = to_crs84(xy[ok])
            for i in np.flatnonzero(ok & ~np.isfinite(xy).all(axis=1)).tolist():
                reasons[i] = reasons[i] or _untransformable(label)
                xy[i] = np.nan
        return xy

    def _shapes(
        self,
        batch: SourceBatch,
        crs: Any,
        to_crs84: Callable[[np.ndarray], np.ndarray] | None,
        label: str,
        reasons: list[str | None],
        notes: list[str | None],
    ) -> _Geometry:
        """`_geometry` for shapely geometries: footprints of 3D objects, measures, CRS84, repairs.

        Coordinates that are not finite or not on any Earth are rejected first, before GEOS
        or PROJ sees them; a geometry GEOS still refuses is rejected on its own."""
        given = batch.columns.get("geometry_3d")
        surfaces = batch.columns.get("surfaces")
        geoms = np.array(batch.geometries, dtype=object)  # a copy: records are rejected in it
        src3d = geoms if given is None else np.array(given, dtype=object)
        if surfaces is not None:
            surfaces = list(surfaces)
        for i, why in self._unplaceable(geoms, src3d, surfaces).items():
            reasons[i] = reasons[i] or f"geometry has {why}"
            geoms[i] = src3d[i] = None
            if surfaces is not None:
                surfaces[i] = None
        n = len(geoms)
        objects3d = given is not None or surfaces is not None
        if objects3d:
            missing = np.flatnonzero(shapely.is_missing(geoms))
            if len(missing):  # no explicit footprint: from the ground surfaces or the solid
                ground = [surfaces[i] if surfaces else None for i in missing]
                found, failed = _by_record(solids.footprints, src3d[missing], ground)
                geoms[missing] = found
                for k, why in failed.items():
                    reasons[missing[k]] = reasons[missing[k]] or f"no footprint can be made: {why}"
        has_z = shapely.has_z(src3d)
        geoms3d = np.full(n, None, object)
        geoms3d[has_z] = src3d[has_z]
        out = _Geometry(geoms, geoms3d, label)
        if crs is not None and objects3d:  # 3D objects; a point or line with Z has no volume
            self._measure(out, batch, crs, surfaces)
        if to_crs84 is not None:
            geoms = shapely.transform(geoms, to_crs84)
            # solids and their semantic surfaces share positions: one transform finds them all
            solids3d = src3d[has_z]
            surfaces3d = (
                out.surface_polygons if out.surface_polygons is not None else np.empty(0, object)
            )
            both = shapely.transform(
                np.concatenate([solids3d, surfaces3d]), to_crs84, include_z=True
            )
            geoms3d[has_z] = both[: len(solids3d)]
            if out.surface_polygons is not None:
                out.surface_polygons = both[len(solids3d) :]
            lost = coordinates.bad_geometries(geoms).keys()
            for i in lost | coordinates.bad_geometries(geoms3d).keys():
                reasons[i] = reasons[i] or _untransformable(label)
                geoms[i] = geoms3d[i] = None
        if shapely.has_z(geoms).any():
            geoms = shapely.force_2d(geoms)

        bounds = shapely.bounds(geoms)
        invalid = ~shapely.is_missing(geoms) & ~shapely.is_valid(geoms)
        if invalid.any():
            why = shapely.is_valid_reason(geoms[invalid])
            fixed, failed = _by_record(shapely.make_valid, geoms[invalid])
            for k, (i, g, w) in enumerate(zip(np.flatnonzero(invalid), fixed, why, strict=False)):
                if g is None or shapely.is_empty(g):
                    w = f"{w} ({failed[k]})" if k in failed else w
                    reasons[i] = reasons[i] or f"invalid geometry that cannot be repaired: {w}"
                else:  # after what the connector repaired, if anything
                    notes[i] = f"{notes[i]}; {w}" if notes[i] else w
            geoms[invalid] = fixed
            bounds[invalid] = shapely.bounds(fixed)
        out.geometry, out.bounds = geoms, bounds
        if not has_z.any():
            out.geometry_3d = None
        return out

    @staticmethod
    def _unplaceable(
        geoms: np.ndarray, src3d: np.ndarray, surfaces: list[Any] | None
    ) -> dict[int, str]:
        """Records with a coordinate that is NaN, infinite or beyond any Earth, in their
        geometry, 3D geometry or semantic surfaces, and the first such position."""
        found = coordinates.bad_geometries(geoms)
        if src3d is not geoms:
            found = {**coordinates.bad_geometries(src3d), **found}
        if surfaces is not None and any(surfaces):
            owner = [i for i, surf in enumerate(surfaces) for _ in surf or ()]
            polygons = np.array([p for surf in surfaces for _, p in surf or ()], dtype=object)
            bad = coordinates.bad_geometries(polygons)
            found = {**{owner[k]: why for k, why in bad.items()}, **found}
        return found

    def _measure(self, out: _Geometry, batch: SourceBatch, crs: Any, surfaces: Any) -> None:
        """Footprint areas, volumes and surface measures, in metres (before leaving the source CRS)."""
        to_metres = _metres(crs, self.axis_order or batch.axis_order, out.geometry)
        if to_metres is None:
            return
        footprint = shapely.transform(out.geometry, to_metres)
        solid = shapely.transform(out.geometry_3d, to_metres, include_z=True)
        out.footprint_area = np.where(
            shapely.is_missing(footprint), np.nan, shapely.area(footprint)
        )
        out.volume = solids.volumes(solid)
        out.height = solids.heights(solid)
        if surfaces is None:
            return
        owners = [(i, t, p) for i, surf in enumerate(surfaces) for t, p in surf or ()]
        out.surface_owner = np.array([o[0] for o in owners], dtype=np.int64)
        out.surface_types = [o[1] for o in owners]
        out.surface_polygons = np.array([o[2] for o in owners], dtype=object)
        metric = shapely.transform(out.surface_polygons, to_metres, include_z=True)
        out.surface_area, out.surface_tilt, out.surface_azimuth = solids.surface_measures(
            metric, out.surface_types
        )

    # -- the batch -----------------------------------------------------------------------

    def harmonise(self, batch: SourceBatch) -> HarmonisedBatch:
        n = len(batch)
        reasons: list[str | None] = list(batch.errors) if batch.errors is not None else [None] * n
        notes: list[str | None] = list(batch.repairs) if batch.repairs is not None else [None] * n
        geo = self._geometry(batch, reasons, notes)
        geoms, geoms3d, source_crs = geo.geometry, geo.geometry_3d, geo.source_crs
        extras = _extras(geo, notes)
        batch_keys = frozenset().union(*batch.properties)
        warnings: Counter[str] = Counter()
        for i, why, stated in self._position_conflicts(
            geoms, batch.properties, batch_keys, reasons
        ):
            extras[i] = {**(extras[i] or {}), POSITION_NOTE: f"{why} ({stated})"}
            warnings[why] += 1
        properties, unwritable = json_texts(
            [{**p, **e} if e else p for p, e in zip(batch.properties, extras, strict=False)]
            if any(extras)
            else batch.properties,
            self.max_value_bytes,
        )
        for i, why in unwritable.items():
            reasons[i] = reasons[i] or why

        source_ids = list(batch.source_ids)
        if "source_id" in self.fields:  # the catalog names the attribute that identifies records
            key = [self.fields["source_id"]]
            source_ids = [
                sid if sid is not None else _text(self._first_filled(p, key))
                for sid, p in zip(source_ids, batch.properties, strict=False)
            ]
        feature_ids, dups = self._feature_ids(source_ids)
        failed = [r or d for r, d in zip(reasons, dups, strict=False)] if any(dups) else reasons
        keep: Sequence[int]
        if any(failed):
            keep = [i for i, why in enumerate(failed) if not why]
            rejects = [
                self.reject(source_ids[i], why, batch.records[i])
                for i, why in enumerate(failed)
                if why
            ]
        else:
            keep, rejects = range(n), []

        m, all_kept = len(keep), len(keep) == n

        def kept(values: Sequence[Any]) -> list[Any]:
            return list(values) if all_kept else [values[i] for i in keep]

        props = kept(batch.properties)
        classes = kept(batch.feature_classes) if batch.feature_classes else [None] * m
        themes_of = {c: self.theme or schemas.class_theme(c) for c in set(classes)}

        def column(name: str, convert: Callable[[Any], Any]) -> list[Any] | None:
            """A typed column's values: what the connector knows, else the mapped attribute;
            None when the batch has nothing for it."""
            given = batch.columns.get(name)
            keys = self._mapped_keys(name, batch_keys) if name in self._mappings else []
            if given is None and not keys:
                return None
            values = kept(given) if given is not None else [None] * m
            if keys:
                first = self._first_filled
                values = [
                    v if v is not None else first(p, keys)
                    for v, p in zip(values, props, strict=False)
                ]
            return [None if v is None else convert(v) for v in values]

        parents = column("parent_source_id", str)
        theme = next(iter(themes_of.values())) if len(themes_of) == 1 else None
        rows: dict[str, Any] = {  # lists, Arrow arrays, or None for a column of nulls
            "feature_id": feature_ids if all_kept else feature_ids.take(pa.array(keep, pa.int64())),
            "source_id": kept(source_ids),
            "theme": [themes_of[c] for c in classes]
            if theme is None
            else pa.repeat(pa.scalar(theme), m),
            "feature_class": classes if classes.count(None) < m else None,
            "parent_id": None
            if parents is None
            else pc.binary_join_element_wise(
                f"{self.source}/", _own_ids(pa.array(parents, pa.string())), ""
            ),
            "name": column("name", _text),
            "height_m": column("height_m", _float),
            "lod": column("lod", _text),
            "observed_at": column("observed_at", _timestamp),
            "properties": properties if all_kept else properties.take(pa.array(keep, pa.int64())),
        }
        if geo.height is not None:  # 3D objects without a stated height: from their geometry
            rows["height_m"] = [
                h if h is not None else geo.height_at(i)
                for h, i in zip(rows["height_m"] or [None] * m, keep, strict=False)
            ]
        idx = slice(None) if all_kept else np.asarray(keep, dtype=np.int64)
        rows["geometry"] = wkb.to_wkb_2d(geoms[idx])
        if geoms3d is not None:
            rows["geometry_3d"] = shapely.to_wkb(geoms3d[idx], output_dimension=3)
        bounds = geo.bounds[idx]
        no_box = np.isnan(bounds).any(axis=1)
        rows["bbox"] = pa.StructArray.from_arrays(
            [pa.array(c) for c in _outwards_f32(bounds).T],
            fields=list(schemas.BBOX_TYPE),
            mask=pa.array(no_box) if no_box.any() else None,
        )
        constant = {  # the same for every row of the batch
            "source": self.source,
            "source_crs": source_crs,
            "source_format": self.source_format,
            "ingested_at": self.ingested_at,
            "run_id": self.run_id,
        }
        columns = []
        for f in self._schema:
            value = rows.get(f.name)
            if f.name in constant:
                columns.append(pa.repeat(pa.scalar(constant[f.name], type=f.type), m))
            elif value is None:
                columns.append(pa.nulls(m, f.type))
            else:
                columns.append(
                    value if isinstance(value, pa.Array) else pa.array(value, type=f.type)
                )
        features = pa.RecordBatch.from_arrays(columns, schema=self._schema)
        surfaces = self._surfaces(geo, keep, feature_ids)
        return HarmonisedBatch(features, rejects, surfaces, warnings)

    def _surfaces(
        self, geo: _Geometry, keep: Sequence[int], feature_ids: pa.Array
    ) -> pa.RecordBatch | None:
        """Rows of the surfaces table for the kept features' semantic surfaces."""
        if geo.surface_owner is None or not len(geo.surface_owner):
            return None
        kept = np.isin(geo.surface_owner, keep)
        rows = np.flatnonzero(kept)

        def floats(values: np.ndarray | None) -> pa.Array:
            return pa.array(values[rows], type=pa.float64(), from_pandas=True)

        columns = {
            "feature_id": feature_ids.take(geo.surface_owner[rows]),
            "source": pa.repeat(pa.scalar(self.source), len(rows)),
            "surface_type": pa.array([geo.surface_types[i] for i in rows]),
            "area_m2": floats(geo.surface_area),
            "tilt_deg": floats(geo.surface_tilt),
            "azimuth_deg": floats(geo.surface_azimuth),
            "geometry_3d": pa.array(shapely.to_wkb(geo.surface_polygons[rows], output_dimension=3)),
        }
        table = schemas.feature_schema().table("surfaces").arrow
        return pa.RecordBatch.from_arrays(
            [columns[f.name].cast(f.type) for f in table], schema=table
        )

    def reject(self, source_id: str | None, reason: str, record: Any) -> dict[str, Any]:
        """A row of the rejects table."""
        return {
            "source": self.source,
            "source_id": source_id,
            "reason": reason,
            "record": record_text(record),
            "ingested_at": self.ingested_at,
            "run_id": self.run_id,
        }


def _outwards_f32(bounds: np.ndarray) -> np.ndarray:
    """(xmin, ymin, xmax, ymax) rows in float32, rounded outwards so each box still holds its
    geometry (a float32 nearest to a minimum may lie above it)."""
    box = bounds.astype(np.float32)
    low, high = box[:, :2], box[:, 2:]
    np.copyto(low, np.nextafter(low, np.float32(-np.inf)), where=low > bounds[:, :2])
    np.copyto(high, np.nextafter(high, np.float32(np.inf)), where=high < bounds[:, 2:])
    return box
