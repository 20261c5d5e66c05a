"""jsonschema-rs answers first, jsonschema explains: the violations stay jsonschema's.

`smart_data_models.violations` takes jsonschema-rs's "valid" as final and asks jsonschema only
about the entities jsonschema-rs refuses. That is right as long as whatever jsonschema-rs
accepts, jsonschema accepts too: checked here on the sample entities and on entities broken in
generated ways (values of other types, numbers at and beyond the schemas' bounds, strings with
non-ASCII word characters and trailing newlines, nested junk, members dropped).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import smart_data_models as sdm

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples" / "ngsi-ld"
TYPES = sorted(p.parent.name for p in SAMPLES.glob("*/example-keyvalues.jsonld"))


def keyvalues(entity_type: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / entity_type / "example-keyvalues.jsonld").read_bytes()))


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (dict keys, list indices), the value itself first."""
    found = [here]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*here, i))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


BOUNDS = [-181, -180, -180.5, -1, -0.0, 0, 0.5, 1, 1.0, 1.5, 2, 180, 180.0001, 360, 2**63, 2**70]
TEXT = st.text(alphabet=st.sampled_from("aZ_09-.:{}$+*[]`|~^@!,\\ é中٣ǅ²\n\t/#%?="), max_size=10)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BOUNDS),
    st.floats(),  # NaN and the infinities too: json.loads reads them
    TEXT,
    st.sampled_from(["2016-03-15T11:00:00", "--02-30", "--13-01", "Point", "Polygon", "outdoor"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def broken(draw: st.DrawFn) -> dict[str, Any]:
    """A sample entity with one to three places replaced, or members dropped; id and type
    kept (the entity must still be of its type to be checked at all)."""
    entity = keyvalues(draw(st.sampled_from(TYPES)))
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p in paths(entity) if p and p[0] not in ("id", "type")]
        place = draw(st.sampled_from(places))
        if draw(st.booleans()) and len(place) == 1:
            entity = {k: v for k, v in entity.items() if k != place[0]}
        else:
            entity = replaced(entity, place, draw(JSON))
    return entity


def answers(entity: dict[str, Any]) -> tuple[bool, bool]:
    """(jsonschema-rs's verdict, jsonschema's) on an entity of a shipped type."""
    schemas = sdm.shipped()
    fast = schemas.fast_validator(entity["type"])
    full = schemas.validator(entity["type"])
    assert fast is not None and full is not None
    return fast.is_valid(entity), full.is_valid(entity)


@pytest.mark.parametrize("entity_type", TYPES)
def test_every_shipped_type_has_a_compiled_validator(entity_type: str) -> None:
    assert answers(keyvalues(entity_type)) == (True, True)


@settings(max_examples=400, deadline=None)
@given(entity=broken())
def test_what_jsonschema_rs_accepts_jsonschema_accepts(entity: dict[str, Any]) -> None:
    fast, full = answers(entity)
    assert full or not fast
    full_validator = sdm.shipped().validator(entity["type"])
    assert full_validator is not None
    assert sdm.violations(entity) == sdm.explained(full_validator, entity)


def test_where_jsonschema_rs_is_stricter_jsonschema_decides() -> None:
    # NaN (json.loads reads it): jsonschema finds it no less than no2's minimum of 0
    entity = {**keyvalues("AirQualityObserved"), "no2": math.nan}
    assert answers(entity) == (False, True)
    assert sdm.violations(entity) == []


def test_the_refused_entities_keep_jsonschemas_messages() -> None:
    # the AirQualityObserved schema: windDirection between -180 and 180, tsp an integer
    entity = {**keyvalues("AirQualityObserved"), "windDirection": 186, "tsp": 73.3}
    assert answers(entity) == (False, False)
    assert sdm.violations(entity) == [
        "$.tsp: 73.3 is not of type 'integer'",
        "$.windDirection: 186 is greater than the maximum of 180",
    ]


@pytest.mark.parametrize("entity_type", TYPES)
def test_the_shipped_schemas_judge_member_by_member(entity_type: str) -> None:
    # each is allOf [common-schema parts, {properties}] + required: no keyword weighs members
    # together, so only the members jsonschema-rs refuses are walked by jsonschema
    check = sdm.shipped().check(entity_type)
    assert check is not None and check.split


@pytest.mark.parametrize(
    "joint",
    [
        {"additionalProperties": False},
        {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]},
        {"allOf": [{"$ref": "#/$defs/ab"}]},
        {"type": "string"},
    ],
)
def test_a_schema_that_weighs_members_together_is_walked_whole(tmp_path: Path, joint: dict) -> None:
    schema = {
        "$id": "https://example.org/Streetlight/schema.json",
        "$defs": {"ab": {"dependentRequired": {"a": ["b"]}}},
        "properties": {"type": {"enum": ["Streetlight"]}, "a": {"type": "integer"}},
        **joint,
    }
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    schemas = sdm.SchemaSet(tmp_path)
    check = schemas.check("Streetlight")
    assert check is not None and not check.split
    entity = {"id": "urn:a", "type": "Streetlight", "a": "x", "c": 1}
    validator = schemas.validator("Streetlight")
    assert validator is not None
    assert schemas.violations(entity) == sdm.explained(validator, entity)
    assert "$.a: 'x' is not of type 'integer'" in schemas.violations(entity)
