"""Whether the CityGML reader's walk pays to move into C (libxslt, libxml2's XPath): issue 17.

The reader's walk (`ObjectReader.member`: Python over lxml's elements) is 1-2x libxml2's parse.
This times, on members already parsed (CPU ms, best of `--repeat`, in one process):
  walk        the reader's walk of every member
  bare        every element's tag and text met once in Python (lxml's share of any walk)
  xslt        one XSLT (`XSLTAccessControl.DENY_ALL`) over the CityModel writing, for every
              surface of plain Polygons (MultiSurface / CompositeSurface whose members are
              Polygons of LinearRings with a posList), each polygon's gml:id, its rings'
              srsDimension and coordinate text: the walk's polygon data as one string
  xpath       the same surfaces as elements (one compiled XPath), which the walk looks the
              XSLT's lines up by
  walk+xslt   the walk with those surfaces read from the XSLT's lines instead of their elements,
              xslt and xpath included (checked: the same rings, srsDimensions, ring counts and
              gml:ids as the walk's own)
  lines-walk  walk+xslt's walk alone (the XSLT's lines made beforehand): what the walk costs
              when it meets none of those surfaces' elements

    python bench/citygml_walk.py [--repeat 9] FILE ...
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from citypipe.connectors.citygml_header import GML, model_members, read_header
from citypipe.connectors.citygml_objects import ObjectReader
from citypipe.connectors.gml import GeometryReader, srs_dimension

_PLAIN = (
    "[not(*[not(self::g:surfaceMember) or @* or not(g:Polygon)])"
    " and not(g:surfaceMember/g:Polygon/*[(self::g:exterior or self::g:interior)"
    " and not(g:LinearRing/*[1][self::g:posList])])]"
)
_SURFACES = f"//g:MultiSurface{_PLAIN} | //g:CompositeSurface{_PLAIN}"
_XSLT = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
 xmlns:g="GML"><xsl:output method="text"/><xsl:template match="/">
 <xsl:for-each select="{_SURFACES}"><xsl:for-each select="g:surfaceMember/g:Polygon">&#x241D;<xsl:if
  test="@g:id">@<xsl:value-of select="@g:id"/></xsl:if>&#x241F;<xsl:for-each
  select="*/g:LinearRing/g:posList"><xsl:value-of select="@srsDimension"/>&#x241F;<xsl:value-of
  select="."/>&#x241F;</xsl:for-each></xsl:for-each>&#x241E;</xsl:for-each>
</xsl:template></xsl:stylesheet>"""
_SURFACE, _POLYGON, _RING = "\u241e", "\u241d", "\u241f"
"""What the XSLT's text ends each surface, begins each polygon and ends each ring part with:
characters no coordinate text or gml:id of the corpus holds (the results are checked)."""


def _best(function: Callable[[], Any], repeat: int) -> float:
    """The least CPU time of `repeat` calls, with the cycle collector paused as ingest runs."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.process_time()
            function()
            best = min(best, time.process_time() - start)
    finally:
        gc.enable()
    return best * 1000


def _from_lines(lines: dict[Any, str], members: Callable[..., None]) -> Callable[..., None]:
    """`GeometryReader._members` reading the surfaces in `lines` from their XSLT line, the
    others by `members`."""

    def read(self: GeometryReader, elem: Any, out: list[Any]) -> None:
        line = lines.get(elem)
        if line is None:
            members(self, elem, out)
            return
        for polygon in line.split(_POLYGON)[1:]:
            gid, *rings = polygon.split(_RING)
            texts = rings[1:-1:2]
            self._texts.extend(texts)
            self._dims.extend(srs_dimension(d) if d else self.dimension for d in rings[:-1:2])
            self._ring_counts.append(len(texts))
            self._sizes.append(sum(map(len, texts)))
            handle = len(self._ring_counts) - 1
            out.append(handle)
            if gid:
                self.ids[gid[1:]] = (self.record, [handle])

    return read


def measure(path: Path, repeat: int) -> dict[str, float]:
    header = read_header(path)
    gml = GML[header.version]
    with path.open("rb") as f:
        members = [member for _, member in model_members(f, huge_tree=False)]
    model = members[0].getparent()
    xslt = etree.XSLT(
        etree.XML(_XSLT.replace("GML", gml)), access_control=etree.XSLTAccessControl.DENY_ALL
    )
    xpath = etree.XPath(_SURFACES, namespaces={"g": gml})
    lines: dict[Any, str] = {}

    def walk() -> ObjectReader:
        reader = ObjectReader(path, header, 1 << 30)
        for member in members:
            reader.member(member)
        return reader

    def bare() -> None:
        for member in members:
            for elem in member.iter():
                elem.tag, elem.text  # noqa: B018 - met, as any walk meets it

    def walk_xslt() -> ObjectReader:
        lines.clear()
        lines.update(zip(xpath(model), str(xslt(model)).split(_SURFACE), strict=False))
        return walk()

    own = GeometryReader._members
    times = {"walk": _best(walk, repeat), "bare": _best(bare, repeat)}
    try:
        GeometryReader._members = _from_lines(lines, own)  # type: ignore[method-assign]
        times["walk+xslt"] = _best(walk_xslt, repeat)
        times["lines-walk"] = _best(walk, repeat)  # the lines of the last walk_xslt
        fast = walk_xslt().geometry
    finally:
        GeometryReader._members = own  # type: ignore[method-assign]
    plain = walk().geometry
    if (fast.rings(), fast.ids) != (plain.rings(), plain.ids):
        raise AssertionError(f"{path.name}: the XSLT's polygons differ from the walk's")
    times["xslt"] = _best(lambda: str(xslt(model)), repeat)
    times["xpath"] = _best(lambda: xpath(model), repeat)
    times["walk"] = min(times["walk"], _best(walk, repeat))
    times["surfaces"] = float(len(lines))
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args()
    columns = ("walk", "bare", "xslt", "xpath", "lines-walk", "walk+xslt", "surfaces")
    head = f"{'file':44}" + "".join(f" {c:>10}" for c in columns)
    print(f"CPU ms, best of {args.repeat}\n{head}\n{'-' * len(head)}")
    for path in args.files:
        times = measure(path, args.repeat)
        print(
            f"{path.name[:44]:44}"
            + "".join(f" {times[c]:10.{0 if c == 'surfaces' else 1}f}" for c in columns)
        )


if __name__ == "__main__":
    main()
