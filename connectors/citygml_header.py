"""What a CityGML document says before its first member: its version and the CityModel's CRS.

Read before any object, so that a document that is not CityGML, declares a DTD (entity
expansion is a known attack) or is not well-formed is refused with a reason that says so.
`declared_srs_names` finds the CRS of a document that names it on some object only.

A CityModel need not be the document's root: a WFS GetFeature answer carries it in a
wfs:member of a wfs:FeatureCollection (3DCityDB's WFS), an export in an envelope of its own.
Such a wrapper is read where it holds CityModels only (and its own envelope or description,
`WRAPPER_EXTRAS`), all at one depth; anything else beside them refuses the document naming it,
rather than reading half of it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from citypipe.connectors import documents
from citypipe.connectors.citygml_values import namespace
from citypipe.connectors.gml import GML_NAMESPACES, GeometryError, local_name, srs_dimension
from citypipe.connectors.xml_safety import DOCTYPE, PARSER, not_well_formed, refuse_dtd
from citypipe.geo.errors import DataError

__all__ = [
    "GML",
    "MEMBERS",
    "MODULE",
    "PARSER",
    "Header",
    "WrapperError",
    "declared_srs_names",
    "model_header",
    "model_members",
    "own_members",
    "parsed_model",
    "read_header",
    "syntax_error",
]

GML = {"1.0": GML_NAMESPACES[0], "2.0": GML_NAMESPACES[0], "3.0": GML_NAMESPACES[1]}
"""The GML namespace of each CityGML version."""
MEMBERS = (
    "cityObjectMember",
    "featureMember",
    "featureMembers",
    "member",
    "appearanceMember",
    "versionMember",
    "versionTransitionMember",
)
"""The CityModel's member properties (a WFS FeatureCollection's too: `member`, WFS 2.0's)."""
WRAPPER_EXTRAS = frozenset({"boundedBy", "description", "name", "metaDataProperty", "identifier"})
"""What a wrapper may hold beside its CityModels: what it says of itself (its envelope)."""


WHOLE_BYTES = 1 << 23
"""Documents parsed whole before their members are handed over, up to this size (their tree
a few times that); a larger one is parsed as it is read, its members freed batch by batch."""
MAPPED_FROM = 1 << 19
"""Documents parsed whole are parsed from the file mapped from this size (`_mapped`); a smaller
one is read, which costs less than mapping it (sig3d's 15 kB: 0.080 against 0.087 ms, best of
200); Melbourne's 569 kB costs about the same either way in ingests (1.78 / 2.15 read, 1.85 /
2.08 ms mapped, min / median of 30)."""
_MEMBER_TAGS = [f"{{*}}{m}" for m in MEMBERS]


def model_members(
    f: BinaryIO, *, huge_tree: bool, blanks: bool = True, depth: int = 0
) -> Iterator[tuple[Any, Any]]:
    """The CityModel's own members of any version (none is lost unread), each with the
    CityModel, once the parse of `f` has passed its end; members of nested models are not
    its own. `depth` wrapper elements hold the CityModels (`Header.depth`; 0: the root is
    one), which are checked to hold nothing else once read (`wrapper_content`).
    `blanks` off drops the whitespace between elements (libxml2's keepBlanks off: a leaf's
    text is kept, blank or not), for a tree whose XML is not serialised.

    A document of up to `WHOLE_BYTES` whose root holds the members is parsed whole, then its
    members handed over: the push parse's hook on every element start, which matches its tag
    against the members', cost more than the tree (parsed and freed, alternated, mean of 60:
    PLATEAU 5.43 against 4.74 ms, Melbourne 2.05 against 1.80). In a larger one (or a wrapped
    CityModel), a member is known whole when the next one starts (or the document ends):
    iterparse asked for start events alone wraps libxml2's start of every element, not its end
    too (PLATEAU's parse 5.0 -> 4.3 ms, Melbourne's 2.0 -> 1.7)."""
    options = _options(huge_tree, blanks)
    mapped = _mapped(f) if depth == 0 else None
    if mapped is not None:
        yield from own_members(_parsed_mapped(mapped, options))
        return
    head = _read_up_to(f, WHOLE_BYTES + 1)
    if depth == 0 and len(head) <= WHOLE_BYTES:
        root = etree.fromstring(head, etree.XMLParser(**options, **PARSER))
        del head  # not held while the members are read
        yield from own_members(root)
        return
    rest = iter(partial(f.read, 1 << 15), b"")
    parse = _Starts(chain(iter([head]), rest), tag=_MEMBER_TAGS, **options)
    del head  # fed first, then let go (chain keeps its arguments: a list would hold it)
    last = None  # the model last accepted: its members are not walked up from again
    held = None  # the member last accepted, whole once another is
    try:
        for member in parse:
            model = member.getparent()
            if model is None:
                continue
            if depth == 0:
                if model.getparent() is not None:
                    continue
            elif model is last or (
                _is_model(model) and sum(1 for _ in model.iterancestors()) == depth
            ):
                last = model
            else:
                continue
            if held is not None:
                yield held
            held = model, member
    finally:
        parse.let_go()
    if held is not None:
        yield held
    if depth and (found := wrapper_content(parse.root, depth)):
        raise WrapperError(found, parse.root)


def own_members(root: Any) -> Iterator[tuple[Any, Any]]:
    """The members of the CityModel `root`, each with it."""
    for member in root.iterchildren(*_MEMBER_TAGS):
        yield root, member


def _options(huge_tree: bool, blanks: bool) -> dict[str, bool]:
    """The parser's options of `model_members` (`PARSER`'s beside them)."""
    return {
        "remove_comments": True, "remove_pis": True, "huge_tree": huge_tree,
        "remove_blank_text": not blanks,
    }  # fmt: skip


def _parsed_mapped(mapped: mmap.mmap, options: dict[str, bool]) -> Any:
    """The root of the document `mapped` (`_mapped`), parsed whole with `options`."""
    with mapped, memoryview(mapped) as text:
        return etree.fromstring(text, etree.XMLParser(**options, **PARSER))


def parsed_model(f: BinaryIO, *, huge_tree: bool, blanks: bool = True) -> Any | None:
    """The root of the document `f` parsed whole as `model_members` parses it (its options),
    where that parse would read it whole: a regular file of up to `WHOLE_BYTES` whose root
    element is a CityModel (by its first bytes, which declare no DTD); None otherwise, `f`
    not read. Its header is then read from that tree (`model_header`) and its members are
    the tree's (`own_members`), not parsed again: the header's own parse of its first kB
    (Melbourne's 0.14 ms, the 15 kB files' 0.13) costs as much as a small file's whole one."""
    try:
        fd = f.fileno()
        info = os.fstat(fd)
    except (AttributeError, OSError, ValueError):  # not a file
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > WHOLE_BYTES or f.tell():
        return None
    head = os.pread(fd, 1 << 12, 0)
    root = documents.xml_root(head)
    if root is None or root[1] != b"CityModel" or DOCTYPE.search(head):
        return None
    options = _options(huge_tree, blanks)
    mapped = _mapped(f)
    if mapped is not None:
        return _parsed_mapped(mapped, options)
    return etree.fromstring(f.read(), etree.XMLParser(**options, **PARSER))


def _mapped(f: BinaryIO) -> mmap.mmap | None:
    """`f` mapped read-only, where it is a regular file of `MAPPED_FROM` to `WHOLE_BYTES` bytes,
    not read yet (its offset then set to its end, as a read leaves it); else None. Parsed from
    the mapping, the document is not copied into a buffer of fresh pages, which the kernel
    zeroes and faults in at every read (the NRW tile's parse faulted 3,872 pages, 61 so). The
    parse in ingests, old and new alternated, min / median of 30 (CPU with the system's, load
    6-10): NRW 17.1 / 17.8 -> 15.0 / 15.3 ms, Munich 10.7 / 11.2 -> 9.4 / 9.9, PLATEAU 2.0
    4.85 / 5.44 -> 4.14 / 4.65. A file cut short while it is parsed ends the process (SIGBUS),
    as citygml_ranges' scan of a large one would."""
    try:
        fd = f.fileno()
        info = os.fstat(fd)
    except (AttributeError, OSError, ValueError):  # not a file (a range's pieces: no fileno)
        return None
    size = info.st_size
    if not stat.S_ISREG(info.st_mode) or not MAPPED_FROM <= size <= WHOLE_BYTES or f.tell():
        return None
    try:
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # a file system that maps no files: it is read
        return None
    f.seek(0, os.SEEK_END)
    return mapped


def _read_up_to(f: BinaryIO, size: int) -> bytes:
    """The first `size` bytes of `f` (all of it if shorter), however few each read returns
    (a range's pieces: citygml_ranges)."""
    parts = []
    while size and (data := f.read(size)):
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


class _Starts:
    """The elements whose start libxml2's push parser reports, fed the document's `chunks`
    (what iterparse does), and the root once parsed to the end; `options` are the parser's
    (`PARSER` always).

    The parser keeps its document (its tag matcher the last it matched in, its context one
    parsed part way, its events those not asked for), and the document keeps the parser:
    iterparse's reference cycle, whose tree only the cycle collector freed (PLATEAU: 1.4-2.5 ms
    a collection, every second ingest). `let_go` breaks it, so that the tree is freed as soon as
    nothing else holds it."""

    def __init__(self, chunks: Iterator[bytes], **options: Any) -> None:
        self._chunks = chunks
        self._parser = etree.XMLPullParser(events=("start",), **options, **PARSER)
        self._events = self._parser.read_events()
        self.root: Any = None

    def __iter__(self) -> Iterator[Any]:
        for data in self._chunks:
            self._parser.feed(data)
            for _, elem in self._events:
                yield elem
        self.root = self._parser.close()  # raises where the document is cut short
        for _, elem in self._events:
            yield elem

    def let_go(self) -> None:
        """Have the parser let go of its document, whether parsed to its end or not."""
        for _ in self._events:  # each holds its element
            pass
        if self.root is None:  # a document left part way (or refused)
            with contextlib.suppress(etree.XMLSyntaxError):
                self._parser.close()
        self._parser.feed(b"<_/>")  # an empty document takes its place in the tag matcher
        self._parser.close()


class WrapperError(DataError):
    """A wrapper holding more than CityModels (the caller names the document)."""

    def __init__(self, found: str, wrapper: Any) -> None:
        super().__init__(
            f"{found} beside the CityModel in its wrapper <{wrapper.tag}>: a wrapper is read "
            "where it holds CityModels only"
        )


def _is_model(elem: Any) -> bool:
    """Whether `elem` is a CityModel of a CityGML version (its core's namespace)."""
    return local_name(elem.tag) == "CityModel" and bool(_CORE.fullmatch(namespace(elem.tag)))


def wrapper_content(elem: Any, depth: int) -> str | None:
    """What the wrapper `elem` holds, `depth` levels above its CityModels, that is neither a
    CityModel there, nor an element on the way to one, nor `WRAPPER_EXTRAS`: its tag (the
    first such), or None."""
    for child in elem.iterchildren(etree.Element):
        if found := _stray(child, depth - 1):
            return found
    return None


def _stray(elem: Any, levels: int) -> str | None:
    """`wrapper_content` of the element `elem`, `levels` above the CityModels."""
    if local_name(elem.tag) in WRAPPER_EXTRAS:
        return None
    if levels == 0:
        return None if _is_model(elem) else f"<{elem.tag}>"
    return wrapper_content(elem, levels)


_CORE = re.compile(r"http://www\.opengis\.net/citygml/([123]\.0)")
MODULE = re.compile(r"http://www\.opengis\.net/citygml/(?:[a-z]+/)?([123]\.0)")
"""The CityGML version of the core's or a module's namespace (building/2.0)."""
_SRS_NAME = re.compile(rb'srsName\s*=\s*["\']([^"\']+)["\']')


@dataclass(frozen=True)
class Header:
    """What the CityModel says before its first member."""

    version: str
    srs_name: str | None
    srs_dimension: int
    depth: int = 0
    """The wrapper elements around the CityModel (0: it is the root; a WFS answer's
    wfs:FeatureCollection and wfs:member: 2)."""


def read_header(path: Path) -> Header:
    """Read up to the first member: the version, the CityModel's CRS; refuse DTDs, and a
    wrapper holding more than CityModels before the first."""
    root = model = None
    version, depth = "", 0
    with open(path, "rb") as f:
        # a header's few kB at a time: a larger chunk parses members too
        parse = _Starts(iter(partial(f.read, 1 << 12), b""))
        try:
            for elem in parse:
                if root is None:
                    root = elem
                    refuse_dtd(path, elem)
                    if local_name(elem.tag) == "CityModel" and not _is_model(elem):
                        break  # a CityModel of no CityGML version: refused below
                if model is None:
                    if found := _model(path, root, elem):
                        model, version, depth = found
                        if model is not elem:  # a WFS answer's: `elem` is its first object
                            break
                elif elem.getparent() is model and local_name(elem.tag) in MEMBERS:
                    break
            srs_name, dimension = _model_envelope(model, version)
        except etree.XMLSyntaxError as e:
            raise syntax_error(path, e) from e
        except GeometryError as e:
            raise DataError(f"{path}: the CityModel's envelope: {e}") from e
        finally:
            parse.let_go()
    if root is None:
        raise DataError(f"{path}: empty document")
    if model is None:
        raise DataError(f"{path}: not CityGML (the root element is {root.tag}, and no CityModel)")
    return Header(version, srs_name, dimension, depth)


def model_header(path: Path, root: Any) -> Header:
    """`read_header`'s Header of a document parsed whole (`parsed_model`: its root a CityModel
    element)."""
    refuse_dtd(path, root)
    found = _CORE.fullmatch(namespace(root.tag))
    if found is None:
        raise DataError(f"{path}: not CityGML (the root element is {root.tag}, and no CityModel)")
    try:
        srs_name, dimension = _model_envelope(root, found.group(1))
    except GeometryError as e:
        raise DataError(f"{path}: the CityModel's envelope: {e}") from e
    return Header(found.group(1), srs_name, dimension)


def _model(path: Path, root: Any, elem: Any) -> tuple[Any, str, int] | None:
    """(the model, its CityGML version, the elements wrapping it) where `elem` starts one: a
    CityModel, or the first city object of the feature collection `root`; else None."""
    if _is_model(elem):
        return elem, _CORE.fullmatch(namespace(elem.tag)).group(1), _wrapped(path, root, elem)  # type: ignore[union-attr]
    found = _collected(root, elem)
    return None if found is None else (root, found, 0)


def _model_envelope(model: Any, version: str) -> tuple[str | None, int]:
    """The srsName and srsDimension of the CityModel's (or collection's) envelope, which comes
    before its first member (whole by that member's start); (None, 3) without one."""
    box = None if model is None else model.find(f"{{*}}boundedBy/{{{GML[version]}}}Envelope")
    return (None, 3) if box is None else (box.get("srsName"), _envelope_dimension(box))


def _collected(root: Any, elem: Any) -> str | None:
    """The CityGML version of `elem` where it is a city object in a member of the feature
    collection `root` (a WFS GetFeature answer of 3DCityDB's, whose members are the objects
    a CityModel's would be: read as its members), else None."""
    member = elem.getparent()
    if member is None or member.getparent() is not root or local_name(member.tag) not in MEMBERS:
        return None
    m = MODULE.fullmatch(namespace(elem.tag))
    return m.group(1) if m and local_name(root.tag) == "FeatureCollection" else None


def _wrapped(path: Path, root: Any, model: Any) -> int:
    """How many elements wrap `model`, the document's first CityModel; refused where one of
    them holds something else before it (what is parsed so far: `wrapper_content`)."""
    depth = sum(1 for _ in model.iterancestors())
    if depth and (found := wrapper_content(root, depth)):
        raise DataError(f"{path}: {WrapperError(found, root)}")
    return depth


def _envelope_dimension(envelope: Any) -> int:
    """The srsDimension the CityModel's envelope declares (3 where it declares none), which
    its positions without their own have. An envelope whose corners all hold another count of
    numbers contradicts it: which one the positions have is unknown, and reading them with
    the wrong one would put every object somewhere else (3D positions read in pairs)."""
    dims = [envelope.get("srsDimension")] + [c.get("srsDimension") for c in envelope]
    declared = next((d for d in dims if d), None)
    dimension = srs_dimension(declared or "3")
    counts = {len((corner.text or "").split()) for corner in envelope}
    if declared and len(counts) == 1 and counts != {dimension} and counts <= {2, 3}:
        raise GeometryError(
            f"srsDimension {declared!r}, but its corners hold {counts.pop()} numbers each"
        )
    return dimension


def syntax_error(path: Path, e: etree.XMLSyntaxError) -> DataError:
    """The error to raise for a document lxml cannot parse: a DTD's refusal if it has one."""
    with open(path, "rb") as f:
        return not_well_formed(path, e, f.read(1 << 16))


def declared_srs_names(path: Path) -> set[str]:
    """Every srsName value in the file, by a byte scan (only for documents that need it)."""
    names: set[bytes] = set()
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            block = tail + chunk
            names.update(_SRS_NAME.findall(block))
            tail = block[-256:]
    return {n.decode("utf-8", "replace") for n in names}
