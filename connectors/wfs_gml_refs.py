"""Geometry properties given as an xlink:href to a geometry elsewhere in the same response
(GML 3.2 allows `<app:geometry xlink:href="#g1"/>`; deegree and some INSPIRE services write a
shared geometry once and refer to it after), resolved within the response and never fetched.

A property holding nothing but an xlink:href is resolved when its batch is flushed, against
the geometries of the batch's features (before or after it; a harvest's page is one batch, a
streamed file or WFS 1.1 answer one of `wfs_gml.BATCH_SIZE` / `wfs_whole.BATCH` features):
a `#id` naming one of them is that geometry; a property of a tag that holds geometries inline
elsewhere in the batch, whose href names none of them or another document, is a geometry that
cannot be had (a reason for the record's reject); any other href is a plain property (a code
list, a feature reference). The batch is searched only where it has such a property: reading
stays as fast without them. What references bring in is held to a budget, as surface xlinks
are (gml_xlinks): past it the response is refused.
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

__all__ = ["GeometryRefs"]


class GeometryRefs:
    """The references of a batch not yet resolved, and what references have brought in.

    `id_attribute` is the gml:id attribute of the response's GML version."""

    def __init__(self, id_attribute: str) -> None:
        self._id = id_attribute
        self._pending: list[tuple[int, Any, str]] = []
        self._sizes: dict[str, int] = {}
        self._brought = 0
        self._held = 0

    def __bool__(self) -> bool:
        return bool(self._pending)

    def refer(self, record: int, prop: Any, href: str) -> None:
        """A property of record `record` holding nothing but `href`."""
        self._pending.append((record, prop, href))

    def resolve(
        self, features: Iterable[Any], is_geometry: Callable[[Any], bool]
    ) -> Iterator[tuple[int, Any, Any]]:
        """Each pending reference, once: (record, property, what it is): the geometry element,
        a str saying why the geometry cannot be had, or None for a plain property. `features`
        are the batch's feature elements, `is_geometry` tells a GML geometry's tag."""
        pending, self._pending = self._pending, []
        by_id: dict[str, Any] = {}
        tags: set[Any] = set()
        for feature in features:
            for prop in feature:
                if len(prop) == 1 and is_geometry(prop[0].tag):
                    tags.add(prop.tag)
                    gid = prop[0].get(self._id)
                    if gid is not None:
                        by_id[gid] = prop[0]
        for record, prop, href in pending:
            yield record, prop, self._target(by_id, prop.tag in tags, href)

    def _target(self, by_id: dict[str, Any], geometric: bool, href: str) -> Any:
        if not href.startswith("#"):
            if geometric:
                return f"its geometry is xlink:href {href}, outside the response: never fetched"
            return None
        gid = href[1:]
        found = by_id.get(gid)
        if found is None:
            if geometric:
                return f"its geometry is xlink:href {href}, which no geometry of its batch has"
            return None
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
