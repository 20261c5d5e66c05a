"""Harvesting a context broker's query completely: limit + offset paging with its count, the
page-size ceiling found from the broker's refusal, and the query split where offset paging
stops short of the count.

NGSI-LD and NGSI v2 brokers page alike (a `limit`, an `offset`, a total in a header when asked)
and fail alike in the field: a `limit` above the broker's ceiling is refused (Orion-LD: 400
"must be an integer value <= 1000"; CIM 009 1.8: 403 TooManyResults), and past some offset a
broker answers empty pages while its count still says more (FIWARE/context.Orion-LD#1407);
a broker that ignores `offset` (ScorpioBroker#316) answers the first page again, refused at
once rather than asked to the end of its count.
The pager lowers the page to the ceiling the refusal names (else halves it) and goes on; where
pages run dry early it splits the query into parts by `idPattern` (the ids' next character in
ranges of code points, each part counted and split again until it is within reach of offset
paging), skipping ids it already has. Complete or nothing: the ids read must equal the count
the broker gave, else a DataError naming both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from os.path import commonprefix
from typing import Any
from urllib.parse import urlencode

from citypipe.connectors.answers import count, gist
from citypipe.connectors.http import HttpClient, Reply
from citypipe.geo.errors import ConfigurationError, DataError

__all__ = ["Dialect", "Pager", "Representation", "id_part", "respellings"]

_CEILING = re.compile(r"(?:<=|max(?:imum)?:?)\s*(\d+)", re.IGNORECASE)
FIRST, LAST = 0x21, 0x7E
"""The characters of a URI (printable ASCII but space): the range the first split covers."""


@dataclass(frozen=True)
class Dialect:
    """How one broker API asks for and tells the total, and spells its representations."""

    count_header: str
    """NGSILD-Results-Count or Fiware-Total-Count."""
    count_params: Callable[[Mapping[str, str]], dict[str, str]]
    """The request's parameters with the count asked for."""
    spellings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Representation options (an `options=` or `format=` value of the user's URL) and the
    other spellings of each, tried in turn when a broker refuses it before it is dropped: the
    entity reader reads every representation, the normalized one (none asked) too."""


Spelling = tuple[str, str, str | None]
"""(key, term, replacement): `term` of parameter `key` asked as `replacement` (None: not)."""


@dataclass
class Representation:
    """The representation the URL asks for as the broker takes it, shared by the pagers of
    one harvest (`inspect`'s and `read`'s), so that a refused one is tried again once."""

    tries: list[Spelling]
    """The spellings still to try where the broker refuses (`respellings`)."""
    spelling: Spelling | None = None
    note: str | None = None
    """What was asked instead of a refused representation, for the user."""


def respellings(
    params: Mapping[str, str], spellings: Mapping[str, tuple[str, ...]]
) -> list[Spelling]:
    """(key, term, replacement) for the first representation term of `params`: each other
    spelling of it in `options` (`format`, CIM 009 1.6's, has one spelling each), then None
    (the term dropped); [] where it names none."""
    for key in ("options", "format"):
        for term in params.get(key, "").split(","):
            if term in spellings:
                others = spellings[term] if key == "options" else ()
                return [(key, term, other) for other in (*others, None)]
    return []


def respelled(params: Mapping[str, str], key: str, term: str, other: str | None) -> dict[str, str]:
    """`params` with `term` of `key` spelled `other` (None: dropped, and the key where empty)."""
    values = [other if v == term else v for v in params.get(key, "").split(",")]
    kept = [v for v in values if v]
    out = {k: v for k, v in params.items() if k != key}
    return {**out, key: ",".join(kept)} if kept else out


def ceiling(reply: Reply) -> int | None:
    """The largest page a refusal of `limit` names, 0 where it names none, None where the
    refusal is not about the page size."""
    text = reply.content.decode("utf-8", "replace")
    if "TooManyResults" not in text and "limit" not in text.lower():
        return None
    found = _CEILING.search(text)
    return int(found.group(1)) if found else 0


def id_part(prefix: str, low: int, high: int) -> str:
    """The idPattern of the ids that start with `prefix` and then a character in [low, high]."""
    return f"^{re.escape(prefix)}[\\x{low:02x}-\\x{high:02x}]"


@dataclass
class Pager:
    """One query of one broker, read page by page (`pages`), each entity once."""

    client: HttpClient
    url: str
    """The entities endpoint, without a query."""
    params: dict[str, str]
    headers: Mapping[str, str]
    dialect: Dialect
    page_size: int
    follow: Callable[[Reply, list[Any], Mapping[str, str]], list[Any]] | None = None
    """Completes a page whose answer is partial (the temporal API's 206: the rest of the
    entities' instances), given the page's request parameters."""
    representation: Representation = field(default_factory=lambda: Representation([]))

    def __post_init__(self) -> None:
        self.seen: set[str] = set()
        self.total: int | None = None
        """The broker's count of the query's entities, from its first page; None without one."""
        self.paged = False
        """Whether the first page was read (and `total` set)."""
        self.reach: int | None = None
        """The offset from which the broker answered empty pages while its count said more."""
        self.requests = 0
        self._counts: dict[str, int | None] = {}

    @property
    def uncounted(self) -> str | None:
        """What a harvest without the broker's count must say: it ended at the first empty
        page, and nothing could check that every entity was read."""
        if not self.paged or self.total is not None:
            return None
        return (
            f"the broker sent no {self.dialect.count_header}: read up to its first empty page, "
            "without a count to check the harvest is complete against"
        )

    def get(self, params: Mapping[str, str]) -> Reply:
        """The answer to `params`; where the broker refuses the URL's representation option
        (400, not about `limit`), it is asked once in each other spelling, then without it, and
        the first the broker takes is used from then on (`Representation.note` says which)."""
        shared = self.representation
        if shared.spelling is not None:
            params = respelled(params, *shared.spelling)
        reply = self._ask(params)
        tries, shared.tries = shared.tries, []
        if reply.status != 400 or ceiling(reply) is not None:
            shared.tries = tries if reply.status >= 400 else []
            return reply
        for key, term, other in tries:
            retry = self._ask(respelled(params, key, term, other))
            if retry.status < 400:
                shared.spelling = key, term, other
                instead = f"{key}={other}" if other else f"no {term}"
                shared.note = (
                    f"the broker refused {key}={term} ({gist(reply.content)}): asked with "
                    f"{instead} instead"
                )
                return retry
        return reply

    def _ask(self, params: Mapping[str, str]) -> Reply:
        self.requests += 1
        return self.client.get(
            f"{self.url}?{urlencode(params)}", headers=self.headers, accept=(400, 403)
        )

    def _page(self, params: Mapping[str, str], offset: int) -> tuple[Reply, list[Any], int | None]:
        """One page and the count (None where the broker sends none), the page size lowered to
        the broker's ceiling if need be."""
        while True:
            asked = {**self.dialect.count_params(params), "limit": str(self.page_size)}
            reply = self.get({**asked, "offset": str(offset)})
            if reply.status < 400:
                break
            limit = ceiling(reply)
            if limit is None or self.page_size <= 1:
                raise ConfigurationError(f"{reply.url}: HTTP {reply.status}: {gist(reply.content)}")
            self.page_size = min(limit, self.page_size - 1) if limit else self.page_size // 2
        page = reply.json()
        if not isinstance(page, list):
            page = page.get("features") if isinstance(page, dict) else None
            if not isinstance(page, list):
                raise DataError(f"{reply.url}: the answer is not a list of entities")
        total = count(reply.headers.get(self.dialect.count_header))
        if self.follow is not None:
            page = self.follow(reply, page, params)
        return reply, page, total

    def declared(self, params: Mapping[str, str]) -> int | None:
        """The broker's count for a query (asked once per query); None where it sends none (a
        proxy that drops the header, a broker that does not count)."""
        key = urlencode(sorted(params.items()))
        if key not in self._counts:
            # limit=1, not 0: Orion (NGSI v2) refuses 0 ("a value of ZERO is unacceptable",
            # telefonicaid/fiware-orion#1492), Scorpio before #394 failed on it with a 500
            reply = self.get({**self.dialect.count_params(params), "limit": "1"})
            if reply.status >= 400:
                raise DataError(f"{reply.url}: no count ({reply.status}): {gist(reply.content)}")
            self._counts[key] = count(reply.headers.get(self.dialect.count_header))
        return self._counts[key]

    def count(self, params: Mapping[str, str]) -> int:
        """The broker's count for a part of the query, which splitting it needs."""
        total = self.declared(params)
        if total is None:
            raise DataError(
                f"{self.url}?{urlencode(params)}: the broker sent no {self.dialect.count_header} "
                "for a part of the query, which reading past its offset limit needs"
            )
        return total

    def _scan(self, params: Mapping[str, str]) -> Generator[tuple[Reply, list[Any]], None, bool]:
        """The query's pages by offset, entities already read left out; stops at the end of
        the count (True) or where the pages run dry (False, recording that offset as
        `reach`). Without a count, the first empty page is the end (True)."""
        offset, first = 0, None
        while True:
            reply, page, count = self._page(params, offset)
            if not self.paged:
                self.total, self.paged = count, True
            ids = [_id(e) for e in page]
            if first is None:
                first = ids
            elif ids and ids == first:
                raise DataError(
                    f"{reply.url}: the broker answered offset {offset} with the entities of "
                    "offset 0: it ignores `offset`, so its entities cannot be paged through "
                    "(Scorpio before 2.1.15 did); nothing was written"
                )
            # of the page's type: a `Widened` page (integers beyond 64 bits) stays one
            fresh = type(page)(e for e, i in zip(page, ids, strict=True) if i not in self.seen)
            self.seen.update(ids)
            if fresh:
                yield reply, fresh
            offset += len(page)
            if count is None and not page or count is not None and offset >= count:
                return True
            if not page:
                self.reach = offset if self.reach is None else min(self.reach, offset)
                return False

    def pages(self) -> Iterator[tuple[Reply, list[Any]]]:
        """Every entity of the query once, page by page; DataError where the ids read do not
        equal the broker's count (none where it sends none: `uncounted`)."""
        yield from self._scan(self.params)
        if self.total is None:
            return
        if self.reach is not None and len(self.seen) < self.total:
            if "idPattern" in self.params:
                raise DataError(
                    f"{self.url}: the broker answers empty pages from offset {self.reach} on "
                    f"while it counts {self.total}, and the query has its own idPattern, so "
                    "citypipe cannot split it; nothing was written"
                )
            yield from self._split("", FIRST, LAST)
        if len(self.seen) != self.total:
            raise DataError(
                f"{self.url}?{urlencode(self.params)}: incomplete harvest: the broker counted "
                f"{self.total} entities, citypipe read {len(self.seen)} distinct ones in "
                f"{self.requests} requests; nothing was written"
            )

    def _with(self, pattern: str) -> dict[str, str]:
        return {**self.params, "idPattern": pattern}

    def _split(self, prefix: str, low: int, high: int) -> Iterator[tuple[Reply, list[Any]]]:
        """The ids after `prefix` in the character range [low, high], read by parts small
        enough for offset paging to reach."""
        assert self.reach is not None and self.total is not None
        if len(self.seen) >= self.total:
            return
        pattern = id_part(prefix, low, high)
        count = self.count(self._with(pattern))
        if count == 0:
            return
        found = re.compile(pattern)
        unread = not any(found.match(i) for i in self.seen)
        if (count <= self.reach or unread) and (yield from self._scan(self._with(pattern))):
            return
        longer = self._shared(prefix, found, count)
        if len(longer) > len(prefix) + 1:
            yield from self._after(longer)
        elif low < high:
            middle = (low + high) // 2
            yield from self._split(prefix, low, middle)
            yield from self._split(prefix, middle + 1, high)
        else:
            yield from self._after(prefix + chr(low))

    def _shared(self, prefix: str, part: re.Pattern[str], count: int) -> str:
        """The longest start every id of a part shares (`count` of them): a start of the ids
        read so far of the part, its length found by bisection on the broker's count."""
        ids = sorted(i for i in self.seen if part.match(i))
        if not ids:
            return prefix
        candidate = commonprefix([ids[0], ids[-1]])
        low, high = len(prefix), len(candidate)  # low: shared by all; high: maybe too long
        while low < high:
            middle = (low + high + 1) // 2
            if self.count(self._with(f"^{re.escape(candidate[:middle])}")) == count:
                low = middle
            else:
                high = middle - 1
        return candidate[:low]

    def _after(self, prefix: str) -> Iterator[tuple[Reply, list[Any]]]:
        """The ids that start with `prefix`: the one equal to it, then the longer ones."""
        exact = self._with(f"^{re.escape(prefix)}$")
        if self.count(exact):
            yield from self._scan(exact)
        yield from self._split(prefix, FIRST, LAST)


def _id(entity: Any) -> str:
    if not isinstance(entity, dict) or not isinstance(entity.get("id"), str):
        raise DataError(f"an entity without an id: {str(entity)[:200]}")
    return str(entity["id"])
