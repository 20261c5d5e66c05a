"""An entity's violations of its type's JSON Schema at compiled speed, in jsonschema's words.

A broker harvest checks every entity, and jsonschema's tree walk costs about 0.4 ms an entity,
most of a harvest's time. jsonschema-rs (compiled, the same registry of shipped files) answers
valid / invalid in a hundredth of that, so it answers first, and jsonschema, whose errors give
the messages, is asked only where jsonschema-rs refuses. That needs the two to agree one way
round: what jsonschema-rs accepts, jsonschema accepts. Where they differ it is jsonschema-rs
that is stricter (patterns read as ECMA-262, with ASCII word characters and digits and no `$`
before a final newline; integers beyond 64 bits; NaN), and then jsonschema decides.

Entities a source gets wrong it mostly gets wrong the same way (a whole broker's
AirQualityObserved with a fractional `tsp`). Where a schema is *separable*, an entity's errors
are its members' errors, each depending on that member's value alone, plus the `required` ones,
depending on its member names alone; then only the members jsonschema-rs refuses are walked by
jsonschema, each distinct value once. A schema is separable when, at the entity's level (through
`allOf` and `$ref`), it asserts nothing but `type` (object), `properties` and `required`: no
keyword that weighs members together (additionalProperties, anyOf, if, dependentRequired ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the validators are the caller's: nothing of jsonschema is needed at load
    import jsonschema_rs
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing._core import Resolver  # referencing exports it for type checkers only

__all__ = ["MESSAGE_CHARS", "TypeCheck", "explained", "separable"]

MESSAGE_CHARS = 200
"""A message quotes the offending value; a long one (a whole geometry) is cut to this length."""

_JOINT = frozenset(
    {
        "additionalProperties", "patternProperties", "unevaluatedProperties", "propertyNames",
        "dependentRequired", "dependentSchemas", "dependencies", "minProperties",
        "maxProperties", "anyOf", "oneOf", "not", "if", "then", "else", "enum", "const",
        "$dynamicRef", "$recursiveRef",
    }
)  # fmt: skip
"""The draft 2020-12 keywords that judge an object otherwise than member by member."""
_ROOT = "$: "
"""How a message about the entity itself begins (a member's begins `$.` or `$[`)."""
_CACHED = 100_000
"""Explanations kept per type (a value's key is its repr): past this the cache starts over."""


def separable(schema: Any, resolver: Resolver[Any]) -> bool:
    """Whether the schema judges an object member by member (see the module's docstring)."""
    if not isinstance(schema, dict):
        return schema is True
    kinds = schema.get("type", "object")
    if _JOINT & schema.keys() or "object" not in (kinds if isinstance(kinds, list) else [kinds]):
        return False
    if not all(separable(part, resolver) for part in schema.get("allOf", ())):
        return False
    if "$ref" not in schema:
        return True
    from referencing.exceptions import Unresolvable  # here, not at load: detection loads this

    try:
        resolved = resolver.lookup(schema["$ref"])
    except Unresolvable:
        return False
    return separable(resolved.contents, resolved.resolver)


class TypeCheck:
    """One type's schema, compiled by both: `violations` as `explained` gives them."""

    def __init__(
        self, validator: Draft202012Validator, fast: jsonschema_rs.Validator | None, split: bool
    ) -> None:
        self.validator, self.fast, self.split = validator, fast, split
        self._members: dict[tuple[str, str], list[str]] = {}
        self._roots: dict[frozenset[str], list[str]] = {}

    def violations(self, entity: Mapping[str, Any]) -> list[str]:
        """`explained(validator, entity)`, asked of jsonschema only where needed."""
        if self.fast is None:
            return explained(self.validator, entity)
        try:
            if self.fast.is_valid(entity):
                return []
            if not self.split:
                return explained(self.validator, entity)
            refused = {
                str(e.instance_path[0]) for e in self.fast.iter_errors(entity) if e.instance_path
            }
        except ValueError:  # what jsonschema-rs cannot read (a key that is no string)
            return explained(self.validator, entity)
        found = self._root(frozenset(entity)) + [
            message for name in refused for message in self._member(name, entity[name])
        ]
        return sorted(set(found))

    def _root(self, names: frozenset[str]) -> list[str]:
        """The messages about an entity with these members as a whole (`required`)."""
        if names not in self._roots:
            messages = explained(self.validator, dict.fromkeys(names))
            self._roots[names] = [m for m in messages if m.startswith(_ROOT)]
        return self._roots[names]

    def _member(self, name: str, value: Any) -> list[str]:
        """The messages about one member's value."""
        key = (name, repr(value))
        if key not in self._members:
            if len(self._members) >= _CACHED:
                self._members.clear()
            messages = explained(self.validator, {name: value})
            self._members[key] = [m for m in messages if not m.startswith(_ROOT)]
        return self._members[key]


def explained(validator: Draft202012Validator, entity: Mapping[str, Any]) -> list[str]:
    """jsonschema's violations of the entity, each `<json path>: <what>`, sorted."""
    from referencing.exceptions import Unresolvable

    found: list[str] = []
    try:
        for error in validator.iter_errors(dict(entity)):
            found.extend(_message(reason) for reason in _reasons(error))
    except Unresolvable as missing:
        found.append(f"$: schema {missing.ref} not available offline")
    return sorted(set(found))


def _mismatch(errors: list[ValidationError]) -> tuple[int, int]:
    """How far a branch is from the value: first the errors of an `enum` / `const` (a GeoJSON
    `type` naming another geometry), then the errors in all."""
    return sum(e.validator in ("enum", "const") for e in errors), len(errors)


def _reasons(error: ValidationError) -> list[ValidationError]:
    """The errors that say what is wrong: an anyOf / oneOf failing most nearly in one branch (a
    Point with a bad coordinate fails every geometry branch, the Point branch on the coordinate
    only) is that branch's errors; failing every branch alike, the error itself."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    ranked = sorted(branches.values(), key=_mismatch)
    if not ranked or (len(ranked) > 1 and _mismatch(ranked[0]) == _mismatch(ranked[1])):
        return [error]
    return [reason for sub in ranked[0] for reason in _reasons(sub)]


def _message(error: ValidationError) -> str:
    """`<json path>: <what>`, the value quoted in it cut short."""
    text = f"{error.json_path}: {error.message}"
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"
