"""A CQL2 text filter applied by citypipe, for services that cannot apply it themselves.

OGC API - Features servers without Part 3 (filtering) and WFS servers take no CQL2; the user's
`--filter` still means the same there: the whole layer is harvested (and checked complete) and
the records whose properties do not match are dropped before harmonisation. pygeofilter parses
the text (CQL2 text, as OGC API Part 3 defines it) and compiles it to a Python predicate over
a record's properties. Only property predicates are evaluated here: a spatial or temporal one
would need the geometry in the filter's CRS, so it is refused with the way round it (`--bbox`,
`--datetime`) rather than answered wrongly.

pygeofilter (with lark and dateparser) is imported when a filter is made, not with the module:
detecting a file's format imports every connector, and it would cost each ingest a second and
11 MB for nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from citypipe.connectors.base import SourceBatch
from citypipe.connectors.batch_rows import take
from citypipe.geo.errors import ConfigurationError

__all__ = ["PropertyFilter"]


class PropertyFilter:
    """A CQL2 text expression on properties: parsed once (a mistake is refused before any
    request), then applied to records."""

    def __init__(self, text: str) -> None:
        from lark.exceptions import LarkError
        from pygeofilter.parsers.cql2_text import parse

        self.text = text
        try:
            self.tree = parse(text)
        except (LarkError, ValueError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigurationError(f"filter {text!r} is not CQL2 text: {first}") from None
        self._predicate: Callable[[Mapping[str, Any]], bool] | None = None

    def check_local(self) -> None:
        """Refuse what citypipe cannot evaluate itself: predicates on geometry or time, the
        server's business (`bbox`, `datetime`), never guessed."""
        from pygeofilter import ast

        not_local = (ast.SpatialComparisonPredicate, ast.Relate, ast.BBox, ast.TemporalPredicate)
        for node in _nodes(self.tree, ast.Node):
            if isinstance(node, not_local):
                raise ConfigurationError(
                    f"filter {self.text!r}: the server does not filter (no CQL2 conformance) "
                    f"and citypipe filters locally on properties only, not "
                    f"{type(node).__name__}; use --bbox or --datetime"
                )

    def matches(self, properties: Mapping[str, Any]) -> bool:
        """Whether a record with `properties` is kept. A comparison with a missing or null
        value, or of values of different types, does not match (CQL2's unknown is not true)."""
        if self._predicate is None:
            from pygeofilter.backends.native.evaluate import NativeEvaluator

            self.check_local()
            self._predicate = NativeEvaluator(use_getattr=False).evaluate(self.tree)
        try:
            return bool(self._predicate(properties))
        except (TypeError, AttributeError, ValueError):
            return False

    def select(self, batch: SourceBatch) -> SourceBatch:
        """The batch with only its matching records (every aligned sequence cut alike)."""
        return take(batch, np.fromiter(map(self.matches, batch.properties), bool, len(batch)))


def _nodes(node: Any, kind: Any) -> Iterator[Any]:
    """The node and every node below it (`kind`: pygeofilter's ast.Node)."""
    yield node
    if isinstance(node, kind):
        for child in node.get_sub_nodes():
            yield from _nodes(child, kind)
