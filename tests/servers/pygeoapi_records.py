"""An OGC API - Records catalogue beside the features, as pygeoapi serves one (its TinyDB
catalogue provider, collection `itemType: record`, on the same /items as features): a record
per test layer, describing it (facts.py), with the nested members records have (contacts,
themes, links), ids with spaces and non-ASCII letters, and one record without a geometry (a
service's entry with no extent). The tests compare against `RECORDS`, never the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from servers.facts import LAYERS, Layer

__all__ = ["CATALOGUE", "RECORDS", "records_resource"]

CATALOGUE = "katalog"
"""The records collection's id."""


def _polygon(box: tuple[float, float, float, float]) -> dict[str, Any]:
    w, s, e, n = box
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _record(layer: Layer) -> dict[str, Any]:
    return {
        "id": layer.title,  # "Parkplätze Esslingen am Neckar": spaces and an umlaut
        "type": "Feature",
        "geometry": _polygon(layer.wgs84_bbox),
        "properties": {
            "type": "dataset",
            "title": layer.title,
            "description": layer.description,
            "keywords": list(layer.keywords),
            "contacts": [{"organization": "citypipe tests", "roles": ["publisher"]}],
            "themes": [{"concepts": [{"id": k} for k in layer.keywords], "scheme": "keywords"}],
            "formats": [{"name": "GeoJSON", "mediaType": "application/geo+json"}],
            "created": "2026-12-01",
        },
        "links": [{"rel": "item", "href": f"../../{layer.name}/items", "title": layer.title}],
    }


RECORDS = (
    *(_record(layer) for layer in LAYERS),
    {
        "id": "Dienst ohne Ausdehnung",
        "type": "Feature",
        "geometry": None,
        "properties": {
            "type": "service",
            "title": "Dienst ohne Ausdehnung",
            "description": "A catalogue entry without an extent",
            "keywords": [],
            "contacts": [],
            "created": "2026-12-02",
        },
        "links": [],
    },
)
"""The catalogue's records, as pygeoapi serves them."""


def records_resource(workdir: Path) -> dict[str, Any]:
    """The catalogue's pygeoapi resource, its TinyDB file written into `workdir`."""
    data = workdir / f"{CATALOGUE}.tinydb"
    table = {str(k + 1): record for k, record in enumerate(RECORDS)}
    data.write_text(json.dumps({"_default": table}, ensure_ascii=False), encoding="utf-8")
    return {
        "type": "collection",
        "title": "Katalog der Testdaten",
        "description": "OGC API - Records over the test layers",
        "keywords": ["Katalog"],
        "extents": {"spatial": {"bbox": [-180, -90, 180, 90]}},
        "providers": [
            {
                "type": "record",
                "name": "TinyDBCatalogue",
                "data": str(data),
                "id_field": "id",
                "time_field": "created",
                "title_field": "title",
            }
        ],
    }
