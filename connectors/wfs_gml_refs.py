"""Geometry properties given as an xlink:href to a geometry elsewhere in the same response
(GML 3.2 allows `<app:geometry xlink:href="#g1"/>`; deegree and some INSPIRE services write a
shared geometry once and refer to it after), resolved within the response and never fetched.

A property holding nothing but an xlink:href is resolved when its batch is flushed (a harvest's
page is one batch, a streamed file or WFS 1.1 answer one of `wfs_gml.BATCH_SIZE` /
`wfs_whole.BATCH` features), against the geometries of the response read so far: its batch,
every batch of a response known to hold references (a saved file or a page, whose bytes tell),
else of a stream the batch before its first reference and every batch since (`KEPT` geometries
at most, the latest). A `#id` naming one of them is that geometry; one naming none yet, in a
property of a tag that holds geometries inline elsewhere, waits for the next batch (`WAITING`
references at most: a target after it), and at the response's end, as an href to another
document, is a geometry that cannot be had (a reason for the record's reject); any other href
is a plain property (a code list, a feature reference). Until a stream has a `#id` reference
nothing is kept but the batch before, and of a file or page whose bytes hold no `href="#`
nothing; a batch with other hrefs only is searched alone: reading stays as fast and small
without them. What references bring in is held to a budget, as surface xlinks are
(gml_xlinks): past it the response is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from citypipe.connectors.gml_xlinks import (
    XLINK_BUDGET,
    XLINK_FLOOR,
    XlinkBudgetError,
    over_budget,
)

__all__ = ["WAIT", "GeometryRefs"]

KEPT = 100_000
"""Geometries of earlier batches kept for references (with their features: a few hundred MB
of GML at most), the latest."""
WAITING = 500
"""References waiting for a geometry of a later batch; past it, one naming none yet rejects."""
WAIT = "wait"
"""`resolve`'s answer for a reference to hold to the next batch (its geometry not read yet)."""


class GeometryRefs:
    """The references of a response not yet resolved, the geometries they may name, and what
    references have brought in.

    `id_attribute` is the gml:id attribute of the response's GML version; `refers`: whether
    the response holds `#id` references (its geometries kept from its first batch on, or never),
    None where that is not known (a stream: the batch before its first reference is kept)."""

    def __init__(self, id_attribute: str, refers: bool | None) -> None:
        self._id = id_attribute
        self._pending: list[tuple[int, Any, str]] = []
        self._known: dict[str, Any] = {}  # gml:id -> geometry element, of batches indexed
        self._tags: set[Any] = set()  # property tags seen holding a geometry inline
        self._previous: list[Any] = []  # the last batch's features, until a reference comes
        self._active = bool(refers)  # a reference is known: every batch is indexed from then on
        self._local = refers is not False  # a `#id` may come (never where the bytes hold none)
        self._unknown = refers is None  # the batch before a first reference is to be kept
        self._sizes: dict[str, int] = {}
        self._brought = 0
        self._held = 0

    def refer(self, record: int, prop: Any, href: str) -> None:
        """A property of record `record` holding nothing but `href`."""
        self._pending.append((record, prop, href))

    def resolve(
        self, features: Iterable[Any], is_geometry: Callable[[Any], bool], final: bool
    ) -> Iterator[tuple[int, Any, Any]]:
        """Each pending reference, once: (record, property, what it is): the geometry element,
        a str saying why the geometry cannot be had, None for a plain property, or `WAIT` (to
        be referred again in the next batch; never where `final`, the response's last batch).
        `features` are the batch's feature elements, `is_geometry` tells a GML geometry's tag."""
        batch = list(features)
        if not self._active:
            if not self._pending:
                self._previous = batch if self._unknown else []
                return
            self._active = self._local and any(h.startswith("#") for _, _, h in self._pending)
        if self._active:
            self._index(self._previous, is_geometry)
        self._index(batch, is_geometry)
        self._previous = batch if self._unknown and not self._active else []
        pending, self._pending = self._pending, []
        waiting = 0
        for record, prop, href in pending:
            target = self._target(prop.tag in self._tags, href, final or waiting >= WAITING)
            waiting += target is WAIT
            yield record, prop, target
        if not self._active:  # only hrefs to other documents (code lists): nothing to keep
            self._known.clear()

    @property
    def kept(self) -> int:
        """How many geometries are kept for references (`KEPT` at most)."""
        return len(self._known)

    def _index(self, features: Iterable[Any], is_geometry: Callable[[Any], bool]) -> None:
        """The features' geometries with a gml:id kept, the oldest dropped past `KEPT`."""
        known = self._known
        for feature in features:
            for prop in feature:
                if len(prop) == 1 and is_geometry(prop[0].tag):
                    self._tags.add(prop.tag)
                    gid = prop[0].get(self._id)
                    if gid is not None:
                        known.pop(gid, None)  # the latest of an id kept, as the newest
                        known[gid] = prop[0]
        while len(known) > KEPT:
            del known[next(iter(known))]

    def _target(self, geometric: bool, href: str, final: bool) -> Any:
        if not href.startswith("#"):
            if geometric:
                return f"its geometry is xlink:href {href}, outside the response: never fetched"
            return None
        gid = href[1:]
        found = self._known.get(gid)
        if found is None:
            if not geometric:
                return None
            if not final:
                return WAIT
            return f"its geometry is xlink:href {href}, which no geometry of the response has"
        self._charge(gid, found)
        return found

    def _charge(self, gid: str, geometry: Any) -> None:
        """Count what a reference brings in; XlinkBudgetError past the budget."""
        size = self._sizes.get(gid)
        if size is None:
            size = self._sizes[gid] = sum(len(t) for t in geometry.itertext())
            self._held += size
        self._brought += size
        if over_budget(self._brought, self._held, XLINK_FLOOR[1]):
            raise XlinkBudgetError(
                f"geometry xlink:hrefs bring in {self._brought} characters of coordinates, more "
                f"than {XLINK_BUDGET} times the {self._held} of the geometries they name: refused"
            )
