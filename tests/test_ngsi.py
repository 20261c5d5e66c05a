"""NGSI-LD and NGSI v2 entities -> harmonised rows (issue 15): the representations of one entity
agree, observations and relationships are what the files state, structural faults are rejects,
and every entity file of the corpus ingests while its schemas and contexts are refused.

The facts asserted are read off data/samples/ngsi-ld (copies of the corpus's Smart Data Models
examples, data/samples/SOURCES.md).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import orjson
import pytest
import shapely
from conftest import SAMPLES
from hypothesis import given, settings
from pyld import jsonld

from citypipe.cli import main
from citypipe.connectors.base import Observation, SourceBatch
from citypipe.connectors.batch_rows import take
from citypipe.connectors.jsonld_context import CORE_CONTEXT, Contexts, shipped
from citypipe.connectors.ngsi import NGSILDConnector, NGSIv2Connector
from citypipe.connectors.ngsi_entities import DATASETS, RELATIONSHIPS, VIOLATIONS, entity_batch
from citypipe.connectors.registry import detect
from citypipe.core.harmonise import Harmoniser
from citypipe.core.ingest import ingest
from citypipe.core.observations import NO_TIME
from citypipe.geo.errors import NotFeatureData

NGSI = SAMPLES / "ngsi-ld"
DATASET = "urn:ngsi-ld:Dataset:a"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
AQ = "urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00"


def _entity(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def _rows(batch: SourceBatch) -> list[dict[str, Any]]:
    """The batch harmonised (as source `ngsi`), one dict per feature."""
    out = Harmoniser("ngsi", "NGSI-LD", datetime.now(UTC)).harmonise(batch)
    assert out.rejects == []
    return out.features.to_pylist()


# -- the representations of one entity agree -------------------------------------------------

FORMS = [
    (t, other)
    for t in sorted(p.name for p in NGSI.iterdir())
    for other in ("example-keyvalues.jsonld", "example-geojsonfeature.json")
    if (NGSI / t / other).exists()
]
SOURCE_DIFFERENCES = {
    # attributes whose files disagree (read off the files): the rows differ there, and only there
    ("AirQualityObserved", "example-keyvalues.jsonld"): {
        "windDirection",  # 186 normalized, 180 keyValues
        "charge", "pm4", "pressure", "tpc", "tsp",  # in the normalized file only
        VIOLATIONS,  # so the normalized entity's windDirection and tsp break its schema
    },
    ("AirQualityObserved", "example-geojsonfeature.json"): {
        "dateObserved",  # an interval 11:00/12:00 in the GeoJSON file
        # the GeoJSON file spells the pollutants otherwise (CO, NOx ...) under a context
        # (smartdatamodels.org/context.jsonld) that is not shipped, so the names stay apart
        "co", "coLevel", "no", "no2", "nox", "so2", "CO", "CO_Level", "NO", "NO2", "NOx", "SO2",
        "charge", "pm4", "pressure", "tpc", "tsp", VIOLATIONS,
    },
    ("Building", "example-keyvalues.jsonld"): {"address"},  # keyValues adds type PostalAddress
    ("OffStreetParking", "example-keyvalues.jsonld"): {
        "address",  # "Fernandes Tomas" normalized, "Fernandes Tomás" keyValues
        "extCategory",  # normalized only
        "outOfServiceSlotNumber",  # keyValues only
    },
    ("OffStreetParking", "example-geojsonfeature.json"): {
        "address", "modifiedAt", "fourWheelerSlots", "municipalityInfo", "observationDateTime",
        "parkingSiteId", "twoWheelerSlots", "unclassifiedSlots",
    },
    ("OnStreetParking", "example-keyvalues.jsonld"): {
        "fourWheelerSlots", "municipalityInfo", "observationDateTime", "parkingSiteId",
        "twoWheelerSlots", "unclassifiedSlots",  # keyValues only
    },
    ("ParkingSpot", "example-keyvalues.jsonld"): {"status.parkingPermit"},  # a sub-property
    ("TrafficFlowObserved", "example-keyvalues.jsonld"): {"address", "dateObserved"},
}  # fmt: skip


@pytest.mark.parametrize(("kind", "other"), FORMS)
def test_the_forms_of_an_entity_give_the_same_row(kind: str, other: str) -> None:
    normalized = _rows(entity_batch([_entity(NGSI / kind / "example-normalized.jsonld")]))[0]
    row = _rows(entity_batch([_entity(NGSI / kind / other)]))[0]
    for column in ("feature_id", "source_id", "feature_class", "theme", "name", "geometry"):
        assert row[column] == normalized[column], column
    a, b = json.loads(normalized["properties"]), json.loads(row["properties"])
    differ = (a.keys() ^ b.keys()) | {k for k in a.keys() & b.keys() if a[k] != b[k]}
    assert differ == SOURCE_DIFFERENCES.get((kind, other), set())
    assert row["source_id"].startswith(f"urn:ngsi-ld:{kind}:")
    assert row["feature_class"] == kind


def test_every_type_of_the_corpus_has_its_theme() -> None:
    themes = {
        kind: _rows(entity_batch([_entity(NGSI / kind / "example-normalized.jsonld")]))[0]["theme"]
        for kind in sorted(p.name for p in NGSI.iterdir())
    }
    assert themes == {
        "AirQualityObserved": "environment",
        "Building": "building",
        "EVChargingStation": "mobility",
        "OffStreetParking": "parking",
        "OnStreetParking": "parking",
        "ParkingSpot": "parking",
        "TrafficFlowObserved": "transport",
    }


def test_geometries_are_the_locations_as_written() -> None:
    row = _rows(entity_batch([_entity(NGSI / "TrafficFlowObserved/example-keyvalues.jsonld")]))[0]
    line = shapely.from_wkb(row["geometry"])
    assert line.geom_type == "LineString"
    assert line.coords[0] == (-4.73735395519672, 41.6538181849672)
    assert len(line.coords) == 3
    feature = _entity(NGSI / "OffStreetParking/example-geojsonfeature.json")
    point = shapely.from_wkb(_rows(entity_batch([feature]))[0]["geometry"])
    assert (point.x, point.y) == (-8.60961198807, 41.150691773)


@pytest.mark.parametrize(
    "name",
    [
        "OffStreetParking/example-normalized.jsonld",
        "AirQualityObserved/example-normalized-ngsiv2.json",
    ],
)
def test_a_location_stored_as_json_text_is_the_same_geometry(name: str) -> None:
    """Brokers give back a GeoProperty a client stored serialised as the text they got."""
    entity = _entity(NGSI / name)
    as_text = dict(entity, id=entity["id"] + "-text", location=dict(entity["location"]))
    as_text["location"]["value"] = json.dumps(entity["location"]["value"])
    rows = _rows(entity_batch([entity, as_text]))
    assert rows[0]["geometry"] == rows[1]["geometry"]
    place = shapely.from_wkb(rows[1]["geometry"])
    assert [place.x, place.y] == entity["location"]["value"]["coordinates"]


@pytest.mark.parametrize(
    ("name", "typed"),
    [
        ("OffStreetParking/example-normalized.jsonld", "Property"),
        ("AirQualityObserved/example-normalized-ngsiv2.json", "StructuredValue"),
        ("OffStreetParking/example-keyvalues.jsonld", None),
    ],
)
def test_a_location_typed_as_a_property_still_places_the_entity(name: str, typed) -> None:
    """`location` typed Property (NGSI v2: StructuredValue), or in keyValues a JSON text: its
    GeoJSON is the geometry, and no property; a typed Property of another name holding GeoJSON
    stays a property."""
    entity = _entity(NGSI / name)
    place = entity["location"]["value"] if typed else entity["location"]
    mistyped = dict(
        entity, location={"type": typed, "value": place} if typed else json.dumps(place)
    )
    if typed:  # in keyValues a GeoJSON object is a GeoProperty whatever its name
        mistyped["area"] = {"type": typed, "value": place}
    [row] = _rows(entity_batch([mistyped]))
    point = shapely.from_wkb(row["geometry"])
    assert [point.x, point.y] == place["coordinates"]
    properties = json.loads(row["properties"])
    assert "location" not in properties
    assert properties.get("area") == (place if typed else None)


# -- observations ---------------------------------------------------------------------------


def test_air_quality_pollutants_with_their_units_and_time_as_stated() -> None:
    batch = entity_batch([_entity(NGSI / "AirQualityObserved/example-normalized.jsonld")])
    pollutants = {o.attribute: o for o in batch.observations if o.unit_code}
    assert pollutants == {
        name: Observation(0, name, value, None, unit, "2016-03-15T11:00:00", None)
        for name, value, unit in [
            ("co", 500.0, "GP"),
            ("no", 45.0, "GQ"),
            ("no2", 69.0, "GQ"),
            ("nox", 139.0, "GQ"),
            ("so2", 11.0, "GQ"),
        ]
    }
    # every number of the entity is measured: 24 Properties, 6 of them text or objects
    assert len(batch.observations) == 17
    assert {o.attribute: o.value for o in batch.observations}["windDirection"] == 186


def test_an_observed_at_makes_text_an_observation_and_wins_over_the_entity_time() -> None:
    spot = entity_batch([_entity(NGSI / "ParkingSpot/example-normalized.jsonld")])
    assert list(spot.observations) == [
        Observation(0, "status", None, "free", None, "2018-09-21T12:00:00Z", None)
    ]
    street = entity_batch([_entity(NGSI / "OnStreetParking/example-normalized.jsonld")])
    timed = {o.attribute: o.observed_at for o in street.observations}
    assert timed == {
        "availableSpotNumber": "2018-09-12T12:00:00Z",
        "occupiedSpotNumber": "2018-09-12T12:00:00Z",
        "extraSpotNumber": None,  # the entity states no time of its own
        "totalSpotNumber": None,
    }


def test_the_key_values_form_takes_the_entity_s_date_observed() -> None:
    batch = entity_batch([_entity(NGSI / "TrafficFlowObserved/example-keyvalues.jsonld")])
    intensity = next(o for o in batch.observations if o.attribute == "intensity")
    assert intensity == Observation(
        0, "intensity", 197.0, None, None, "2016-12-07T11:10:00/2016-12-07T11:15:00", None
    )
    reversed_lane = next(o for o in batch.observations if o.attribute == "reversedLane")
    assert reversed_lane.value == 0.0  # false


def test_instances_of_several_datasets_are_each_an_observation() -> None:
    entity = {
        "id": "urn:ngsi-ld:WeatherObserved:w1",
        "type": "WeatherObserved",
        "temperature": [
            {"type": "Property", "value": 12.5, "unitCode": "CEL", "datasetId": DATASET},
            {"type": "Property", "value": 13.0, "unitCode": "CEL", "observedAt": "2024-01-01Z"},
        ],
    }
    batch = entity_batch([entity])
    assert batch.properties[0]["temperature"] == 13.0  # the default instance: no datasetId
    assert [(o.value, o.dataset_id, o.observed_at) for o in batch.observations] == [
        (12.5, DATASET, None),
        (13.0, None, "2024-01-01Z"),
    ]


def test_a_multi_attributes_other_instances_are_kept_by_dataset_id() -> None:
    """The default instance (no datasetId) under the attribute's name, as keyValues shows it;
    every other instance, text, relationship and place alike, under DATASETS by its datasetId."""
    street = {"type": "Point", "coordinates": [2.17, 41.38]}
    gps = {"type": "Point", "coordinates": [2.1701, 41.3802]}
    entity = {
        "id": "urn:ngsi-ld:Vehicle:v1",
        "type": "Vehicle",
        "location": [
            {"type": "GeoProperty", "value": street},
            # stored serialised by its client, as some brokers give it back
            {
                "type": "GeoProperty",
                "value": json.dumps(gps),
                "datasetId": "urn:ngsi-ld:Dataset:gps",
            },
        ],
        "status": [
            {"type": "Property", "value": "parked", "datasetId": "urn:ngsi-ld:Dataset:driver"},
            {"type": "Property", "value": "moving"},
            {"type": "Property", "value": "idle", "datasetId": "urn:ngsi-ld:Dataset:fleet"},
        ],
        "owner": [
            {"type": "Relationship", "object": "urn:ngsi-ld:Person:a", "datasetId": DATASET},
        ],
    }
    batch = entity_batch([entity])
    props = batch.properties[0]
    assert props["status"] == "moving" and props["owner"] == "urn:ngsi-ld:Person:a"
    assert props[DATASETS] == {
        "location": {"urn:ngsi-ld:Dataset:gps": gps},
        "status": {"urn:ngsi-ld:Dataset:driver": "parked", "urn:ngsi-ld:Dataset:fleet": "idle"},
    }
    row = _rows(batch)[0]
    assert shapely.from_wkb(row["geometry"]).equals(shapely.geometry.shape(street))


def test_schema_violations_are_listed_and_keep_the_row() -> None:
    batch = entity_batch([_entity(NGSI / "AirQualityObserved/example-normalized.jsonld")])
    # AirQualityObserved/schema.json: windDirection at most 180, tsp an integer
    assert batch.properties[0][VIOLATIONS] == [
        "$.tsp: 73.3 is not of type 'integer'",
        "$.windDirection: 186 is greater than the maximum of 180",
    ]
    assert len(_rows(batch)) == 1
    kv = entity_batch([_entity(NGSI / "AirQualityObserved/example-keyvalues.jsonld")])
    assert VIOLATIONS not in kv.properties[0]  # windDirection 180 there, and no tsp


def test_every_kind_of_attribute_shows_its_key_values_value() -> None:
    street = {"type": "Point", "coordinates": [2.17, 41.38]}
    normalized = {
        "id": "urn:ngsi-ld:Streetlight:1",
        "type": "Streetlight",
        "name": {"type": "LanguageProperty", "languageMap": {"ca": "Fanal", "en": "Lamp"}},
        "lampModes": {"type": "ListProperty", "valueList": ["eco", "full"]},
        "powerState": {"type": "VocabProperty", "vocab": "ngsi-ld:default-context/on"},
        "config": {"type": "JsonProperty", "json": {"lux": [10, 20]}},
        "refDevices": {
            "type": "ListRelationship",
            "objectList": [{"object": "urn:ngsi-ld:Device:a"}, {"object": "urn:ngsi-ld:Device:b"}],
        },
        "coverage": {"type": "GeoProperty", "value": street},
    }
    concise = {
        "id": "urn:ngsi-ld:Streetlight:1",
        "type": "Streetlight",
        "name": {"languageMap": {"ca": "Fanal", "en": "Lamp"}},
        "lampModes": {"valueList": ["eco", "full"]},
        "powerState": {"vocab": "ngsi-ld:default-context/on"},
        "config": {"json": {"lux": [10, 20]}},
        "refDevices": {"objectList": [{"object": f"urn:ngsi-ld:Device:{d}"} for d in "ab"]},
        "coverage": street,
    }  # fmt: skip
    expected = {
        "name": {"ca": "Fanal", "en": "Lamp"},
        "lampModes": ["eco", "full"],
        "powerState": "on",  # the vocabulary term compacted like a type
        "config": {"lux": [10, 20]},
        "refDevices": ["urn:ngsi-ld:Device:a", "urn:ngsi-ld:Device:b"],
        RELATIONSHIPS: ["refDevices"],
    }
    for entity in (normalized, concise):
        batch = entity_batch([entity])
        assert batch.properties == [expected]  # `coverage` places the entity: no location
        assert batch.geometries.xy.tolist() == [[2.17, 41.38]]
        assert batch.feature_classes == ["Streetlight"]


def test_a_language_property_names_the_feature_in_its_first_or_untagged_text() -> None:
    entity = {
        "id": "urn:ngsi-ld:Streetlight:1",
        "type": "Streetlight",
        "name": {"type": "LanguageProperty", "languageMap": {"ca": "Fanal", "en": "Lamp"}},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2, 41]}},
    }
    assert _rows(entity_batch([entity]))[0]["name"] == "Fanal"  # the first the source wrote
    entity["name"] = {"languageMap": {"en": ["Lamp", "Light"], "@none": "Fanal"}}  # concise
    assert _rows(entity_batch([entity]))[0]["name"] == "Fanal"
    entity["name"] = {"languageMap": {"en": ["Lamp", "Light"]}}
    assert _rows(entity_batch([entity]))[0]["name"] == "Lamp"
    entity["name"] = {"type": "Property", "value": {"street": "Gran Via", "number": 5}}
    assert _rows(entity_batch([entity]))[0]["name"] is None  # an object, not a language map


def test_a_context_given_out_of_band_names_the_attributes() -> None:
    environment = "https://smart-data-models.github.io/dataModel.Environment/context.jsonld"
    no2 = "https://smartdatamodels.org/dataModel.Environment/no2"
    page = [{"id": "urn:ngsi-ld:Thing:1", "type": "Thing", no2: 5}]
    assert entity_batch(page, context=environment).properties == [{"no2": 5}]
    assert entity_batch(page).properties == [{no2: 5}]  # no context: the IRI stays
    inline = [{**page[0], "@context": {"nitrogenDioxide": no2}}]
    assert entity_batch(inline).properties == [{"nitrogenDioxide": 5}]


def test_a_multi_typed_entity_is_of_its_first_type() -> None:
    entity = {"id": "urn:ngsi-ld:ParkingSpot:1", "type": ["ParkingSpot", "Device"]}
    assert entity_batch([entity]).feature_classes == ["ParkingSpot"]


# -- relationships ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["example-normalized.jsonld", "example-keyvalues.jsonld"])
def test_relationships_are_kept_with_their_targets(form: str) -> None:
    building = entity_batch([_entity(NGSI / "Building" / form)]).properties[0]
    assert building[RELATIONSHIPS] == ["occupier", "owner"]
    assert building["owner"] == [
        "urn:ngsi-ld::cdfd9cb8-ae2b-47cb-a43a-b9767ffd5c84",
        "urn:ngsi-ld::1be9cd61-ef59-421f-a326-4b6c84411ad4",
    ]
    spot = entity_batch([_entity(NGSI / "ParkingSpot" / form)]).properties[0]
    assert spot[RELATIONSHIPS] == ["refParkingSite"]
    assert spot["refParkingSite"] == "urn:ngsi-ld:ParkingSite:santander:daoiz_velarde_1_5"


def test_sub_properties_are_kept_under_their_attribute() -> None:
    spot = entity_batch([_entity(NGSI / "ParkingSpot/example-normalized.jsonld")]).properties[0]
    assert spot["status"] == "free"
    assert spot["status.parkingPermit"] == "yes"


# -- NGSI v2 ---------------------------------------------------------------------------------


def test_ngsi_v2_normalized() -> None:
    batch = entity_batch([_entity(NGSI / "AirQualityObserved/example-normalized-ngsiv2.json")])
    row = _rows(batch)[0]
    assert row["source_id"] == "Madrid-AmbientObserved-28079004-2016-03-15T11:00:00"
    assert row["theme"] == "environment"
    point = shapely.from_wkb(row["geometry"])
    assert (point.x, point.y) == (-3.712247222222222, 40.423852777777775)
    co = next(o for o in batch.observations if o.attribute == "co")
    assert (co.value, co.unit_code, co.observed_at) == (500.0, "GP", "2016-03-15T11:00:00")
    # a v2 "Text" reference is not a relationship: v2 types it Relationship when it is one
    assert RELATIONSHIPS not in batch.properties[0]


def test_ngsi_v2_points_and_key_values() -> None:
    instant = {"TimeInstant": {"type": "DateTime", "value": "2024-05-01T10:00:00Z"}}
    entities = [
        {
            "id": "s1",
            "type": "Streetlight",
            "location": {"type": "geo:point", "value": "43.46, -3.80"},
            "status": {"type": "Text", "value": "ok", "metadata": instant},
            "refDevice": {"type": "Relationship", "value": "device-1"},
        },
        {
            "id": "s2",
            "type": "Streetlight",
            "location": {"type": "geo:box", "value": ["43.0, -4.0", "44.0, -3.0"]},
            "powerState": {"type": "Text", "value": "on"},
        },
    ]
    batch = entity_batch(entities)
    rows = _rows(batch)
    assert [shapely.from_wkb(r["geometry"]).wkt for r in rows] == [
        "POINT (-3.8 43.46)",
        "POLYGON ((-4 43, -3 43, -3 44, -4 44, -4 43))",
    ]
    assert rows[0]["theme"] == "street_furniture"
    assert batch.properties[0][RELATIONSHIPS] == ["refDevice"]
    assert list(batch.observations) == [
        Observation(0, "status", None, "ok", None, "2024-05-01T10:00:00Z", None)
    ]


def test_a_v2_key_values_file_is_read_when_named(tmp_path: Path, lake) -> None:
    path = tmp_path / "v2.json"
    entity = {"id": "Bcn-1", "type": "BikeHireDockingStation", "freeSlotNumber": 4,
              "location": {"type": "Point", "coordinates": [2.17, 41.38]}}  # fmt: skip
    path.write_bytes(orjson.dumps([entity]))
    report = ingest(path, "bikes", lake, format="ngsi-v2")
    assert (report.format, report.features) == ("NGSI v2", 1)


# -- structural faults are rejects -----------------------------------------------------------


def test_entities_without_id_or_type_are_rejected() -> None:
    batch = entity_batch([{"type": "ParkingSpot"}, {"id": "urn:ngsi-ld:ParkingSpot:x"}, 5])
    out = Harmoniser("ngsi", "NGSI-LD", datetime.now(UTC)).harmonise(batch)
    assert [r["reason"] for r in out.rejects] == [
        "not an NGSI entity: $.id: missing",
        "not an NGSI entity: $.type: missing",
        "not an NGSI entity (an object)",
    ]
    assert batch.observations == []


def test_deep_nesting_is_read_without_failing() -> None:
    """What a hostile file may nest (up to orjson's 1,024 levels) ends in rows, not a crash."""
    sub: Any = {"type": "Property", "value": 1}
    context: Any = {"x": "https://example.org/x"}
    targets: Any = "urn:ngsi-ld:Thing:2"
    deep: Any = 1
    for _ in range(900):
        sub = {"type": "Property", "value": 1, "sub": sub}
        deep = {"d": deep}
        context = {"@context": context}
        targets = [targets]
    entities = [
        {"id": "urn:ngsi-ld:Thing:1", "type": "Thing", "a": sub},
        {"id": "urn:ngsi-ld:Thing:2", "type": "Thing", "a": 1, "@context": [context]},
        {"id": "urn:ngsi-ld:Thing:3", "type": "Thing", "a": targets},
        {"id": "urn:ngsi-ld:Thing:4", "type": "Thing", "a": {"value": deep, "observedAt": deep}},
    ]
    batch = entity_batch(entities)
    assert batch.errors == [None] * 4
    out = Harmoniser("ngsi", "NGSI-LD", datetime.now(UTC)).harmonise(batch)
    assert out.rejects == []  # properties of any depth are written whole (core/properties)
    assert len([o for o in batch.observations if o.record == 0]) == 17  # a and 16 levels
    why = "cannot be processed (nested too deep): its entities keep the names they give"
    assert list(batch.warnings or {}) == [f"@context '{{...}}' {why}"]
    assert RELATIONSHIPS not in batch.properties[2]  # a list of lists is no target


def test_a_cut_batch_keeps_the_observations_of_its_records() -> None:
    """A local filter or a harvest's dedup cuts NGSI batches too (batch_rows.take)."""
    spots = [
        {
            "id": f"urn:ngsi-ld:ParkingSpot:{i}",
            "type": "ParkingSpot",
            "total": i,
            "@context": ["x:y"],
        }
        for i in range(3)
    ]
    batch = entity_batch(spots)
    cut = take(batch, np.array([False, True, True]))
    assert list(cut.source_ids) == ["urn:ngsi-ld:ParkingSpot:1", "urn:ngsi-ld:ParkingSpot:2"]
    assert [(o.record, o.value) for o in cut.observations] == [(0, 1.0), (1, 2.0)]
    assert cut.warnings == batch.warnings


# -- round trips: keyValues -> normalized / concise give the same batch -----------------------

_names = st.from_regex(r"[a-z][A-Za-z0-9]{0,12}", fullmatch=True).filter(
    lambda n: n not in ("id", "type", "location")
)
_values = st.one_of(
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(max_size=20).filter(lambda t: not t.lower().startswith("urn:ngsi-ld:")),
    st.lists(st.text(max_size=5), max_size=3),
    st.builds(lambda n: f"urn:ngsi-ld:Thing:{n}", st.integers(0, 99)),
)


def _normalized(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.startswith("urn:ngsi-ld:"):
        return {"type": "Relationship", "object": value}
    return {"type": "Property", "value": value}


def _v2(value: Any) -> dict[str, Any]:
    if isinstance(value, str) and value.startswith("urn:ngsi-ld:"):
        return {"type": "Relationship", "value": value}
    kind = {bool: "Boolean", int: "Number", float: "Number", str: "Text", list: "StructuredValue"}
    return {"type": kind[type(value)], "value": value}


def _concise(value: Any) -> Any:
    return {"object": value} if isinstance(value, str) and value.startswith("urn:") else value


@settings(max_examples=60, deadline=None)
@given(
    attributes=st.dictionaries(_names, _values, max_size=8),
    lon=st.floats(-180, 180),
    lat=st.floats(-90, 90),
)
def test_every_representation_gives_the_same_batch(
    attributes: dict[str, Any], lon: float, lat: float
) -> None:
    location = {"type": "Point", "coordinates": [lon, lat]}
    head = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}
    key_values = {**head, **attributes, "location": location}
    normalized = {
        **head,
        **{k: _normalized(v) for k, v in attributes.items()},
        "location": {"type": "GeoProperty", "value": location},
    }
    concise = {**head, **{k: _concise(v) for k, v in attributes.items()}, "location": location}
    geojson = {
        "id": head["id"],
        "type": "Feature",
        "geometry": location,
        "properties": {"type": "Thing", **normalized, "@context": [CORE]},
    }
    v2 = {
        **head,
        **{k: _v2(v) for k, v in attributes.items()},
        "location": {"type": "geo:json", "value": location},
    }
    forms = (key_values, normalized, concise, geojson, v2)
    batches = [entity_batch([e]) for e in forms]
    for b in batches[1:]:
        assert b.properties == batches[0].properties
        assert b.observations == batches[0].observations
        assert b.geometries.xy.tolist() == batches[0].geometries.xy.tolist()
    assert batches[0].properties[0].keys() - {RELATIONSHIPS} == attributes.keys()


# -- the file connectors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "connector"),
    [
        ("AirQualityObserved/example-geojsonfeature.json", NGSILDConnector),
        ("AirQualityObserved/example-normalized-ngsiv2.json", NGSIv2Connector),
        ("ParkingSpot/example-keyvalues.jsonld", NGSILDConnector),
        ("Building/example-normalized.jsonld", NGSILDConnector),
    ],
)
def test_entity_files_are_told_by_content(name: str, connector: type) -> None:
    assert detect(NGSI / name) is connector


def test_an_array_of_entities_streams_in_batches(tmp_path: Path) -> None:
    base = _entity(NGSI / "OffStreetParking/example-normalized.jsonld")
    path = tmp_path / "entities.json"
    path.write_bytes(orjson.dumps([{**base, "id": f"{base['id']}-{i}"} for i in range(300)]))
    reader = type("Small", (NGSILDConnector,), {"batch_bytes": 64 * 1024})(path)
    info = reader.inspect()
    assert (info.format, info.layers, info.count) == ("NGSI-LD", ("OffStreetParking",), 300)
    batches = list(reader.read())
    assert len(batches) > 1
    assert sum(map(len, batches)) == 300
    assert sum(len(b.observations) for b in batches) == 300 * 6


def test_a_feature_collection_of_the_geojson_form(tmp_path: Path, lake) -> None:
    features = [
        _entity(NGSI / t / "example-geojsonfeature.json")
        for t in ("AirQualityObserved", "OffStreetParking")
    ]
    path = tmp_path / "fc.geojson"
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    report = ingest(path, "fc", lake)
    assert (report.format, report.records, report.features) == ("NGSI-LD", 2, 2)
    assert NGSILDConnector(path).inspect().layers == ("AirQualityObserved", "OffStreetParking")


def test_unresolvable_context_is_one_warning_in_the_report(lake, capsys) -> None:
    path = NGSI / "EVChargingStation/example-keyvalues.jsonld"
    assert main(["ingest", str(path), "--source", "ev", "--lake", str(lake.root)]) == 0
    out = capsys.readouterr().out
    warned = [line for line in out.splitlines() if line.startswith("warning")]
    assert warned == [
        (
            "warning, 1 features: @context 'iudx:EVChargingStation' is not shipped with "
            "citypipe nor allowed by the source: its entities keep the names they give"
        ),
        # the station states no time (no dateObserved, no observedAt): its numbers, such as
        # capacity, are no observations
        f"warning, 1 features: {NO_TIME}",
    ]


def test_a_source_s_contexts_option_resolves_what_is_not_shipped(tmp_path: Path, lake) -> None:
    mine = tmp_path / "iudx.jsonld"
    mine.write_text('{"@context": {"stationName": "https://example.org/iudx/stationName"}}')
    path = NGSI / "EVChargingStation/example-keyvalues.jsonld"
    options = {"contexts": {"files": {"iudx:EVChargingStation": str(mine)}}}
    report = ingest(path, "ev", lake, options=options)
    assert report.features == 1
    assert not any("context" in w for w in report.warnings)  # only the station's lack of time


@pytest.mark.parametrize(
    "name",
    ["AirQualityObserved/schema.json", "contexts/smartdatamodels-dataModel.Parking-context.jsonld"],
)
def test_schemas_and_contexts_are_refused_in_one_line(corpus: Path, name: str, capsys) -> None:
    assert main(["inspect", str(corpus / "ngsi-ld" / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "a JSON Schema" in err or "a JSON-LD @context" in err


def test_a_context_given_as_an_entity_file_is_not_claimed() -> None:
    head = shipped()[CORE_CONTEXT].read_bytes()
    assert NGSILDConnector.sniff(head) == 0.0
    schema = b'{"$schema": "https://json-schema.org/draft/2020-12/schema", "id": "x", '
    schema += b'"type": "Property"}'
    with pytest.raises(NotFeatureData):
        NGSILDConnector.sniff(schema)


def test_every_entity_file_of_the_corpus_ingests(corpus: Path, lake) -> None:
    files = sorted((corpus / "ngsi-ld").glob("*/example*"))
    assert len(files) == 17
    for path in files:
        report = ingest(path, "e", lake)
        assert (report.records, report.features, report.rejects) == (1, 1, 0), path
        assert report.format == ("NGSI v2" if "ngsiv2" in path.name else "NGSI-LD")


# -- cost ------------------------------------------------------------------------------------


def test_names_cost_a_look_up_not_a_json_ld_expansion() -> None:
    """Each context processed once: an entity costs far less than pyld processing it whole
    (measured on 2 shared cores: about 4,500 entities/s without schema validation, 900 to
    1,900/s with it, against 110-300/s for pyld's expansion and compaction of each entity)."""
    base = _entity(NGSI / "AirQualityObserved/example-normalized.jsonld")
    entities = [{**base, "id": f"{AQ}-{i}"} for i in range(2000)]
    contexts = Contexts()
    entity_batch(entities[:1], contexts=contexts)  # the context processed once
    started = time.perf_counter()
    batch = entity_batch(entities, contexts=contexts)
    per_entity = (time.perf_counter() - started) / len(entities)
    options = dict(contexts.options)
    started = time.perf_counter()
    for e in entities[:100]:
        jsonld.compact(jsonld.expand(e, options), {"@context": e["@context"]}, options)
    pyld_per_entity = (time.perf_counter() - started) / 100
    assert len(batch.observations) == 17 * 2000
    assert per_entity * 3 < pyld_per_entity, (per_entity, pyld_per_entity)


def test_a_v2_key_values_file_is_found_by_its_content(tmp_path: Path, lake, read_lake) -> None:
    """Madrid's AirQualityObserved as Orion answers `options=keyValues` (each attribute its
    value, no @context) was refused as "not a format citypipe reads" unless named with
    --format: its text id and type and its GeoJSON location say NGSI v2. It lands as the
    normalized sample does: same id, point and values."""
    normalized = _entity(NGSI / "AirQualityObserved/example-normalized-ngsiv2.json")
    key_values = {k: v["value"] if type(v) is dict else v for k, v in normalized.items()}
    assert key_values["location"]["type"] == "Point"
    path = tmp_path / "aqo.json"
    path.write_bytes(orjson.dumps([key_values]))
    report = ingest(path, "aqo", lake)
    assert (report.format, report.features) == ("NGSI v2", 1)
    [row] = read_lake("aqo").to_pylist()
    assert row["feature_id"].endswith(normalized["id"])
    point = shapely.from_wkb(row["geometry"])
    assert [point.x, point.y] == normalized["location"]["value"]["coordinates"]
    props = orjson.loads(row["properties"])
    for name in ("co", "so2", "temperature", "windSpeed"):
        assert props[name] == normalized[name]["value"]
