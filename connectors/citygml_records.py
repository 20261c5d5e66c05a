"""The records a CityGML batch has read, and the SourceBatches made of them.

A `Record` is one CityObject as read: its properties, and its geometry as polygon handles
until the batch is complete. Then its polygons are built (gml_polygons), the records that use
a polygon which could not be built, or none that is left after the ring repair, get the reason,
and the records become one SourceBatch per CRS. A reject's XML is serialised only when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from itertools import chain, islice
from operator import attrgetter, itemgetter
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import shapely
from lxml import etree

from citypipe.connectors import rings
from citypipe.connectors.base import Solids, SourceBatch, make_surface
from citypipe.connectors.citygml_header import model_members
from citypipe.connectors.gml import Parts
from citypipe.connectors.gml_compiled import compiled
from citypipe.connectors.gml_polygons import Built, flattened, multipolygons, oriented
from citypipe.connectors.gml_polygons import faces as gml_faces
from citypipe.connectors.gml_xlinks import Ref
from citypipe.connectors.json_properties import JSONProperties
from citypipe.geo.crs import axis_order
from citypipe.geo.surfaces import SurfaceColumns

__all__ = ["Document", "Record", "Reparsed", "batches", "element_xml"]


@dataclass(slots=True, eq=False, init=False)
class Record:
    """One CityObject as read; its geometry as polygon handles until the batch is built.

    Every thematic surface is read into one too, so it is made by a plain __init__: the one
    dataclass writes calls a factory per list (1.2 us against 0.33 us, 2,400 times on the NRW
    tile)."""

    locator: tuple[Any, str, str | int]
    source_id: str | None
    feature_class: str
    parent: Record | None
    index: int
    properties: dict[str, Any]
    crs: str | None
    name: str | None
    height: float | None
    lod: int | None
    geometries: list[tuple[int | None, int, Parts]]
    surfaces: list[tuple[str, int, list[Ref]]]
    footprint: list[Ref]
    errors: list[str]
    # chosen when the top-level object is complete
    polygons: list[int]
    lines: list[np.ndarray]
    points: list[np.ndarray]
    surface_handles: list[tuple[str, list[int]]]
    footprint_handles: list[int]

    def __init__(
        self,
        locator: tuple[Any, str, str | int],
        source_id: str | None,
        feature_class: str,
        parent: Record | None,
        index: int,
    ) -> None:
        self.locator, self.source_id, self.feature_class = locator, source_id, feature_class
        self.parent, self.index = parent, index
        self.properties = {}
        self.crs = self.name = self.height = self.lod = None
        self.geometries, self.surfaces, self.footprint, self.errors = [], [], [], []
        self.polygons, self.lines, self.points = [], [], []
        self.surface_handles, self.footprint_handles = [], []

    def __reduce__(self) -> tuple[Callable[..., Record], tuple[Any, ...]]:
        """Pickled as its slots' values, made again by one call (`_record`): the
        __getstate__ / __setstate__ dataclasses write look each field up and set it in Python,
        for each of a batch's 2,000 records (the NRW tile's batches: 40 -> 31 ms to pickle for
        the pipe, on the forked child's critical path, and less to load)."""
        return _record, _VALUES(self)


_VALUES = attrgetter(*Record.__slots__)
_SETTERS = tuple(getattr(Record, name).__set__ for name in Record.__slots__)


def _record(*values: Any) -> Record:
    """The Record whose slots hold `values` (in `__slots__` order)."""
    rec = Record.__new__(Record)
    for setter, value in zip(_SETTERS, values, strict=True):
        setter(rec, value)
    return rec


class Document:
    """The document parsed again as first parsed but with its whitespace, member by member,
    for the XML of the records a run rejects: the walk's parse drops the blanks between
    elements (fewer nodes to make, walk and free: PLATEAU's read 5-10 % less CPU, an ingest's
    peak 6-18 MB lower), which the rejects' XML keeps. Parsed only when a reject asks, once a
    run: the rejects come in document order, so each member is looked for after the last one
    asked (which is freed then); one asked for before it parses the document from the start."""

    def __init__(self, source: Callable[[], AbstractContextManager[BinaryIO]], depth: int) -> None:
        self._source = source
        self._depth = depth
        self._members: Iterator[tuple[Any, Any]] | None = None
        self._number = -1
        self._member: Any = None

    def member(self, number: int) -> Any:
        """The document's `number`-th CityModel member (model_members' order)."""
        if self._members is None or number < self._number:  # from the start again
            self._members, self._number, self._member = self._parse(), -1, None
        while self._number < number:
            passed = self._member
            try:
                _, self._member = next(self._members)
            except StopIteration:
                raise LookupError(f"no CityModel member {number}") from None
            self._number += 1
            if passed is not None:  # memory stays bounded: it and what came before it go
                model = passed.getparent()
                at, passed = model.index(passed), None
                del model[: at + 1]
        return self._member

    def _parse(self) -> Iterator[tuple[Any, Any]]:
        with self._source() as f:
            yield from model_members(f, huge_tree=True, depth=self._depth)


class Reparsed(Sequence[str]):
    """The records' XML, made from the `document` parsed again when a reject asks for it.

    A record is located as (CityModel member, tag, gml:id or n-th element of that tag in the
    member), the member by where it is (`located`: its number among the members read, then
    its place in each nested CityModel): holding the members alone keeps detaching them from
    the tree read cheap (lxml walks a detached subtree when something inside it is still
    referenced).
    """

    def __init__(
        self,
        document: Document,
        located: dict[Any, tuple[int, ...]],
        locators: list[tuple[Any, str, str | int]],
        gml_id: str,
    ) -> None:
        self._document = document
        self._located = located
        self._locators = locators
        self._gml_id = gml_id

    def __len__(self) -> int:
        return len(self._locators)

    def __getitem__(self, i: Any) -> Any:
        member, tag, key = self._locators[i]
        number, *places = self._located[member]
        elem = self._document.member(number)
        for place in places:
            elem = elem[place]
        return element_xml(elem, tag, key, self._gml_id)


def element_xml(member: Any, tag: str, key: str | int, gml_id: str) -> str:
    """The XML of a record's element in its CityModel `member`: the one of `tag` with gml:id
    `key`, or the `key`-th of that tag."""
    if isinstance(key, int):
        elem = next(islice(member.iter(tag), key, None))
    else:
        elem = next(e for e in member.iter(tag) if e.get(gml_id) == key)
    return etree.tostring(elem, encoding="unicode")


def batches(
    records: list[Record],
    built: Built,
    elements: Callable[[list[Any]], Sequence[str]],
    properties: JSONProperties | None = None,
) -> Iterator[SourceBatch]:
    """The records of a batch with their `built` polygons, as one SourceBatch per CRS;
    `elements` makes the records' XML from their locators; `properties` are the records' as
    text where they are not in the records (citygml_process.unpack)."""
    _reject_bad_polygons(records, built.reasons)
    repairs: list[str | None] = (
        _repairs(records, built) if built.repairs.any() else [None] * len(records)
    )
    groups: dict[str | None, list[int]] = {}
    for i, rec in enumerate(records):
        groups.setdefault(rec.crs, []).append(i)
    solid = [r.polygons for r in records]
    # a batch of one CRS hands its faces on as they were built, its polygonal geometries held
    # as those alone (`Solids.faces`: built where the pipeline reads GEOS's)
    faces = None if built.arrays is None or len(groups) > 1 else gml_faces(built.arrays, solid)
    if faces is None:
        geometry_3d = multipolygons(built.polygons, solid)
    else:
        geometry_3d = np.full(len(records), None, dtype=object)
    for i, rec in enumerate(records):
        if not rec.polygons and (rec.lines or rec.points):
            geometry_3d[i] = _curves_or_points(rec)
    footprints = np.full(len(records), None, dtype=object)  # polygons built only for some
    if any(r.footprint_handles for r in records):
        footprints = multipolygons(built.polygons, [r.footprint_handles for r in records])
    flat = _SurfaceHandles.of(records)
    surfaces = _surfaces(built, flat, _surface_faces(built.kept, records, flat))
    props = [r.properties for r in records] if properties is None else properties
    if len(groups) == 1:
        solids = Solids(geometry_3d, surfaces, _record_faces(surfaces), faces, outlines=False)
        yield _batch(records, props, next(iter(groups)), elements, footprints, solids, repairs)
        return
    for crs, rows in groups.items():
        taken = surfaces.take(np.asarray(rows))
        solids = Solids(geometry_3d[rows], taken, _record_faces(taken))
        picked = [records[i] for i in rows]
        yield _batch(
            picked, [props[i] for i in rows], crs, elements, footprints[rows], solids,
            [repairs[i] for i in rows],
        )  # fmt: skip


def _batch(
    records: list[Record],
    properties: Sequence[Mapping[str, Any]],
    crs: str | None,
    elements: Callable[[list[Any]], Sequence[str]],
    footprints: np.ndarray,
    solids: Solids,
    repairs: list[str | None],
) -> SourceBatch:
    return SourceBatch(
        source_ids=[r.source_id for r in records],
        geometries=footprints,
        properties=properties,
        records=elements([r.locator for r in records]),
        crs=crs,
        axis_order=axis_order(crs) if crs else "xy",
        feature_classes=[r.feature_class for r in records],
        name=[r.name for r in records],
        height_m=[r.height for r in records],
        lod=[None if r.lod is None else str(r.lod) for r in records],
        parent_source_id=[r.parent.source_id if r.parent else None for r in records],
        solids=solids,
        errors=["; ".join(r.errors) if r.errors else None for r in records],
        repairs=repairs,
    )


def _record_faces(surfaces: SurfaceColumns) -> Sequence[np.ndarray | None] | None:
    """`Solids.surface_faces`: each record's, where every surface of the batch is a face of
    its record's geometry, else None."""
    face = surfaces.face
    return surfaces.record_faces() if len(face) and (face >= 0).all() else None


def _curves_or_points(rec: Record) -> Any:
    if rec.lines:
        return shapely.multilinestrings([shapely.linestrings(c) for c in rec.lines])
    return shapely.multipoints(np.concatenate(rec.points))


class _SurfaceHandles(NamedTuple):
    """The semantic surfaces of a batch's records, flat: each one's polygon handle and type, and
    where each record's start (offsets), gathered once for the Surfaces and their faces."""

    handles: np.ndarray
    kinds: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, records: list[Record]) -> _SurfaceHandles:
        """Gathered by C-level iteration (map, chain, itemgetter; a surface's type repeated for
        each of its polygons by numpy), not a generator step per surface: PLATEAU's 650
        surfaces 0.15 -> 0.08 ms, Munich's 1,056 0.25 -> 0.13; the NRW tile's 2,358 surfaces
        of 2,401 polygons 0.54 -> 0.29, where a zip of every surface's pair and a repeat
        iterator per surface made the types; in one compiled pass where gml_walk built
        (gml_handles.pxi)."""
        if compiled is not None:
            return cls(*compiled.surface_handles(records))
        surfaces = [r.surface_handles for r in records]
        per_record = np.fromiter(map(len, surfaces), np.int64, len(records))
        pairs = list(chain.from_iterable(surfaces))
        types = np.array(list(map(itemgetter(0), pairs)), dtype=object)
        groups = list(map(itemgetter(1), pairs))
        sizes = np.fromiter(map(len, groups), np.int64, len(groups))
        handles = np.fromiter(chain.from_iterable(groups), np.int64, int(sizes.sum()))
        kinds = types if (sizes == 1).all() else np.repeat(types, sizes)  # a polygon each: most
        group_ends = np.concatenate([[0], np.cumsum(sizes)])
        return cls(handles, kinds, group_ends[np.concatenate([[0], np.cumsum(per_record)])])


def _surfaces(built: Built, flat: _SurfaceHandles, faces: np.ndarray | None) -> SurfaceColumns:
    """The batch's semantic surfaces as columns, made once (a record without any has None):
    their polygons taken in one call when asked for (the pipeline asks for none that are
    faces of their records' geometry); `faces`: which face of its record's 3D geometry each
    is (`_surface_faces`; None: none is, face -1)."""
    per_record = np.diff(flat.starts)
    face = np.full(len(flat.kinds), -1, np.int64) if faces is None else faces
    owner = np.repeat(np.arange(len(per_record)), per_record)
    polygons = lambda: oriented(built.polygons, flat.handles)
    return SurfaceColumns(per_record > 0, owner, flat.kinds, face, polygons, make_surface)


def _surface_faces(
    kept: np.ndarray, records: list[Record], flat: _SurfaceHandles
) -> np.ndarray | None:
    """Which of its record's 3D geometry's polygons each semantic surface is (in order), where
    every surface of the batch is one: the same polygon handle,
    turned the same way (a solid's surfaceMember is an xlink to the thematic surface's polygon,
    so the pipeline measures and transforms them once, with the solid). None otherwise."""
    if not len(flat.handles):
        return None
    counts, handles = flattened([r.polygons if not (r.lines or r.points) else [] for r in records])
    if not len(handles) or not kept[np.where(handles < 0, ~handles, handles)].all():
        return None  # a polygon left out of the geometry: its faces are numbered otherwise
    per_record = np.diff(flat.starts)
    span = 2 * len(kept) + 1  # handles run from -len to len - 1: a key per record and handle
    key = np.repeat(np.arange(len(records)), counts) * span + handles + len(kept)
    asked = np.repeat(np.arange(len(records)), per_record) * span + flat.handles + len(kept)
    order = np.argsort(key, kind="stable")  # a handle used twice: its first face
    ordered = key[order]
    at = np.minimum(np.searchsorted(ordered, asked), len(key) - 1)
    if (ordered[at] != asked).any():
        return None
    return order[at] - np.repeat(np.cumsum(counts) - counts, per_record)


def _handles(rec: Record) -> Iterator[int]:
    """Every polygon handle a record uses (turned over or not)."""
    return chain(rec.polygons, rec.footprint_handles, *(hs for _, hs in rec.surface_handles))


def _repairs(records: list[Record], built: Built) -> list[str | None]:
    """Each record's repair note, counting each polygon it uses once. Dropped polygons leave
    its geometry; a record left without any geometry is rejected with the note as reason."""
    kept = built.repairs[:, 3] == 0
    notes: list[str | None] = []
    for rec in records:
        used = list({~h if h < 0 else h for h in _handles(rec)})
        note = rings.describe(built.repairs[used].sum(axis=0)) if used else None
        notes.append(note)
        if note is None or kept[used].all():
            continue
        rec.polygons = _kept(rec.polygons, kept)
        rec.footprint_handles = _kept(rec.footprint_handles, kept)
        rec.surface_handles = [(t, _kept(hs, kept)) for t, hs in rec.surface_handles]
        if next(_handles(rec), None) is None and not (rec.lines or rec.points):
            rec.errors.append(f"no usable geometry left: {note}")
    return notes


def _kept(handles: list[int], kept: np.ndarray) -> list[int]:
    return [h for h in handles if kept[~h if h < 0 else h]]


def _reject_bad_polygons(records: list[Record], reasons: dict[int, str]) -> None:
    """Records that use a polygon which could not be built get its reason."""
    if not reasons:
        return
    for rec in records:
        why = next(
            (reasons[i] for h in _handles(rec) if (i := ~h if h < 0 else h) in reasons), None
        )
        if why is not None:
            rec.errors.append(why)
