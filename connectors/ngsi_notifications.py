"""NGSI subscription notifications (NGSI-LD and NGSI v2), as `citypipe listen` logs them:
one notification body a line (JSON lines), or one notification as a JSON document.

A notification carries entities in whatever representation its subscription asked for; an
entity may arrive many times. The source table holds each entity once, in the last version
the log holds (the latest state), while the observations come from every version, so a value
measured between two notifications of the same entity is kept. The NGSI-LD @context given in
a notification's Link header is kept by the listener beside the body (`citypipe:link`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from citypipe.connectors import documents
from citypipe.connectors.base import FileConnector, SourceBatch, SourceInfo
from citypipe.connectors.jsonld_context import for_source
from citypipe.connectors.ngsi_entities import entity_batch
from citypipe.geo.errors import DataError

__all__ = ["LINK", "NotificationLogConnector", "is_notification", "notifications", "versions"]

LINK = "citypipe:link"
"""The key under which the listener keeps the @context a notification's Link header gave."""


def is_notification(doc: Any) -> bool:
    """Whether `doc` is a subscription notification: NGSI-LD's (type Notification) or NGSI
    v2's, both a `subscriptionId` and a `data` array of entities."""
    return type(doc) is dict and "subscriptionId" in doc and type(doc.get("data")) is list


def notifications(path: Path) -> Iterator[dict[str, Any]]:
    """The notifications of a log, one a line (or one JSON document), in order."""
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip(documents.BLANK):
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise DataError(f"{path}, line {n}: not JSON ({e})") from e
            if not is_notification(doc):
                raise DataError(f"{path}, line {n}: not an NGSI notification")
            yield doc


def versions(notes: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """Every entity's versions in the order they arrived, the entities in the order they first
    did; an entity without an @context of its own takes its notification's."""
    by_id: dict[str, list[Any]] = {}
    unnamed: list[list[Any]] = []  # no id: entity_batch rejects it with its reason
    for note in notes:
        context = note.get(LINK) or note.get("@context")
        for entity in note["data"]:
            if context is not None and type(entity) is dict and "@context" not in entity:
                entity = {**entity, "@context": context}
            key = entity.get("id") if type(entity) is dict else None
            if isinstance(key, str):
                by_id.setdefault(key, []).append(entity)
            else:
                unnamed.append([entity])
    return [*by_id.values(), *unnamed]


class NotificationLogConnector(FileConnector):
    """The latest state of every entity a log of notifications holds, with the observations of
    every version. The log is read whole: the listener keeps each flush bounded."""

    name = "ngsi-notifications"
    known_options = frozenset({"contexts"})
    title = "NGSI notifications"

    @classmethod
    def sniff(cls, head: bytes) -> float:
        line = head.lstrip(documents.BLANK).partition(b"\n")[0]
        if not documents.whole_object(line):  # cut by the head, or not an object: not parsed
            return 0.0
        try:
            return 0.99 if is_notification(orjson.loads(line)) else 0.0
        except orjson.JSONDecodeError:
            return 0.0

    def inspect(self) -> SourceInfo:
        entities = versions(notifications(self.path))
        return SourceInfo(
            format="NGSI notifications",
            count=len(entities),
            details={"entity versions": str(sum(map(len, entities)))},
        )

    def read(self) -> Iterator[SourceBatch]:
        contexts = for_source(self.options.get("contexts"))
        entities = versions(notifications(self.path))
        latest = entity_batch([versions[-1] for versions in entities], contexts=contexts)
        owner = [i for i, versions in enumerate(entities) for _ in versions[:-1]]
        if owner:  # the earlier versions give only their observations, to the entity's record
            past = entity_batch([v for vs in entities for v in vs[:-1]], contexts=contexts)
            moved = [o._replace(record=owner[o.record]) for o in past.observations]
            latest = replace(latest, observations=[*moved, *latest.observations])
        yield latest
