"""Smart Data Models validation: an NGSI entity against its type's JSON Schema, offline.

The schemas shipped in schemas/smartdatamodels/ (byte-exact copies, see its README) are the only
ones known. They `$ref` each other by URL, not always by the URL a schema names as its `$id`
(AirQualityObserved refers to the Environment base schema at raw.githubusercontent.com, which
calls itself smart-data-models.github.io), so the registry holds each schema under its `$id` and
under every URL a shipped schema uses for it. Nothing is ever fetched: a `$ref` to a schema not
shipped is a violation saying so.

A violation never costs the row (the pipeline keeps it and lists the violations in its
properties); only a structural fault, an entity without an id or a type, is a reject.
`format` is an annotation, as draft 2020-12 has it by default: Smart Data Models' own examples
write `dateObserved` without a UTC offset, which an asserted `date-time` would refuse.

Speed: jsonschema-rs answers first, jsonschema explains (schema_verdicts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache, cached_property
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag

from citypipe.connectors.schema_verdicts import MESSAGE_CHARS, TypeCheck, explained, separable

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema import Draft202012Validator
    from referencing import Registry

__all__ = [
    "MESSAGE_CHARS", "VIOLATIONS_PROPERTY", "SchemaSet", "explained", "known_types", "shipped",
    "structural_faults", "violations",
]  # fmt: skip

VIOLATIONS_PROPERTY = "citypipe:schema_violations"
"""The property under which an entity's row lists its violations (only when it has some)."""

_SITE = re.compile(r"https://smart-data-models\.github\.io/(?P<repo>[^/]+)/(?P<path>.+)")
_RAW = re.compile(
    r"https://raw\.githubusercontent\.com/smart-data-models/(?P<repo>[^/]+)/[^/]+/(?P<path>.+)"
)
"""The two places Smart Data Models publishes a repository's file: its GitHub Pages site and
raw.githubusercontent.com at a branch (master, main)."""


def _published_file(url: str) -> tuple[str, str] | None:
    """(repository, path) of a Smart Data Models URL in either published form."""
    found = _SITE.fullmatch(url) or _RAW.fullmatch(url)
    return (found["repo"], found["path"]) if found else None


def _refs(node: Any) -> Iterator[str]:
    """Every `$ref` URL in a schema, without its fragment (local `#/...` refs left out)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            yield urldefrag(ref).url
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _schema_files(folder: Traversable) -> Iterator[Traversable]:
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from _schema_files(entry)
        elif entry.name.endswith(".json"):
            yield entry


def _entity_types(schema: Mapping[str, Any]) -> list[str]:
    """The entity types a schema is for: the `enum` of its `type` property (Smart Data Models
    write it inside `allOf`); base schemas have none."""
    parts = [schema, *(p for p in schema.get("allOf", ()) if isinstance(p, dict))]
    for part in parts:
        kind = part.get("properties", {}).get("type", {})
        if isinstance(kind, dict) and isinstance(kind.get("enum"), list):
            return [t for t in kind["enum"] if isinstance(t, str)]
    return []


class SchemaSet:
    """The schemas of a folder (`*.json`, at any depth) in one registry, and a validator per
    entity type compiled at its first entity.

    Every schema is read as draft 2020-12 (the Environment base schema names the undated
    `http://json-schema.org/schema#`, which `referencing` cannot resolve to a dialect)."""

    def __init__(self, folder: Traversable) -> None:
        from referencing import Registry  # here, not at load: format detection loads this module
        from referencing.jsonschema import DRAFT202012

        schemas = [json.loads(f.read_text(encoding="utf-8")) for f in _schema_files(folder)]
        by_url = {s["$id"]: DRAFT202012.create_resource(s) for s in schemas}
        by_file = {_published_file(s["$id"]): s["$id"] for s in schemas}
        by_file.pop(None, None)
        for schema in schemas:
            for url in _refs(schema):
                same = by_file.get(_published_file(url))
                if url not in by_url and same is not None:
                    by_url[url] = by_url[same]
        self.registry: Registry[Any] = Registry().with_resources(by_url.items())
        self.types = {t: s["$id"] for s in schemas for t in _entity_types(s)}
        self._validators: dict[str, Draft202012Validator] = {}
        self._fast: dict[str, jsonschema_rs.Validator | None] = {}
        self._checks: dict[str, TypeCheck] = {}

    @cached_property
    def _fast_registry(self) -> jsonschema_rs.Registry | None:
        """The same schemas for jsonschema-rs; None when one `$ref`s a schema not shipped
        (jsonschema-rs resolves every `$ref` up front: jsonschema alone then says which)."""
        import jsonschema_rs

        try:
            return jsonschema_rs.Registry(
                [(url, self.registry.contents(url)) for url in self.registry],
                draft=jsonschema_rs.Draft202012,
                retriever=_offline,
            )
        except ValueError:
            return None

    def fast_validator(self, entity_type: str) -> jsonschema_rs.Validator | None:
        """The type's jsonschema-rs validator (formats as annotations), compiled once; None
        when no schema is for it or its `$ref`s cannot all be resolved offline."""
        if entity_type not in self._fast:
            import jsonschema_rs

            registry = self._fast_registry
            schema = self.types.get(entity_type)
            self._fast[entity_type] = (
                None
                if registry is None or schema is None
                else jsonschema_rs.Draft202012Validator(
                    self.registry.contents(schema), registry=registry, validate_formats=False
                )
            )
        return self._fast[entity_type]

    def validator(self, entity_type: str) -> Draft202012Validator | None:
        """The type's compiled validator, None when no schema is for it."""
        found = self._validators.get(entity_type)
        if found is None and entity_type in self.types:
            from jsonschema import Draft202012Validator

            schema = self.registry.contents(self.types[entity_type])
            found = self._validators[entity_type] = Draft202012Validator(
                schema, registry=self.registry
            )
        return found

    def check(self, entity_type: str) -> TypeCheck | None:
        """The type's check (jsonschema-rs first, jsonschema for the messages), None when no
        schema is for it."""
        if entity_type not in self._checks:
            validator = self.validator(entity_type)
            if validator is None:
                return None
            url = self.types[entity_type]
            split = separable(self.registry.contents(url), self.registry.resolver(url))
            self._checks[entity_type] = TypeCheck(
                validator, self.fast_validator(entity_type), split
            )
        return self._checks[entity_type]

    def violations(self, entity: Mapping[str, Any]) -> list[str]:
        """See `violations`."""
        kind = entity.get("type")
        check = self.check(kind) if isinstance(kind, str) else None
        return [] if check is None else check.violations(entity)


def _offline(url: str) -> Any:
    """jsonschema-rs's retriever: nothing is fetched."""
    raise ValueError(f"{url} is not shipped")


@cache
def shipped() -> SchemaSet:
    """The schemas citypipe ships (schemas/smartdatamodels/)."""
    return SchemaSet(files("citypipe.schemas") / "smartdatamodels")


def known_types() -> frozenset[str]:
    """The entity types that have a shipped schema."""
    return frozenset(shipped().types)


def violations(entity: Mapping[str, Any]) -> list[str]:
    """The entity's (keyValues form, short names) violations of its type's Smart Data Model,
    each `<json path>: <what>`, sorted; empty when it conforms or no schema of its type is
    shipped (and for an entity without a type: `structural_faults` reports that)."""
    return shipped().violations(entity)


def structural_faults(entity: Mapping[str, Any]) -> list[str]:
    """What makes a mapping no NGSI entity at all (its record goes to rejects): no id or no
    type, as non-empty strings (a multi-typed NGSI-LD entity's type is a list of them)."""
    faults = []
    entity_id = entity.get("id")
    if not isinstance(entity_id, str) or not entity_id.strip():
        faults.append("$.id: " + ("missing" if entity_id is None else "not a non-empty string"))
    kind = entity.get("type")
    kinds = kind if isinstance(kind, list) and kind else [kind]
    if not all(isinstance(k, str) and k.strip() for k in kinds):
        faults.append("$.type: " + ("missing" if kind is None else "not a non-empty string"))
    return faults
