"""xlink:href between GML surfaces, resolved inside the document and held to a budget.

Surfaces are handed around as polygon handles (`Ref`): an int indexes the reader's polygons
(`~i`: the same polygon turned over, for OrientableSurface orientation="-"); a str is an
xlink:href not yet resolved ("-" prefix: turned over). Hrefs are resolved against the gml:ids
read in the same batch only: nothing is ever fetched.

xlinks let a few bytes stand for much geometry: surfaces that each reference the one before
twice double at every level (a 16 KB document would become gigabytes). What xlinks bring in is
therefore held to what the batch holds (`XLINK_BUDGET` polygons and coordinate text per
polygon and character read, `XLINK_DEPTH` xlinks followed in a chain); past that the document
is refused (`XlinkBudgetError`). Real models stay far below: each surface of Munich's and NRW's
solids is referenced once, so xlinks bring in as much as the document holds.
"""

from __future__ import annotations

from citypipe.geo.errors import DataError

__all__ = [
    "XLINK_BUDGET",
    "XLINK_DEPTH",
    "XLINK_FLOOR",
    "XLINK_HREF",
    "Ref",
    "XlinkBudgetError",
    "Xlinks",
    "flip",
    "href_ref",
    "over_budget",
]

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

Ref = int | str

XLINK_BUDGET = 16
"""Polygons, and characters of coordinate text, xlinks may bring in per polygon and character
the batch has read so far (beyond `XLINK_FLOOR`): 8 times what every real model at hand needs
(their solids reference each of their surfaces once)."""
XLINK_FLOOR = (10_000, 1_000_000)
"""Polygons and characters xlinks may bring in whatever the batch holds."""
XLINK_DEPTH = 16
"""xlinks followed in one chain (one that references one that references ...): real models
follow one or two."""


class XlinkBudgetError(DataError):
    """xlinks that would bring in more than `XLINK_BUDGET` allows: the document is refused."""


def over_budget(brought: int, held: int, floor: int) -> bool:
    """Whether references that brought in `brought` (polygons, or characters of coordinates)
    where the document holds `held` are past the budget (`floor`: one of `XLINK_FLOOR`): the
    rule of every reader that resolves references (surfaces here, WFS geometries too)."""
    return brought > XLINK_BUDGET * held + floor


def href_ref(href: str) -> str:
    """An unresolved reference: the id after '#' ('#' is optional, as Munich's tiles write it)."""
    return href.removeprefix("#")


def flip(refs: list[Ref]) -> list[Ref]:
    """The same surfaces turned over."""
    return [~r if isinstance(r, int) else (r[1:] if r.startswith("-") else "-" + r) for r in refs]


class Xlinks:
    """Resolves references against the surfaces a batch has read, counting what they bring in.

    `ids` (gml:id -> (record, handles)) and `sizes` (characters of coordinate text of each
    polygon) are the reader's own tables, filled as it reads.
    """

    def __init__(self, ids: dict[str, tuple[int, list[Ref]]], sizes: list[int]) -> None:
        self._ids = ids
        self._sizes = sizes
        self._brought = [0, 0]  # polygons and characters xlinks brought in
        self._held = [0, 0]  # polygons and characters of `sizes` counted so far

    def resolve(self, refs: list[Ref]) -> tuple[list[int], list[str]]:
        """Polygon handles for `refs`, and the ids that are defined nowhere read so far.

        Raises XlinkBudgetError when xlinks bring in more than the budget allows."""
        out: list[int] = []
        missing: list[str] = []
        ids, sizes = self._ids, self._sizes
        polygons = chars = 0
        for r in refs:
            if isinstance(r, int):
                out.append(r)
                continue
            reverse = r.startswith("-")
            key = r[1:] if reverse else r
            target = ids.get(key)
            if target is not None:
                found = target[1]
                if len(found) == 1 and isinstance(found[0], int):  # a polygon: the common case
                    h = found[0]
                    out.append(~h if reverse else h)
                    polygons += 1
                    chars += sizes[~h if h < 0 else h]
                    continue
            self._follow(key, reverse, frozenset(), out, missing)
        if polygons:
            self._charge(polygons, chars)
        return out, missing

    def _follow(
        self, key: str, reverse: bool, seen: frozenset[str], out: list[int], missing: list[str]
    ) -> None:
        """Add the handles the surface with gml:id `key` stands for (turned over if `reverse`),
        following its xlinks (`seen`: the chain followed so far, which a cycle would repeat)."""
        target = self._ids.get(key)
        if target is None or key in seen:
            missing.append(key)
            return
        if len(seen) >= XLINK_DEPTH:
            raise XlinkBudgetError(
                f"xlinks chained more than {XLINK_DEPTH} deep (at {key!r}: a surface referencing "
                "a surface that references another ...): refused as a possible xlink bomb"
            )
        seen = seen | {key}
        sizes = self._sizes
        polygons = chars = 0
        for h in target[1]:
            if isinstance(h, int):
                out.append(~h if reverse else h)
                polygons += 1
                chars += sizes[~h if h < 0 else h]
            elif h.startswith("-"):
                self._follow(h[1:], not reverse, seen, out, missing)
            else:
                self._follow(h, reverse, seen, out, missing)
        self._charge(polygons, chars)

    def _charge(self, polygons: int, chars: int) -> None:
        """Count what xlinks brought in; refuse past the budget."""
        brought, held, sizes = self._brought, self._held, self._sizes
        brought[0] += polygons
        brought[1] += chars
        held[1] += sum(sizes[held[0] :])  # the polygons read since the last charge
        held[0] = len(sizes)
        if over_budget(brought[0], held[0], XLINK_FLOOR[0]) or over_budget(
            brought[1], held[1], XLINK_FLOOR[1]
        ):
            raise XlinkBudgetError(
                f"xlinks bring in over {brought[0]} polygons ({brought[1]} characters of "
                f"coordinates) where the document holds {held[0]} ({held[1]}) so far: more "
                f"than {XLINK_BUDGET} times what it holds, refused as a possible xlink bomb"
            )
