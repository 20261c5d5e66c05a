"""A batch's properties as the JSON texts the lake writes, decoded to dicts only where asked.

A CityGML batch walked in another process crosses as bytes (citygml_process.pack): its
records' properties as orjson's texts of them, which that process writes, not as dicts, which
marshal makes again here (the 422 MB file's batches of 2,000 records: some 15 ms a batch to
load) only for harmonise to write them as these texts (pipelines.core.properties.json_texts
merges citypipe's notes into a text). A step that reads a value (a mapped attribute, a stated
position, a filter) gets the record's dict decoded from its text: equal to the one written,
as the reader's values are JSON's own (text, 64-bit integers, finite floats, dicts, lists:
citygml_values; a repeated element's values, a list of a type of its own there, come back as
a list, which prints alike).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, overload

import orjson

from citypipe import schemas

__all__ = ["JSONProperties", "holding", "keys_of"]


class JSONProperties(Sequence[Mapping[str, Any]]):
    """Records' properties as their JSON `texts`, with every key any of them holds (`keys`)."""

    __slots__ = ("columns", "keys", "texts")

    def __init__(
        self, texts: list[bytes], keys: frozenset[str], columns: dict[str, list[Any]]
    ) -> None:
        self.texts = texts
        self.keys = keys
        self.columns = columns
        """The values of the keys a schema column maps (schemas/mappings.yaml, any case), each
        record's (Ellipsis where it has none): harmonise reads them, not the texts."""

    @classmethod
    def of(cls, properties: Sequence[Mapping[str, Any]]) -> JSONProperties | None:
        """`properties` written as orjson writes them; None where one cannot be (a value JSON
        has no type for, a key that is not text, an integer beyond 64 bits)."""
        try:
            texts = list(map(orjson.dumps, properties))
        except TypeError:
            return None
        keys = frozenset().union(*properties)
        mapped = [k for k in keys if k.lower() in _mapped()]
        return cls(texts, keys, {k: [p.get(k, ...) for p in properties] for k in mapped})

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Mapping[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return list(map(self._decoded, self.texts[i]))
        return self._decoded(self.texts[i])

    def _decoded(self, text: bytes) -> Mapping[str, Any]:
        decoded: Mapping[str, Any] = orjson.loads(text)
        return decoded


class _Holding(JSONProperties):
    """Records' properties decoded where their text holds one of `asked` as a key, written as
    orjson writes it (a top-level key is there so; a nested one, or the text in a value,
    only costs a decode), else an empty dict, which holds none of them either."""

    __slots__ = ("_needles",)

    def __init__(self, of: JSONProperties, asked: Iterable[str]) -> None:
        super().__init__(of.texts, of.keys, of.columns)
        self._needles = [orjson.dumps(k) + b":" for k in asked]

    def _decoded(self, text: bytes) -> Mapping[str, Any]:
        if any(needle in text for needle in self._needles):
            return super()._decoded(text)
        return {}


def holding(
    properties: Sequence[Mapping[str, Any]], keys: Iterable[str]
) -> Sequence[Mapping[str, Any]]:
    """`properties` for a step that reads only `keys` of them: JSON texts decoded only where
    they hold one (a mapped attribute's: most of a CityGML batch's records hold none, or
    have the column's value from the reader)."""
    if not isinstance(properties, JSONProperties):
        return properties
    columns = properties.columns
    if all(k in columns for k in keys):
        asked = [(k, columns[k]) for k in keys]
        return [
            {k: v for k, values in asked if (v := values[i]) is not ...}
            for i in range(len(properties))
        ]
    return _Holding(properties, keys)


@cache
def _mapped() -> frozenset[str]:
    """The source attributes a schema column maps, lower-cased (AttributeMap.keys: any case)."""
    return frozenset(name.lower() for names in schemas.mappings().values() for name in names)


def keys_of(properties: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Every key the records' `properties` hold."""
    if isinstance(properties, JSONProperties):
        return properties.keys
    return frozenset().union(*properties)
