"""Appearances, Versions and VersionTransitions: not records, they annotate the objects.

Each is attached to the objects it points to (`citygml:appearance`, `citygml:versions`,
`citygml:transitions`): objects read before it in the current batch, or still to come (held
in `pending` until the object is read); one in a batch already handed over is out of reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from citypipe.connectors.citygml_records import Record
from citypipe.connectors.citygml_values import key_of, put, text_of
from citypipe.connectors.gml import local_name
from citypipe.connectors.gml_xlinks import XLINK_HREF, Ref

__all__ = ["Annotations", "appearance"]


def appearance(elem: Any) -> list[dict[str, Any]]:
    """An app:Appearance as one entry per texture / material: theme, type, image, target ids."""
    theme = next((text_of(c) for c in elem if local_name(c.tag) == "theme"), None)
    entries = []
    for member in elem:
        if local_name(member.tag) not in ("surfaceDataMember", "surfaceData"):
            continue
        for data in member:
            targets = [
                (t.get("uri") or text_of(t) or "").removeprefix("#") for t in data.iter("{*}target")
            ]
            entry: dict[str, Any] = {
                "theme": theme,
                "type": local_name(data.tag),
                "targets": targets,
            }
            image = next(data.iter("{*}imageURI"), None)
            if image is not None:
                entry["imageURI"] = text_of(image)
            entries.append(entry)
    return entries


class Annotations:
    """Attaches the annotations of a document to the records of the batch being read.

    `records` are the batch's records, `objects` their index by gml:id: both the object
    reader's, passed in on each call since a new batch starts with new ones.
    """

    def __init__(self, gml_id: str) -> None:
        self.gml_id = gml_id
        self.pending: dict[str, list[tuple[str, Any]]] = {}

    def claim(self, gml_id: str) -> Iterable[tuple[str, Any]]:
        """The annotations waiting for the object with `gml_id`, which is being read."""
        return self.pending.pop(gml_id, ()) if self.pending else ()

    def read(
        self,
        kind: str,
        elem: Any,
        records: list[Record],
        objects: dict[str, int],
        surfaces: dict[str, tuple[int, list[Ref]]],
    ) -> bool:
        """Attach `elem` (the content of a member of `kind`) if it is an annotation: whether it
        is one. `surfaces`: gml:id -> (record, handles) of the surfaces read (a target may be
        a surface)."""
        if kind == "appearanceMember" or local_name(elem.tag) == "Appearance":
            self._global_appearance(elem, records, objects, surfaces)
        elif kind == "versionMember":
            self._version(elem, records, objects)
        elif kind == "versionTransitionMember":
            self._transition(elem, records, objects)
        else:
            return False
        return True

    def _annotate(
        self,
        records: list[Record],
        objects: dict[str, int],
        target: str | None,
        key: str,
        value: Any,
    ) -> None:
        """Attach to the object with gml:id `target`, now or when it is read."""
        if not target:
            return
        target = target.removeprefix("#")
        index = objects.get(target)
        if index is None:
            self.pending.setdefault(target, []).append((key, value))
        else:
            records[index].properties.setdefault(key, []).append(value)

    @staticmethod
    def _global_appearance(
        elem: Any,
        records: list[Record],
        objects: dict[str, int],
        surfaces: dict[str, tuple[int, list[Ref]]],
    ) -> None:
        """A CityModel-level appearance: each entry goes to the objects of the current batch
        owning its targets."""
        for entry in appearance(elem):
            owners: dict[int, list[str]] = {}
            for target in entry["targets"]:
                hit = surfaces.get(target)
                index = hit[0] if hit else objects.get(target)
                if index is not None:
                    owners.setdefault(index, []).append(target)
            for index, targets in owners.items():
                props = records[index].properties
                props.setdefault("citygml:appearance", []).append({**entry, "targets": targets})

    def _version(self, version: Any, records: list[Record], objects: dict[str, int]) -> None:
        info = {"version": version.get(self.gml_id)}
        for child in version:
            if local_name(child.tag) == "versionMember":
                self._annotate(records, objects, child.get(XLINK_HREF), "citygml:versions", info)
            else:
                put(info, key_of(child), child)

    def _transition(self, transition: Any, records: list[Record], objects: dict[str, int]) -> None:
        info: dict[str, Any] = {}
        for child in transition:
            if local_name(child.tag) != "transaction":
                put(info, key_of(child), child)
        for transaction in transition.iter("{*}Transaction"):
            kind = next((text_of(c) for c in transaction if local_name(c.tag) == "type"), None)
            for ref in transaction:
                role = local_name(ref.tag)
                if role in ("oldFeature", "newFeature"):
                    value = {**info, "transaction": kind, "role": role}
                    href = ref.get(XLINK_HREF)
                    self._annotate(records, objects, href, "citygml:transitions", value)
