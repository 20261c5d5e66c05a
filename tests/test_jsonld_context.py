"""NGSI-LD attribute names through their @context, by pyld, offline (jsonld_context): the
shipped contexts under every URL the corpus uses, the core context last, what cannot be resolved
left out with a warning, nothing fetched unless the source allows it, each context processed
once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SAMPLES
from loopback import Answer, scripted_server
from pyld import jsonld

from citypipe.connectors.jsonld_context import (
    CORE_CONTEXT,
    ContextPolicy,
    Contexts,
    is_core,
    shipped,
)
from citypipe.connectors.ngsi_entities import entity_batch
from citypipe.geo.errors import ConfigurationError

NGSI = SAMPLES / "ngsi-ld"
ROOT = SAMPLES.parent.parent
ENVIRONMENT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
PARKING = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
)
LD_FILES = sorted(p for p in NGSI.glob("*/example-*.jsonld"))


def test_the_shipped_contexts_are_the_corpus_files_byte_for_byte(corpus: Path) -> None:
    files = set(shipped().values())
    assert len(files) == 6
    originals = {p.read_bytes() for p in (corpus / "ngsi-ld/contexts").iterdir() if p.is_file()}
    for path in files:
        assert path.read_bytes() in originals


def test_every_context_url_of_the_sample_entities_is_shipped_or_known_missing() -> None:
    urls = set()
    for path in NGSI.glob("*/*.json*"):
        doc = orjson.loads(path.read_bytes())
        urls.update(doc.get("@context") or doc.get("properties", {}).get("@context") or [])
    assert urls - shipped().keys() == {
        "https://smartdatamodels.org/context.jsonld",  # the GeoJSON examples' aggregate context
        "iudx:EVChargingStation",  # a bare compact IRI in EVChargingStation's keyValues example
    }


@pytest.mark.parametrize("path", LD_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_names_are_those_pyld_gives_the_whole_entity(path: Path) -> None:
    """The names one look-up per attribute gives are those of pyld expanding and compacting the
    whole entity under its context with the core context last."""
    entity = orjson.loads(path.read_bytes())
    contexts = Contexts()
    context = [c for c in entity["@context"] if c in shipped() and "etsi" not in c] + [CORE_CONTEXT]
    whole = jsonld.compact(
        jsonld.expand({**entity, "@context": context}, dict(contexts.options)),
        {"@context": context},
        dict(contexts.options),
    )
    batch = entity_batch([entity], contexts=contexts)
    expected = whole.keys() - {"@context", "id", "type", "location"}
    names = {k for k in batch.properties[0] if "." not in k}  # not the sub-properties
    assert {k for k in names if not k.startswith("citypipe:")} == expected
    assert batch.feature_classes == [whole["type"]]


def test_iris_and_compact_iris_become_short_names() -> None:
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:a",
        "type": "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved",
        "https://smartdatamodels.org/dataModel.Environment/no2": {"type": "Property", "value": 3},
        "ngsi-ld:default-context/madeUp": {"type": "Property", "value": 4},
        "@context": [ENVIRONMENT],
    }
    batch = entity_batch([entity])
    assert {k: batch.properties[0][k] for k in ("no2", "madeUp")} == {"no2": 3, "madeUp": 4}
    assert batch.properties[0].keys() <= {"no2", "madeUp", "citypipe:schema_violations"}
    assert batch.feature_classes == ["AirQualityObserved"]
    assert [o.attribute for o in batch.observations] == ["no2", "madeUp"]


def test_the_core_context_is_applied_last() -> None:
    # a user context redefining a protected core term: in the order given, pyld refuses it
    context: list[Any] = [CORE_CONTEXT, {"location": "https://example.org/where"}]
    contexts = Contexts()
    with pytest.raises(jsonld.JsonLdError, match="protected term redefinition"):
        jsonld.expand({"@context": context, "location": 1}, dict(contexts.options))
    terms = contexts.terms(context)
    assert terms.warnings == ()
    assert terms.context[-1] == CORE_CONTEXT
    # and without the core context's @vocab, names no domain context defines are dropped
    assert jsonld.expand({"@context": PARKING, "notInParking": 1}, dict(contexts.options)) == []
    assert contexts.terms([PARKING]).name("notInParking") == "notInParking"


def test_the_core_context_is_known_by_what_it_defines_not_by_its_address(
    tmp_path: Path,
) -> None:
    core = orjson.loads(shipped()[CORE_CONTEXT].read_bytes())
    assert is_core(core)
    assert not any(
        is_core(orjson.loads(p.read_bytes()))
        for p in set(shipped().values()) - {shipped()[CORE_CONTEXT]}
    )
    # a context mapping the prefix alone, or defining Property elsewhere, is not the core
    assert not is_core({"@context": {"ngsi-ld": "https://uri.etsi.org/ngsi-ld/"}})
    assert not is_core({"@context": {**core["@context"], "Property": "https://e.org/Property"}})
    # a broker's copy of the core at its own address, named first: moved last, no warning
    broker = "http://broker.example/ngsi-ld/v1/core.jsonld"
    (tmp_path / "core.jsonld").write_bytes(shipped()[CORE_CONTEXT].read_bytes())
    contexts = Contexts(ContextPolicy(files=((broker, str(tmp_path / "core.jsonld")),)))
    terms = contexts.terms([broker, {"location": "https://example.org/where"}])
    assert terms.warnings == ()
    assert terms.context == [{"location": "https://example.org/where"}, broker]
    assert terms.name("https://uri.etsi.org/ngsi-ld/default-context/madeUp") == "madeUp"


def test_nothing_is_fetched_that_the_source_does_not_allow() -> None:
    with scripted_server() as server:
        url = f"{server.url}/context.jsonld"
        server.answer("/context.jsonld", Answer(200, b'{"@context": {"x": "https://e.org/y"}}'))
        terms = Contexts().terms([url])
        assert server.requests == []
        assert terms.warnings == (
            (
                f"@context {url!r} is not shipped with citypipe nor allowed by the source: "
                "its entities keep the names they give"
            ),
        )


def test_an_allowed_url_is_fetched_once_for_every_entity() -> None:
    body = b'{"@context": {"speed": "https://example.org/vocab/speed"}}'
    with scripted_server() as server:
        server.answer("/ctx.jsonld", Answer(200, body, {"Content-Type": "application/ld+json"}))
        url = f"{server.url}/ctx.jsonld"
        contexts = Contexts(ContextPolicy.of({"allow": [f"{server.url}/"]}))
        entities = [
            {"id": f"urn:ngsi-ld:Car:{i}", "type": "Car", "speed": i, "@context": [url]}
            for i in range(50)
        ]
        batch = entity_batch(entities, contexts=contexts)
        assert len(server.requests) == 1
    assert contexts.terms([url]).warnings == ()
    assert [o.value for o in batch.observations] == list(map(float, range(50)))


def test_a_local_file_stands_for_a_url(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonld"
    path.write_text('{"@context": {"Lamp": "https://example.org/Lamp"}}')
    url = "https://example.org/context.jsonld"
    contexts = Contexts(ContextPolicy.of({"files": {url: str(path)}}))
    terms = contexts.terms([url])
    assert terms.warnings == ()
    assert jsonld.expand({"@context": terms.context, "@type": "Lamp"}, dict(contexts.options)) == [
        {"@type": ["https://example.org/Lamp"]}
    ]


@pytest.mark.parametrize(
    "option", [["https://x"], {"allow": "https://x"}, {"files": ["a"]}, {"fetch": True}]
)
def test_a_wrong_contexts_option_is_a_configuration_error(option: Any) -> None:
    with pytest.raises(ConfigurationError, match="contexts:"):
        ContextPolicy.of(option)


def test_each_context_is_processed_once() -> None:
    contexts = Contexts()
    first = contexts.terms([ENVIRONMENT])
    assert contexts.terms([ENVIRONMENT]) is first
    assert first.name("no2") == "no2"
    assert contexts.terms(ENVIRONMENT) is not first  # another spelling, processed apart
