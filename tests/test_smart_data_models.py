"""Smart Data Models validation: the corpus entities against their shipped schemas, offline."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from pathlib import Path

import pytest
from conftest import CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citypipe.connectors import smart_data_models as sdm

SHIPPED = Path(__file__).resolve().parent.parent / "schemas" / "smartdatamodels"
TYPES = [
    "AirQualityObserved",
    "Building",
    "EVChargingStation",
    "OffStreetParking",
    "OnStreetParking",
    "ParkingSpot",
    "TrafficFlowObserved",
]
REQUIRED = {  # each schema's top-level `required`, as MANIFEST.md lists them
    "AirQualityObserved": ["id", "type", "dateObserved", "location"],
    "Building": ["type", "id", "category", "address"],
    "EVChargingStation": ["id", "type", "socketType", "capacity", "allowedVehicleType"],
    "OffStreetParking": ["id", "type", "location"],
    "OnStreetParking": ["id", "type", "location"],
    "ParkingSpot": ["id", "location", "type", "status", "category", "refParkingSite"],
    "TrafficFlowObserved": ["id", "type", "dateObserved"],
}
ENVIRONMENT_RAW = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/"
    "Environment-schema.json"
)
ENVIRONMENT_ID = "https://smart-data-models.github.io/dataModel.Environment/Environment-schema.json"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here fails if anything opens a connection."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network used: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def keyvalues(corpus: Path, entity_type: str) -> dict:
    return json.loads((corpus / "ngsi-ld" / entity_type / "example-keyvalues.jsonld").read_bytes())


@pytest.mark.parametrize("entity_type", TYPES)
def test_shipped_schemas_are_the_corpus_files(corpus: Path, entity_type: str) -> None:
    shipped = (SHIPPED / entity_type / "schema.json").read_bytes()
    original = (corpus / "ngsi-ld" / entity_type / "schema.json").read_bytes()
    assert hashlib.sha256(shipped).digest() == hashlib.sha256(original).digest()


def test_known_types_are_the_shipped_entity_schemas() -> None:
    assert sdm.known_types() == frozenset(TYPES)


@pytest.mark.parametrize("entity_type", TYPES)
def test_corpus_keyvalues_examples_conform(corpus: Path, entity_type: str) -> None:
    # checked by hand: each example has its schema's required members with the types and
    # ranges it gives (the AirQualityObserved example's `typeOfLocation` is not the schema's
    # `typeofLocation`, and no schema forbids other members, so nothing fails there)
    entity = keyvalues(corpus, entity_type)
    assert sdm.structural_faults(entity) == []
    assert sdm.violations(entity) == []


@pytest.mark.parametrize("entity_type", TYPES)
def test_dropping_a_required_member_is_named(corpus: Path, entity_type: str) -> None:
    entity = keyvalues(corpus, entity_type)
    for member in REQUIRED[entity_type]:
        if member in ("id", "type"):
            continue
        broken = {k: v for k, v in entity.items() if k != member}
        assert sdm.violations(broken) == [f"$: '{member}' is a required property"]


def test_air_quality_violations_read_like_the_schema(corpus: Path) -> None:
    entity = keyvalues(corpus, "AirQualityObserved")
    entity["relativeHumidity"] = 54  # the schema: a share between 0 and 1
    entity["no2"] = -1  # minimum 0
    entity["typeofLocation"] = "underground"  # enum indoor / outdoor
    entity["location"] = {"type": "Point", "coordinates": ["-3.71", 40.42]}
    assert sdm.violations(entity) == [
        "$.location.coordinates[0]: '-3.71' is not of type 'number'",
        "$.no2: -1 is less than the minimum of 0",
        "$.relativeHumidity: 54 is greater than the maximum of 1",
        "$.typeofLocation: 'underground' is not one of ['indoor', 'outdoor']",
    ]


def test_a_ref_by_the_raw_github_url_resolves_offline(corpus: Path) -> None:
    # airQualityLevel is a $ref to the Environment base schema by its raw.githubusercontent URL,
    # whose $id is the github.io one; the base schema gives it minLength 2
    registry = sdm.shipped().registry
    assert registry.contents(ENVIRONMENT_RAW) == registry.contents(ENVIRONMENT_ID)
    entity = keyvalues(corpus, "AirQualityObserved")
    entity["airQualityLevel"] = "m"
    assert sdm.violations(entity) == ["$.airQualityLevel: 'm' is too short"]


def test_a_geometry_of_another_type_is_read_as_its_own(corpus: Path) -> None:
    # TrafficFlowObserved's location is one of the GeoJSON geometries: a Polygon with a ring of
    # two positions fails as a Polygon, not as the MultiPoint its coordinates would make
    entity = keyvalues(corpus, "TrafficFlowObserved")
    entity["location"] = {"type": "Polygon", "coordinates": [[[4.7, 41.6], [4.8, 41.6]]]}
    assert sdm.violations(entity) == [
        "$.location.coordinates[0]: [[4.7, 41.6], [4.8, 41.6]] is too short"
    ]


def test_a_value_no_branch_fits_says_so(corpus: Path) -> None:
    entity = keyvalues(corpus, "OffStreetParking")
    entity["location"] = "41.15, -8.61"
    assert sdm.violations(entity) == [
        "$.location: '41.15, -8.61' is not valid under any of the given schemas"
    ]


def test_long_values_are_cut_short(corpus: Path) -> None:
    entity = keyvalues(corpus, "AirQualityObserved")
    entity["areaServed"] = ["x" * 10_000]
    (message,) = sdm.violations(entity)
    assert message.startswith("$.areaServed: ['xxx")
    assert len(message) == sdm.MESSAGE_CHARS and message.endswith("…")


def test_a_ref_to_a_schema_not_shipped_is_a_violation_not_a_fetch(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED, tmp_path, dirs_exist_ok=True)
    (tmp_path / "common-schema.json").unlink()
    schemas = sdm.SchemaSet(tmp_path)
    assert schemas.violations({"id": "urn:ngsi-ld:ParkingSpot:1", "type": "ParkingSpot"}) == [
        "$: schema https://smart-data-models.github.io/data-models/common-schema.json"
        + "#/definitions/GSMA-Commons not available offline"
    ]


def test_a_folder_holds_its_own_schemas(tmp_path: Path) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.org/Streetlight/schema.json",
        "properties": {"type": {"enum": ["Streetlight"]}, "powerState": {"enum": ["on", "off"]}},
    }
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    schemas = sdm.SchemaSet(tmp_path)
    assert schemas.violations({"id": "urn:a", "type": "Streetlight", "powerState": "dim"}) == [
        "$.powerState: 'dim' is not one of ['on', 'off']"
    ]
    assert schemas.violations({"id": "urn:a", "type": "ParkingSpot"}) == []


def test_types_without_a_schema_have_no_violations() -> None:
    assert sdm.violations({"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight"}) == []
    assert sdm.violations({"id": "urn:ngsi-ld:x:1"}) == []
    assert sdm.violations({"id": "urn:ngsi-ld:x:1", "type": ["ParkingSpot", "Device"]}) == []


@pytest.mark.parametrize(
    ("entity", "faults"),
    [
        ({"id": "urn:a", "type": "ParkingSpot"}, []),
        ({"id": "urn:a", "type": ["ParkingSpot", "Device"]}, []),
        ({"type": "ParkingSpot"}, ["$.id: missing"]),
        ({"id": "urn:a"}, ["$.type: missing"]),
        (
            {"id": " ", "type": 3},
            ["$.id: not a non-empty string", "$.type: not a non-empty string"],
        ),
        (
            {"id": ["urn:a"], "type": []},
            ["$.id: not a non-empty string", "$.type: not a non-empty string"],
        ),
        ({}, ["$.id: missing", "$.type: missing"]),
    ],
)
def test_structural_faults(entity: dict, faults: list[str]) -> None:
    assert sdm.structural_faults(entity) == faults


def test_validators_are_compiled_once_per_type(corpus: Path) -> None:
    first = sdm.shipped().validator("ParkingSpot")
    sdm.violations(keyvalues(corpus, "ParkingSpot"))
    assert sdm.shipped().validator("ParkingSpot") is first
    assert sdm.shipped().validator("Streetlight") is None


NUMBERS = [  # (type, member, its schema's type): members of the examples, read from the schemas
    ("AirQualityObserved", "no2", "number"),
    ("AirQualityObserved", "airQualityIndex", "integer"),
    ("AirQualityObserved", "relativeHumidity", "number"),
    ("Building", "floorsAboveGround", "integer"),
    ("EVChargingStation", "capacity", "integer"),
    ("EVChargingStation", "powerConsumption", "number"),
    ("OffStreetParking", "availableSpotNumber", "integer"),
    ("OffStreetParking", "occupancy", "number"),
    ("OnStreetParking", "totalSpotNumber", "integer"),
    ("TrafficFlowObserved", "intensity", "number"),
    ("TrafficFlowObserved", "laneId", "integer"),
]
NOT_NUMBERS = st.one_of(
    st.text(max_size=12), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=st.sampled_from(NUMBERS), wrong=NOT_NUMBERS)
def test_a_value_of_the_wrong_type_is_named(case: tuple[str, str, str], wrong: object) -> None:
    entity_type, member, declared = case
    entity = keyvalues(CORPUS, entity_type)
    entity[member] = wrong
    assert sdm.violations(entity) == [f"$.{member}: {wrong!r} is not of type '{declared}'"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from([c for c in NUMBERS if c[2] == "integer"]),
    wrong=st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
)
def test_a_fraction_where_an_integer_is_due(case: tuple[str, str, str], wrong: float) -> None:
    entity_type, member, _ = case
    entity = keyvalues(CORPUS, entity_type)
    entity[member] = wrong
    assert f"$.{member}: {wrong!r} is not of type 'integer'" in sdm.violations(entity)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entity_type=st.sampled_from(TYPES), drop=st.sets(st.integers(0, 5), min_size=1))
def test_dropping_required_members(entity_type: str, drop: set[int]) -> None:
    entity = keyvalues(CORPUS, entity_type)
    required = [m for m in REQUIRED[entity_type] if m not in ("id", "type")]
    dropped = sorted({required[i % len(required)] for i in drop})
    for member in dropped:
        del entity[member]
    assert sdm.violations(entity) == [f"$: '{m}' is a required property" for m in dropped]
