"""The contract every connector fulfils: recognise its content, describe it, read it in batches.

A connector knows one format or protocol and nothing of the lake: it yields `SourceBatch`es
(the source table, record by record as the source gives them, in the source's CRS) and the
pipeline does the rest. Adding a format means writing one module with one `Connector` subclass
and one line in `connectors/registry.py` (or an entry point in the `citypipe.connectors` group).
"""

from __future__ import annotations

import io
import os
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, NamedTuple
from urllib.parse import SplitResult

import numpy as np
import shapely
from shapely import GeometryType

from citypipe.connectors.http import HttpClient
from citypipe.connectors.ragged import offsets
from citypipe.geo.errors import ConfigurationError
from citypipe.geo.types import AxisOrder, Points

__all__ = [
    "Ahead",
    "Connector",
    "FileConnector",
    "FlatFaces",
    "LayerInfo",
    "Observation",
    "Query",
    "ServiceConnector",
    "Solids",
    "SourceBatch",
    "SourceInfo",
    "Surface",
    "make_surface",
]


@dataclass(frozen=True)
class LayerInfo:
    """One feature type (WFS) or collection (OGC API) a service offers, as it describes it."""

    name: str
    title: str | None = None
    crs: tuple[str, ...] = ()
    """The CRSs the server can answer in, its default (or storage CRS) first."""
    formats: tuple[str, ...] = ()
    """Output formats (media types or the service's own names)."""
    bbox: tuple[float, float, float, float] | None = None
    """Extent in OGC:CRS84 (longitude, latitude)."""
    count: int | None = None


@dataclass(frozen=True)
class Query:
    """What the user asks a service for: `citypipe ingest URL` flags or a catalog entry's keys.

    None leaves the choice to the connector and the server (the service's one layer, its
    default CRS, every feature, its preferred page size)."""

    layer: str | None = None
    """Feature type or collection name."""
    crs: str | None = None
    """The CRS to ask the server for (one it lists)."""
    bbox: tuple[float, float, float, float] | None = None
    """Only features intersecting this box, in OGC:CRS84 (lon_min, lat_min, lon_max, lat_max)."""
    filter: str | None = None
    """A CQL2 text expression on the features' properties."""
    datetime: str | None = None
    """An RFC 3339 instant or interval (`a/b`, `../b`), where the protocol has one."""
    page_size: int | None = None
    """Features asked for per request."""
    since: str | None = None
    """An incremental harvest: only what changed at or after this RFC 3339 instant, asked as
    the protocol can (`ServiceConnector.incremental`); set by the pipeline, not the user."""


class Observation(NamedTuple):
    """One measured value of a record, as the source states it: NGSI's Properties with a
    number or an observedAt (pollutant concentrations, traffic intensity, free parking spots).

    The pipeline gives it the feature_id of batch record `record` and appends it to the lake's
    observations table (schemas/feature-v1.yaml, `observations`)."""

    record: int
    """Index of the record in its batch."""
    attribute: str
    """The attribute's name as the source's context resolves it (short name)."""
    value: float | None
    """The value where it is a number (booleans as 0 / 1)."""
    value_text: str | None
    """The value where it is not a number (text, a vocabulary term), else None."""
    unit_code: str | None
    """UN/CEFACT unit code (NGSI-LD unitCode), as stated."""
    observed_at: str | None
    """When the value was observed, the source's text (ISO 8601); None: the record's own time."""
    dataset_id: str | None = None
    """NGSI-LD datasetId: one attribute measured by several instruments or methods."""


@dataclass(frozen=True)
class SourceInfo:
    """What a source is, as far as can be told without harmonising it."""

    format: str
    version: str | None = None
    crs: str | None = None
    layers: tuple[str, ...] = ()
    layer_info: tuple[LayerInfo, ...] = ()
    """For a service: each layer it offers, described (`citypipe inspect URL` lists them)."""
    count: int | None = None
    declared_count: int | None = None
    licence: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    """More facts of the format that `citypipe inspect` shows (a GeoParquet file's covering, row
    groups, sort order)."""

    @property
    def label(self) -> str:
        """The standard and its version, as written to `source_format`."""
        return f"{self.format} {self.version}" if self.version else self.format


class Surface(NamedTuple):
    """A semantic surface of a 3D object: a roof, a wall, the ground ..."""

    type: str
    """The semantic type as the source names it, e.g. "RoofSurface"."""
    polygon: shapely.Polygon
    """With Z, in the batch's `crs`."""


make_surface = partial(tuple.__new__, Surface)
"""A `Surface` of a (type, polygon) pair, made in C (`Surface(...)` is a Python call per
surface): what the connectors and the pipeline make their lists' surfaces with."""


class FlatFaces(NamedTuple):
    """The polygons of an array of geometries as flat arrays, exactly as GEOS holds them (rings
    closed): what a connector that built the geometries from such arrays hands on, so that the
    pipeline measures, projects and transforms them without asking GEOS for copies."""

    coords: np.ndarray
    """(n, 3) as written: NaN Z for 2D faces."""
    ring: np.ndarray
    """The ring of each coordinate row (rings numbered over all faces, in order)."""
    polygon: np.ndarray
    """The face of each ring."""
    owner: np.ndarray
    """The geometry of each face, ascending."""
    rows: np.ndarray | None = None
    """The row of each position in the pool it was read from, where the connector knows it:
    the pool's first rows are the positions it gives `Connector.ahead` (a CityJSON document's
    vertices), through which the CRS84 thread reads those corners' moved positions."""

    def owned(self, count: int) -> np.ndarray:
        """Which of `count` geometries own a face."""
        return np.bincount(self.owner, minlength=count) > 0

    def multipolygons(self, count: int) -> np.ndarray:
        """Each of `count` geometries as the shapely MultiPolygon of its faces, None for one
        without faces: as `shapely.from_ragged_array` builds them from these arrays."""
        nesting = (
            offsets(np.bincount(self.ring, minlength=len(self.polygon))),
            offsets(np.bincount(self.polygon, minlength=len(self.owner))),
            offsets(np.bincount(self.owner, minlength=count)),
        )
        out = np.asarray(shapely.from_ragged_array(GeometryType.MULTIPOLYGON, self.coords, nesting))
        out[~self.owned(count)] = None
        return out


@dataclass(frozen=True, slots=True)
class Solids:
    """The 3D part of a batch, aligned with its records."""

    geometry_3d: np.ndarray | Sequence[shapely.Geometry | None]
    """Shapely geometry with Z in the batch's `crs` (the richest LoD), or None; None too for
    a record whose geometry is the MultiPolygon Z of its `faces`, left unbuilt (`built`)."""
    surfaces: Sequence[list[Surface] | None] | None = None
    """Each record's semantic surfaces, or None (also for the whole batch: none known)."""
    surface_faces: Sequence[np.ndarray | None] | None = None
    """Where each record's semantic surfaces are faces of its `geometry_3d` as they are: which
    of its polygons (in `shapely.get_parts` order) each surface is, or None for the whole batch.
    The pipeline then takes the faces to CRS84 and measures them once, with the solid."""
    faces: FlatFaces | None = None
    """The polygons of `geometry_3d` (owned by its rows), where the connector has them as flat
    arrays; None: the pipeline reads them from the geometries."""
    outlines: bool = True
    """Whether footprints of several `faces` may be traced from their outline edges (the areas
    of GEOS's coverage unions, their rings started and turned otherwise); False keeps the
    unions (CityGML's footprints, as they have always been written)."""

    def built(self) -> Solids:
        """These solids with the geometries left unbuilt as their faces built as shapely ones."""
        if self.faces is None:
            return self
        made = np.array(self.geometry_3d, dtype=object)
        unbuilt = self.faces.owned(len(made)) & shapely.is_missing(made)
        if unbuilt.any():
            made[unbuilt] = self.faces.multipolygons(len(made))[unbuilt]
        return replace(self, geometry_3d=made)


@dataclass(slots=True)
class SourceBatch:
    """A slice of the source table: records as read, before harmonisation.

    All sequences are aligned, one entry per record. `geometries` holds shapely geometries
    (or None), or `Points`, in `crs` with the axes in `axis_order`; `records` the records as
    read (dicts, text), looked at only when a record is rejected, so it may be a lazy sequence.
    `errors` says why a record could not be read (it then goes to rejects); `repairs` what the
    connector mended in its geometry (closed rings, dropped polygons: the record's
    `citypipe:geometry_repaired` note).

    `name`, `height_m`, `lod` and `observed_at` are what the connector already knows for the
    schema columns of the same name (values as the source gives them, read as the column's
    type; a record's None leaves the column to the mapped attributes), `parent_source_id` the
    parent's id in the source (a BuildingPart's Building); None when the batch has none.
    `observations` holds the records' measured values (time series sources: NGSI).

    `solids` holds 3D objects. For them `geometries` is the explicit footprint where the source
    has one (LoD0 footprint), else None: the pipeline then derives it from the ground surfaces
    or the projection of the 3D geometry.

    `crs` is what the source declares (None: nothing), `default_crs` what its format defines
    for a source that declares nothing: `CRS84` where the format's coordinates are lon/lat by
    definition (GeoJSON, JSON-FG, CSV longitude/latitude columns), else None. A batch with
    coordinates and neither (nor `--crs`) refuses the whole source, as does a CRS pyproj does
    not know: citypipe never guesses where coordinates are.
    """

    source_ids: Sequence[str | None]
    geometries: np.ndarray | Points
    properties: Sequence[Mapping[str, Any]]
    records: Sequence[Any]
    crs: str | None
    axis_order: AxisOrder = "xy"
    feature_classes: Sequence[str | None] | None = None
    name: Sequence[Any] | None = None
    height_m: Sequence[Any] | None = None
    lod: Sequence[str | None] | None = None
    observed_at: Sequence[Any] | None = None
    parent_source_id: Sequence[str | None] | None = None
    solids: Solids | None = None
    errors: Sequence[str | None] | None = None
    default_crs: str | None = None
    repairs: Sequence[str | None] | None = None
    observations: Sequence[Observation] = ()
    warnings: Mapping[str, int] | None = None
    """Problems of the batch worth a user's look that keep its records (an NGSI-LD @context
    that cannot be resolved offline), each with the number of records it concerns."""

    def __len__(self) -> int:
        return len(self.source_ids)

    def warned(self, why: str) -> SourceBatch:
        """This batch with the warning `why`, concerning all its records."""
        return replace(self, warnings={**(self.warnings or {}), why: len(self)})


class Ahead(NamedTuple):
    """Positions a read will place, known before it reads its first record (a CityJSON
    document's shared vertices): the pipeline may take them to CRS84 while the read goes on."""

    xyz: np.ndarray
    """(n, 3), each as the records' geometries will hold it; rows that are not positions too."""
    crs: str | None
    """The CRS the batches will declare (`SourceBatch.crs`)."""
    axis_order: AxisOrder


class Connector(ABC):
    """One format or protocol: describes its source, then reads it in batches.

    Subclasses set `name` and `title`, derive from `FileConnector` or `ServiceConnector`
    (which says how the connector is chosen for a location) and implement `inspect` and `read`.
    """

    name: ClassVar[str]
    """Registry key and the `format:` value of a catalog entry, e.g. "geojson"."""
    title: ClassVar[str]
    """Human name of the standard, e.g. "GeoJSON"."""
    known_options: ClassVar[frozenset[str]] = frozenset()
    """The options the connector takes (a catalog entry's `options:`; its module says what
    each sets): any other is refused, naming these, before anything is read (a misspelt
    `delimter` would otherwise be ignored without a word)."""

    def __init__(self, location: str | Path, **options: Any) -> None:
        self.location = str(location)
        """The file or URL read: what messages and the `sources` view name."""
        unknown = sorted(set(options) - self.known_options)
        if unknown:
            known = ", ".join(sorted(self.known_options)) or "none"
            raise ConfigurationError(
                f"{location}: unknown option(s) {', '.join(unknown)} for {self.title}; "
                f"its options: {known}"
            )
        self.options = options
        self.on_ahead: Callable[[Ahead], object] | None = None
        """Told the positions `ahead` gives as soon as the connector knows them, where that
        is before its parse ends (set by the pipeline before `inspect`, which moves them
        to CRS84 from then on); a connector that cannot tell them early never calls it."""

    @abstractmethod
    def inspect(self) -> SourceInfo:
        """Format, version, declared CRS, layers and the count the source declares; reads as
        little as it can."""

    @abstractmethod
    def read(self) -> Iterator[SourceBatch]:
        """The records, in batches of bounded size, so memory does not grow with the source."""

    def ahead(self) -> Ahead | None:
        """The positions `read` will place, where they are known before it (`Ahead`); None
        where not (most formats)."""
        return None


class _Input(io.BufferedReader):
    """A file a connector reads, whose offset the connector keeps when it is closed."""

    def __init__(self, path: Path, closed_at: Callable[[int], None]) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self._closed_at = closed_at

    def close(self) -> None:
        if not self.closed:
            with suppress(OSError, ValueError):
                self._closed_at(os.lseek(self.fileno(), 0, os.SEEK_CUR))
        super().close()


class FileConnector(Connector):
    """A format of local files, chosen by content: the registry asks every one to `sniff`."""

    def __init__(self, path: str | Path, **options: Any) -> None:
        super().__init__(path, **options)
        self.path = Path(path)
        self._inputs: weakref.WeakSet[_Input] = weakref.WeakSet()
        self._read_to: int | None = None

    def open_input(self) -> BinaryIO:
        """The file, opened for reading through this connector, so that `bytes_read` can tell
        how far the reading is (the progress bar asks it from another thread)."""
        f = _Input(self.path, self._closed_at)
        self._inputs.add(f)
        return f

    def _closed_at(self, offset: int) -> None:
        self._read_to = max(self._read_to or 0, offset)

    def bytes_read(self) -> int | None:
        """How far into the file the reading got: the furthest offset of the files opened with
        `open_input` (buffered: up to a buffer ahead); None before any was opened."""
        offsets = [self._read_to] if self._read_to is not None else []
        for f in list(self._inputs):
            with suppress(OSError, ValueError):  # closed meanwhile
                offsets.append(os.lseek(f.fileno(), 0, os.SEEK_CUR))
        return max(offsets, default=None)

    @classmethod
    @abstractmethod
    def sniff(cls, head: bytes) -> float:
        """How sure this connector is (0 to 1) that content starting with `head` is its format.

        Raise `NotFeatureData` when the content is of this family but holds no features.
        """


class ServiceConnector(Connector):
    """A web service, chosen by its URL (with the query parameters the user gave), never by
    fetching it to guess. Every request goes through `self.client`, the shared HTTP client."""

    incremental: ClassVar[str] = ""
    """How the protocol asks for what changed since an instant (`Query.since`), as the README
    states it; "" where it cannot, and an incremental harvest is refused."""

    def __init__(
        self, url: str, client: HttpClient | None = None, query: Query | None = None, **options: Any
    ) -> None:
        super().__init__(url, **options)
        self.url = url
        self.client = client or HttpClient()
        self.query = query or Query()

    @classmethod
    @abstractmethod
    def accepts(cls, url: SplitResult) -> float:
        """How sure this connector is (0 to 1) that `url` is an address of its protocol."""
