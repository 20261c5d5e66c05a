"""The project's safe XML reading: lxml options that fetch nothing and expand no entity, and
the refusal of documents with a DTD (entity expansion is a known attack).

Every XML reader (CityGML, WFS GetFeature responses) parses with `PARSER` and refuses a
DOCTYPE with the same words.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import etree

from citypipe.geo.errors import DataError

__all__ = ["DOCTYPE", "PARSER", "dtd_refused", "not_well_formed", "refuse_dtd"]

PARSER = {"resolve_entities": False, "no_network": True, "load_dtd": False}
"""lxml parser options: no entities, no DTD, nothing fetched."""
DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY")


def dtd_refused(name: str | Path) -> DataError:
    return DataError(
        f"{name}: DTD/entities are not allowed (the document has a DOCTYPE "
        "declaration; entity expansion is a known attack, citypipe does not read it)"
    )


def refuse_dtd(name: str | Path, root: Any) -> None:
    """Refuse the document whose root element is `root` if it declares a DTD."""
    info = root.getroottree().docinfo
    if info.internalDTD is not None or info.system_url or info.public_id:
        raise dtd_refused(name)


def not_well_formed(name: str | Path, e: etree.XMLSyntaxError, head: bytes) -> DataError:
    """The error for a document lxml cannot parse (`head`: its first bytes): a DTD's refusal
    if it has one (libxml2 may stop at an entity bomb before saying so)."""
    if DOCTYPE.search(head):
        return dtd_refused(name)
    hint = (
        " (for text nodes over 10 MB pass the option huge_tree: true)" if "huge" in str(e) else ""
    )
    return DataError(f"{name}: not well-formed XML, line {e.lineno}: {e.msg}{hint}")
