"""An NGSI-LD broker's history (the temporal API, GET /ngsi-ld/v1/temporal/entities) into
observations: `http://host/ngsi-ld/v1/temporal/entities?type=AirQualityObserved&attrs=no2`.

Entities are paged like the entities endpoint (`ngsi_paging`: count, ceiling, split). A page's
instances may come in several answers: a broker that cannot give them at once answers 206
Partial Content with `Content-Range: date-time <first>-<last>/<lastN or *>` (CIM 009 6.3.10),
and the rest is asked for the same entities (by id, so a broker that drops entities without
instances in the later range cannot shift the page) from the last instant on: forwards, or
backwards with lastN. `between` includes its start, so an answer may repeat the previous
one's last instant: instances are kept once by (attribute, datasetId, observedAt), and an
answer that covers exactly the instants of the one before is an error, not a loop.
`Query.datetime` (`a/b`, `../b`, `a/..`) is the time range. Each entity becomes one record,
its attributes at their latest instance, and every instance one `Observation`: each value
once per harvest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from citypipe.connectors.base import Observation, SourceBatch
from citypipe.connectors.http import Reply
from citypipe.connectors.ngsi_broker_base import link_context
from citypipe.connectors.ngsi_entities import entity_batch
from citypipe.connectors.ngsi_paging import Pager
from citypipe.connectors.ngsild_broker import NGSILDBrokerConnector
from citypipe.geo.errors import ConfigurationError, DataError

__all__ = ["NGSILDTemporalConnector"]

_RANGE = re.compile(r"^date-time\s+(\d{4}-\d\d-\d\dT\S*?)-(\d{4}-\d\d-\d\dT\S*)/(\*|\d+)$")


def content_range(reply: Reply) -> tuple[str, str]:
    """(earlier, later) instant of a 206 answer's Content-Range."""
    found = _RANGE.match(reply.headers.get("Content-Range", "").strip())
    if not found:
        raise DataError(
            f"{reply.url}: a 206 answer without a date-time Content-Range "
            f"({reply.headers.get('Content-Range')!r}): the rest of the history cannot be asked"
        )
    a, b = found.group(1), found.group(2)
    return (a, b) if a <= b else (b, a)


def time_params(datetime: str) -> dict[str, str]:
    """An RFC 3339 interval as timerel / timeAt / endTimeAt."""
    start, sep, end = datetime.partition("/")
    if not sep:
        raise ConfigurationError(f"--datetime {datetime}: the temporal API takes an interval")
    if start in ("", "..") and end in ("", ".."):
        return {}
    if start in ("", ".."):
        return {"timerel": "before", "timeAt": end}
    if end in ("", ".."):
        return {"timerel": "after", "timeAt": start}
    return {"timerel": "between", "timeAt": start, "endTimeAt": end}


def _after(params: Mapping[str, str], first: str, last: str) -> dict[str, str]:
    """The request for the instances after an answer that ended at `last` (forwards), or
    before one that began at `first` (lastN, backwards)."""
    rel, at = params.get("timerel"), params.get("timeAt", "")
    if params.get("lastN"):
        if rel in ("between", "after"):
            return {**params, "timerel": "between", "timeAt": at, "endTimeAt": first}
        return {**params, "timerel": "before", "timeAt": first}
    if rel == "between":
        return {**params, "timeAt": last}
    if rel == "before":
        return {**params, "timerel": "between", "timeAt": last, "endTimeAt": at}
    return {**params, "timerel": "after", "timeAt": last}


def _instances(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [i for i in items if isinstance(i, dict)]


class _History:
    """The instances of a page's entities gathered over the answers, each once."""

    def __init__(self, last_n: int | None) -> None:
        self.entities: dict[str, dict[str, Any]] = {}
        self.keys: set[tuple[str, str, Any, Any]] = set()
        self.last_n = last_n

    def add(self, page: list[Any]) -> None:
        for entity in page:
            if not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
                raise DataError(f"a temporal entity without an id: {str(entity)[:200]}")
            held = self.entities.setdefault(entity["id"], {})
            for name, value in entity.items():
                if name in ("id", "type", "@context") or not isinstance(value, (dict, list)):
                    held.setdefault(name, value)
                    continue
                fresh = [i for i in _instances(value) if self._new(entity["id"], name, i)]
                kept = held.setdefault(name, [])
                room = len(fresh) if self.last_n is None else self.last_n - len(kept)
                newest_first = sorted(fresh, key=lambda i: str(i.get("observedAt", "")))[::-1]
                kept.extend(newest_first[: max(room, 0)] if self.last_n else fresh)

    def _new(self, entity: str, name: str, instance: dict[str, Any]) -> bool:
        key = (entity, name, instance.get("datasetId"), instance.get("observedAt"))
        if key in self.keys and key[3] is not None:
            return False
        self.keys.add(key)
        return True


def observation(record: int, name: str, instance: Mapping[str, Any]) -> Observation | None:
    """An instance as an Observation: a Property with a number, or a value and observedAt."""
    if instance.get("type", "Property") != "Property":
        return None
    value = instance.get("value")
    number = float(value) if isinstance(value, (int, float)) else None
    if number is None and instance.get("observedAt") is None:
        return None
    text = None if number is not None or value is None else str(value)
    return Observation(
        record,
        name,
        number,
        text,
        instance.get("unitCode"),
        instance.get("observedAt"),
        instance.get("datasetId"),
    )


class NGSILDTemporalConnector(NGSILDBrokerConnector):
    name = "ngsi-ld-temporal"
    title = "NGSI-LD temporal API"
    resource = ("ngsi-ld", "v1", "temporal", "entities")
    page_size = 100
    """Entities per page: their history is gathered whole before the page is handed on."""
    modified = ""
    incremental = ""
    """Not (yet): a delta of instances would hold entities without their latest state."""

    def _takes(self, flag: str) -> bool:
        return flag == "--datetime"

    def pager(self) -> Pager:
        pager = super().pager()
        if self.query.datetime:
            pager.params.update(time_params(self.query.datetime))
        pager.follow = lambda reply, page, params: self._follow(pager, reply, page, params)
        return pager

    def _follow(
        self, pager: Pager, reply: Reply, page: list[Any], params: Mapping[str, str]
    ) -> list[Any]:
        """The page's entities with every instance, over as many answers as the broker
        needs."""
        last_n = int(params["lastN"]) if params.get("lastN") else None
        history = _History(last_n)
        history.add(page)
        ids = ",".join(e["id"] for e in page if isinstance(e, dict) and "id" in e)
        asked = {k: v for k, v in params.items() if k not in ("offset", "count")}
        asked.update({"id": ids, "limit": str(len(page))})
        covered: tuple[str, str] | None = None
        while reply.status == 206 and ids:
            if content_range(reply) == covered:
                raise DataError(
                    f"{reply.url}: the broker answers the same instants {covered} again: its "
                    "history cannot be read further (an instant with more instances than it "
                    "gives at once?)"
                )
            covered = content_range(reply)
            asked = _after(asked, *covered)
            reply = pager.get(asked)
            if reply.status >= 400:
                raise DataError(f"{reply.url}: HTTP {reply.status} in the middle of a history")
            more = reply.json()
            if not isinstance(more, list):
                raise DataError(f"{reply.url}: the answer is not a list of temporal entities")
            history.add(more)
        return [{"id": i, **e} for i, e in history.entities.items()]

    def batch(self, reply: Reply, page: list[Any]) -> SourceBatch:
        """Each entity at its latest instances, every instance an observation."""
        latest, observations = [], []
        for record, entity in enumerate(page):
            state = {}
            for name, value in entity.items():
                if not isinstance(value, list):
                    state[name] = value
                    continue
                for instance in value:
                    found = observation(record, name, instance)
                    if found is not None:
                        observations.append(found)
                if value:
                    state[name] = max(value, key=lambda i: str(i.get("observedAt", "")))
            latest.append(state)
        batch = entity_batch(latest, context=link_context(reply), contexts=self.contexts)
        return replace(batch, observations=observations)
