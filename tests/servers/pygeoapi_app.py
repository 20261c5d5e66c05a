"""pygeoapi as the tests run it, in its own venv (.venv-pygeoapi): `python pygeoapi_app.py
CONFIG.yml` writes the OpenAPI document beside the config and serves on the config's bind
address until killed.

Also the one provider the tests add, `CQLGeoJSONProvider`: none of pygeoapi's file providers
honours a CQL2 `filter` (only PostgreSQL, Elasticsearch, Oracle... do; the GeoJSON provider
ignores it silently), so this one applies pygeoapi's own parsed filter with pygeofilter's
native evaluator before paging, and `datetime` (an instant or an interval, `..` open) on the
collection's `time_field` (a date counts as its midnight, UTC), which the GeoJSON provider
ignores too. Everything else is the stock GeoJSON provider.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pygeoapi.provider.geojson import GeoJSONProvider
from pygeoapi.util import crs_transform
from pygeofilter.backends.native.evaluate import NativeEvaluator


class CQLGeoJSONProvider(GeoJSONProvider):
    """The GeoJSON provider, with a CQL2 filter evaluated over the features' properties."""

    @crs_transform
    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        properties: list[tuple[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        filterq: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        data = self._load(
            bbox=bbox or [],
            skip_geometry=skip_geometry,
            properties=properties or [],
            select_properties=select_properties or [],
        )
        if filterq is not None:
            matches = NativeEvaluator(use_getattr=False).evaluate(filterq)
            data["features"] = [f for f in data["features"] if matches(f["properties"])]
        when = kwargs.get("datetime_")
        if when and self.time_field:
            data["features"] = [
                f for f in data["features"] if _within(f["properties"].get(self.time_field), when)
            ]
        data["numberMatched"] = len(data["features"])
        data["features"] = [] if resulttype == "hits" else data["features"][offset : offset + limit]
        data["numberReturned"] = len(data["features"])
        return data


def _instant(text: str) -> datetime:
    found = datetime.fromisoformat(text)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _within(value: Any, interval: str) -> bool:
    """Whether a feature's time `value` is in `interval` (`a/b`, `a/..`, `../b` or an instant)."""
    if not value:
        return False
    start, _, end = interval.partition("/") if "/" in interval else (interval, "", interval)
    when = _instant(str(value))
    after = start in ("", "..") or when >= _instant(start)
    return after and (end in ("", "..") or when <= _instant(end))


def main(config: Path) -> None:
    from pygeoapi.openapi import generate_openapi_document
    from werkzeug.serving import run_simple

    openapi = config.with_name("openapi.yml")
    with config.open(encoding="utf-8") as fh:
        openapi.write_text(generate_openapi_document(fh, "yaml"), encoding="utf-8")
    os.environ["PYGEOAPI_CONFIG"] = str(config)
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi)
    from pygeoapi.flask_app import APP, CONFIG  # reads the two variables on import

    bind = CONFIG["server"]["bind"]
    run_simple(bind["host"], int(bind["port"]), APP, threaded=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
