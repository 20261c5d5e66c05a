"""The warehouse's `relationships` view: NGSI Relationships kept as properties (the target id, or
a list of them, named in `citypipe:relationships`), resolved to features where the lake has
the target."""

from __future__ import annotations

import json
from pathlib import Path

from citypipe.core import warehouse
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake

SPOT = "urn:ngsi-ld:ParkingSpot:santander:daoiz_velarde_1_5:3"
SITE = "urn:ngsi-ld:ParkingSite:santander:daoiz_velarde_1_5"
BUILDING = "urn:ngsi-ld:Building:building-a85e3da145c1"
OWNERS = ["urn:ngsi-ld::cdfd9cb8-ae2b-47cb-a43a-b9767ffd5c84", SITE]


def entity(eid: str, kind: str, **properties: object) -> dict:
    return {
        "type": "Feature",
        "id": eid,
        "geometry": {"type": "Point", "coordinates": [-3.80356167695194, 43.46296641666926]},
        "properties": {"type": kind, **properties},
    }


def geojson(tmp_path: Path, name: str, *features: dict) -> Path:
    path = tmp_path / f"{name}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path


def rows(lake: Lake) -> list[tuple]:
    warehouse.refresh(lake)
    _, found = warehouse.query(
        lake,
        "SELECT from_feature_id, relationship, to_id, to_feature_id FROM relationships "
        "ORDER BY ALL",
    )
    return found


def test_relationships_resolve_to_features_in_the_lake(tmp_path: Path, lake: Lake) -> None:
    spots = geojson(
        tmp_path,
        "spots",
        entity(
            SPOT,
            "ParkingSpot",
            refParkingSite=SITE,
            **{"citypipe:relationships": ["refParkingSite"]},
        ),
        entity(SITE, "ParkingSite"),
    )
    buildings = geojson(
        tmp_path,
        "buildings",
        entity(
            BUILDING,
            "Building",
            owner=OWNERS,
            occupier=[],
            category=["office"],  # not a relationship: not listed
            **{"citypipe:relationships": ["owner", "occupier", "refMissing"]},
        ),
    )
    ingest(spots, "spots", lake, validate=False)
    ingest(buildings, "buildings", lake, validate=False)
    assert rows(lake) == [
        (f"buildings/{BUILDING}", "owner", OWNERS[0], None),  # not in the lake
        (f"buildings/{BUILDING}", "owner", SITE, f"spots/{SITE}"),  # in another source
        (f"spots/{SPOT}", "refParkingSite", SITE, f"spots/{SITE}"),
    ]


def test_a_target_in_two_sources_resolves_to_the_same_source(tmp_path: Path, lake: Lake) -> None:
    site = entity(SITE, "ParkingSite")
    spot = entity(
        SPOT, "ParkingSpot", refParkingSite=SITE, **{"citypipe:relationships": ["refParkingSite"]}
    )
    ingest(geojson(tmp_path, "a", site), "a", lake, validate=False)
    ingest(geojson(tmp_path, "b", spot, site), "b", lake, validate=False)
    ingest(geojson(tmp_path, "c", site), "c", lake, validate=False)
    assert rows(lake) == [(f"b/{SPOT}", "refParkingSite", SITE, f"b/{SITE}")]


def test_a_lake_without_relationships_has_an_empty_view(tmp_path: Path, lake: Lake) -> None:
    ingest(geojson(tmp_path, "s", entity(SITE, "ParkingSite")), "s", lake, validate=False)
    assert rows(lake) == []
