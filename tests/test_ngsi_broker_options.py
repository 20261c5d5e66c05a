"""Brokers that answer 400 to a representation they do not know (`options=keyValues`,
`simplified`, `concise`, or `format=`): CIM 009 renamed keyValues to simplified and added
concise, and Stellio, Scorpio and Orion-LD each know another set. The test broker refuses the
ones its policy names; the harvest asks once in the other spelling, then without it, lands
every entity and says in one warning which was used."""

from __future__ import annotations

import pytest
from servers.ngsi_broker import BrokerPolicy
from test_ngsi_broker import COPIES, expected_ids, harvest, lake_ids

from citypipe.cli import main
from citypipe.geo.errors import DataError

KIND = "OnStreetParking"


def _refused(broker, asked: str) -> list[str]:
    return [s for s in broker.seen if asked in s.split("?", 1)[-1].split("&")]


@pytest.mark.parametrize(
    ("asked", "unknown", "used"),
    [
        ("options=keyValues", {"keyValues"}, "options=simplified"),  # knows CIM 009 1.4+ only
        ("options=simplified", {"simplified"}, "options=keyValues"),  # knows before 1.4 only
        ("options=concise", {"concise"}, "no concise"),  # before 1.6: no concise
        ("options=keyValues", {"keyValues", "simplified"}, "no keyValues"),
        ("format=simplified", {"simplified"}, "no simplified"),
    ],
)
def test_a_refused_representation_is_asked_again_once_and_named(
    ngsi_broker, lake, asked, unknown, used
) -> None:
    broker = ngsi_broker(BrokerPolicy(unknown_options=frozenset(unknown)))
    report = harvest(f"{broker.ld_url}?type={KIND}&{asked}", lake)
    assert set(lake_ids(lake, "broker")) == expected_ids((KIND,)) and report.records == COPIES
    (warning,) = [w for w in report.warnings if "the broker refused" in w]
    assert warning.startswith(f"the broker refused {asked} (") and f"asked with {used}" in warning
    assert report.warnings[warning] == COPIES
    assert len(_refused(broker, asked)) == 1  # refused once: never asked again
    if used.startswith("options="):
        assert len(_refused(broker, used)) >= 2  # the count, then the page(s)


def test_a_refusal_no_spelling_cures_ends_in_the_brokers_words(ngsi_broker, lake) -> None:
    """A refusal about something else (a query naming no type) is not cured by a spelling: the
    broker's own words end the harvest, after one try of each, never more."""
    broker = ngsi_broker()
    url = f"{broker.ld_url}?options=keyValues"  # no type, q, ...: "Too broad query"
    with pytest.raises(DataError, match="Too broad query"):
        harvest(url, lake)
    assert len(broker.seen) == 3  # as asked, simplified, without: each refused


def test_ngsi_v2_keeps_its_count_when_it_drops_keyvalues(ngsi_broker, lake, capsys) -> None:
    broker = ngsi_broker(BrokerPolicy(unknown_options=frozenset({"keyValues"})))
    url = f"{broker.url}/v2/entities?type={KIND}&options=keyValues"
    code = main(["ingest", url, "--source", "v2", "--lake", str(lake.root)])
    out = capsys.readouterr().out
    assert code == 0 and len(lake_ids(lake, "v2")) == COPIES
    lines = [line for line in out.splitlines() if "the broker refused" in line]
    said = "BadRequest: Invalid value for URI param /options/"  # Orion's words, as the broker's
    want = f"the broker refused options=keyValues ({said}): asked with no keyValues instead"
    assert lines == [f"warning, {COPIES} features: {want}"]
    assert all("count" in s for s in broker.seen)  # options=count kept
