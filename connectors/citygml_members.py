"""Where a CityGML document's members start, and whether a run of them stands alone: byte
scans of the file mapped, for reading it by ranges (citygml_ranges) and chunks (citygml_claims).

A run of members stands alone where nothing a member holds reaches out of it: every
xlink:href of a member names a gml:id of that member, and there are no appearances, versions,
feature members, comments or CDATA (citygml_ranges' docstring says why).
"""

from __future__ import annotations

import mmap
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

try:  # the scan compiled (ranges_scan.pyx), where it built; else the Python scan below
    from citypipe.connectors.ranges_scan import alone as _compiled_alone
except ImportError:
    _compiled_alone = None

__all__ = ["SCAN_BYTES", "member_start", "stand_alone"]

_MEMBER = b"cityObjectMember"
_OPENS = re.compile(rb"<(?:[\w.-]+:)?\Z")
"""What precedes the member's name in its start tag (looked for in the 64 bytes before it)."""
_CLOSES = re.compile(rb"</(?:[\w.-]+:)?\Z")
_NOT_ALONE = ((b"<!", 1), (b"Version", 0), (b"Appearance", 0), (b"featureMember", 7))
"""Bytes whose presence in a range (after the CityModel's start tag) keeps it from being read
alone: comments and CDATA, versions and their transitions (they annotate objects of other
members), appearances, feature members (members the ranges are not cut at); each with the
index of a byte rare in GML to look for first (memchr's speed), or -1 (memmem: slower than
memchr for `A` or `M`, the NRW tile's 1,742 and 5,144 a million bytes, on every corpus file)."""
SCAN_BYTES = 8 << 20
"""Bytes of a range scanned at once (`stand_alone`): its memory, not the range's."""
_HREF = re.compile(rb"""href\s*=\s*["']#?([^"']*)["']""")
_ID = re.compile(rb""":id\s*=\s*["']([^"']*)["']""")


def stand_alone(path: Path, begin: int, end: int, links: bool) -> bool:
    """Whether the members in bytes `begin` to `end` of `path` stand alone (`links`: their
    xlinks checked too), by a byte scan of whole members, about `SCAN_BYTES` at a time, in the
    file mapped (not copied: each window's pages are let go once scanned)."""
    words = _NOT_ALONE if links else _NOT_ALONE[:2]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if len(data) < end:
            return False  # the file ended before the range did
        alone = _compiled_alone or _alone
        look = begin
        while (look := min(look + SCAN_BYTES, end)) < end:
            whole = _last_member_start(data, begin, look)  # the members before it are whole
            if whole > begin:
                if not alone(data, begin, whole, words, links):
                    return False
                _let_go(data, begin, whole)
                begin = look = whole
        return alone(data, begin, end, words, links)


def _tag_start(data: Any, i: int) -> int | None:
    """Where the cityObjectMember start tag whose name is at `i` begins; None where the name at
    `i` starts no such tag (an end tag, text, a longer name)."""
    opening = _OPENS.search(data[max(i - 64, 0) : i])
    after = data[i + len(_MEMBER) : i + len(_MEMBER) + 1]
    if opening and len(after) == 1 and after in b" \t\r\n>":
        return i - len(opening.group())
    return None


def member_start(data: Any, at: int) -> int | None:
    """The offset of the first cityObjectMember start tag from `at` on."""
    i = data.find(_MEMBER, at)
    while i >= 0:
        if (start := _tag_start(data, i)) is not None:
            return start
        i = data.find(_MEMBER, i + 1)
    return None


def _let_go(data: mmap.mmap, begin: int, end: int) -> None:
    """Drop the mapped pages of data[begin:end] from this process's memory (they stay in the
    system's cache): a scan's memory is a window's, not the range's."""
    first, last = begin - begin % mmap.PAGESIZE, end - end % mmap.PAGESIZE
    if last > first and hasattr(mmap, "MADV_DONTNEED"):
        data.madvise(mmap.MADV_DONTNEED, first, last - first)


def _last_member_start(data: Any, begin: int, end: int) -> int:
    """The offset of the last cityObjectMember start tag after `begin` and before `end`
    (`begin`: none)."""
    i = data.rfind(_MEMBER, begin, end)
    while i > begin:
        if (start := _tag_start(data, i)) is not None and start > begin:
            return start
        i = data.rfind(_MEMBER, begin, i)
    return begin


def _alone(data: Any, begin: int, end: int, words: Any, links: bool) -> bool:
    """Whether data[begin:end] (whole members) stands alone."""
    if any(_occurs(data, word, rare, begin, end) for word, rare in words):
        return False
    if not links:
        return True
    starts = _member_starts(data, begin, end)
    if starts is None:
        return False
    for a, b in pairwise([begin, *starts, end]):
        hrefs = _HREF.findall(data, a, b)
        if hrefs and not set(hrefs) <= set(_ID.findall(data, a, b)):
            return False
    return True


def _occurs(data: Any, word: bytes, rare: int, begin: int, end: int) -> bool:
    """Whether `word` occurs in data[begin:end], looking for its byte `rare` first."""
    if rare < 0:
        return data.find(word, begin, end) >= 0
    i = data.find(word[rare : rare + 1], begin + rare, end)
    while i >= 0:
        if data[i - rare : i - rare + len(word)] == word:
            return True
        i = data.find(word[rare : rare + 1], i + 1, end)
    return False


def _member_starts(data: Any, begin: int, end: int) -> list[int] | None:
    """The members' start tags in data[begin:end], each followed by its end tag before the
    next; None where the name occurs otherwise (nested, in text)."""
    starts: list[int] = []
    inside = False
    i = data.find(_MEMBER, begin, end)
    while i >= 0:
        if not inside and (start := _tag_start(data, i)) is not None:
            starts.append(start)
        elif not (inside and _CLOSES.search(data[max(i - 64, 0) : i])):
            return None
        inside = not inside
        i = data.find(_MEMBER, i + len(_MEMBER), end)
    return None if inside else starts
