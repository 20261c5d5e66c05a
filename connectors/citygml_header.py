"""What a CityGML document says before its first member: its version and the CityModel's CRS.

Read before any object, so that a document that is not CityGML, declares a DTD (entity
expansion is a known attack) or is not well-formed is refused with a reason that says so.
`declared_srs_names` finds the CRS of a document that names it on some object only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree

from citypipe.connectors.citygml_values import namespace
from citypipe.connectors.gml import GML_NAMESPACES, GeometryError, local_name, srs_dimension
from citypipe.connectors.xml_safety import PARSER, not_well_formed, refuse_dtd
from citypipe.geo.errors import DataError

__all__ = [
    "GML",
    "MEMBERS",
    "PARSER",
    "Header",
    "declared_srs_names",
    "model_members",
    "read_header",
    "syntax_error",
]

GML = {"1.0": GML_NAMESPACES[0], "2.0": GML_NAMESPACES[0], "3.0": GML_NAMESPACES[1]}
"""The GML namespace of each CityGML version."""
MEMBERS = (
    "cityObjectMember",
    "featureMember",
    "featureMembers",
    "appearanceMember",
    "versionMember",
    "versionTransitionMember",
)
"""The CityModel's member properties."""


def model_members(
    f: BinaryIO, *, huge_tree: bool, blanks: bool = True
) -> Iterator[tuple[Any, Any]]:
    """The CityModel's own members of any version (none is lost unread), each with the
    CityModel, as the parse of `f` ends them; members of nested models are not its own.
    `blanks` off drops the whitespace between elements (libxml2's keepBlanks off: a leaf's
    text is kept, blank or not), for a tree whose XML is not serialised."""
    tags = [f"{{*}}{m}" for m in MEMBERS]
    context = etree.iterparse(
        f, events=("end",), tag=tags, remove_comments=True, remove_pis=True,
        huge_tree=huge_tree, remove_blank_text=not blanks, **PARSER,
    )  # fmt: skip
    for _, member in context:
        model = member.getparent()
        if model is not None and model.getparent() is None:
            yield model, member


_CORE = re.compile(r"http://www\.opengis\.net/citygml/([123]\.0)")
_SRS_NAME = re.compile(rb'srsName\s*=\s*["\']([^"\']+)["\']')


@dataclass(frozen=True)
class Header:
    """What the CityModel says before its first member."""

    version: str
    srs_name: str | None
    srs_dimension: int


def read_header(path: Path) -> Header:
    """Read up to the first member: the version, the CityModel's CRS; refuse DTDs."""
    root = None
    version, envelope, srs_name, dimension = "", "", None, 3
    with open(path, "rb") as f:
        try:
            for event, elem in etree.iterparse(f, events=("start", "end"), **PARSER):
                if root is None:
                    root = elem
                    refuse_dtd(path, elem)
                    version = _version(path, elem)
                    envelope = f"{{{GML[version]}}}Envelope"
                parent = elem.getparent()
                if event == "start" and parent is root and local_name(elem.tag) in MEMBERS:
                    break
                if event == "end" and elem.tag == envelope and parent.getparent() is root:
                    srs_name = elem.get("srsName")
                    dimension = _envelope_dimension(elem)
        except etree.XMLSyntaxError as e:
            raise syntax_error(path, e) from e
        except GeometryError as e:
            raise DataError(f"{path}: the CityModel's envelope: {e}") from e
    if root is None:
        raise DataError(f"{path}: empty document")
    return Header(version, srs_name, dimension)


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


def _version(path: Path, root: Any) -> str:
    m = _CORE.fullmatch(namespace(root.tag))
    if local_name(root.tag) != "CityModel" or not m:
        raise DataError(f"{path}: not CityGML (the root element is {root.tag})")
    return m.group(1)


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
