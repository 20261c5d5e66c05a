"""NGSI-LD attribute instances read into one shape: what each member of an instance gives."""

from __future__ import annotations

import pytest

from citypipe.connectors.ngsi_attributes import Attribute, ld_attribute


def short(term: str) -> str:
    return term.rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "Property", "value": 3}, Attribute("Property", 3)),
        ({"value": 3, "unitCode": "GQ"}, Attribute("Property", 3, "GQ")),  # concise, two members
        ({"type": "Property", "unitCode": "GQ"}, Attribute("Property", None, "GQ")),
        (
            {"type": "Property", "value": 7, "observedAt": "2016-03-15T11:00:00Z"},
            Attribute("Property", 7, None, "2016-03-15T11:00:00Z"),
        ),
        (
            {"type": "Property", "value": "free", "parkingPermit": {"value": "yes"}},
            Attribute("Property", "free", sub=(("parkingPermit", Attribute("Property", "yes")),)),
        ),
        (
            {"type": "Relationship", "object": "urn:ngsi-ld:A:1", "datasetId": "urn:d"},
            Attribute("Relationship", "urn:ngsi-ld:A:1", dataset_id="urn:d"),
        ),
        (
            {"type": "Property", "value": 1, "@context": "x", "http://example.org/a": 2},
            Attribute("Property", 1, sub=(("a", Attribute("Property", 2)),)),
        ),
    ],
)
def test_each_member_of_an_instance_is_read(raw: dict, expected: Attribute) -> None:
    assert ld_attribute(raw, short, short) == [expected]
