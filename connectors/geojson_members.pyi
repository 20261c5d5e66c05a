"""A GeoJSON batch's members, compiled (geojson_members.pyx): what mypy sees of it."""

from collections.abc import Callable
from typing import Any

def members(
    features: Any, geometry_key: str, collection_class: Any, id_text: Callable[[Any], str]
) -> tuple[
    list[str | None],
    list[dict[str, Any]],
    list[str | None],
    list[Any],
    list[Any],
    list[int],
    list[int],
    list[int],
    list[int],
]: ...
