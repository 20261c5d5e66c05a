"""JSON parsed as orjson parses it, but exact for integers no 64-bit type holds.

orjson reads an integer beyond 64 bits (above 2**64 - 1 or below -2**63) as a float, losing its
last digits: a 30-digit parcel or object id would no longer be the one the source names, and no
column of the lake (nor the JSON text of `properties`, which orjson writes) holds such an integer
as a number. So where the text holds one, it is parsed again by Python's parser, which keeps
every integer exact: those within 64 bits stay integers, the wider ones become their digits as
text (`WideInteger`), which the records say (`WIDE_NOTE`). Only texts holding a run of 20 or
more digits are parsed twice: the others cost a search for the run (`has_digit_run`), compiled
in json_digits.pyx where it built (Barcelona's barris, 1.3 MB nearly all coordinates: 1.1 ms
by a byte translation and a search of the copy, beside orjson's 4.8), where a regular
expression for integer literals took 25 ms or more.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # base imports http, which reads its answers with this module
    from citypipe.connectors.base import SourceBatch

__all__ = ["WIDE_NOTE", "WideInteger", "Widened", "loads", "noted", "noted_batch", "wide_paths"]

_LOW, _HIGH = -(1 << 63), (1 << 64) - 1
"""The integers orjson keeps (int64 and uint64)."""
_DIGITS = bytes(0 if 48 <= b <= 57 else 1 for b in range(256))
"""Each byte as 0 where it is a digit: a run of digits is a run of zero bytes, found by a plain
search."""
_RUN = 20
"""The shortest integer beyond 64 bits has 20 digits (a run in a string or a fraction only
costs the second parse)."""


def digit_run_in_python(data: bytes | bytearray, run: int) -> bool:
    """Whether `data` holds `run` ASCII digits in a row: json_digits.has_digit_run where the
    compiled module did not build."""
    return bytes(run) in data.translate(_DIGITS)


try:  # compiled, where it built
    from citypipe.connectors.json_digits import has_digit_run
except ImportError:
    has_digit_run = digit_run_in_python
WIDE_NOTE = "citypipe:integers_as_text"
"""The property naming the values that were integers beyond 64 bits, kept as their digits."""


class WideInteger(str):
    """An integer beyond 64 bits, as the digits the source wrote."""


class Widened(list[Any]):
    """A parsed array some element of which holds a `WideInteger`."""


def loads(data: bytes | bytearray | memoryview | str) -> tuple[Any, bool]:
    """The JSON value of `data`, and whether it holds an integer beyond 64 bits (then a
    `WideInteger`; a top-level array is `Widened`); orjson's JSONDecodeError for what orjson
    refuses."""
    value = orjson.loads(data)
    raw = (
        data.encode()
        if isinstance(data, str)
        else data
        if isinstance(data, bytes | bytearray)
        else bytes(data)
    )
    if not has_digit_run(raw, _RUN):
        return value, False
    wide: list[str] = []

    def integer(text: str) -> int | str:
        number = int(text)
        if _LOW <= number <= _HIGH:
            return number
        wide.append(text)
        return WideInteger(text)

    try:
        exact = json.loads(raw, parse_int=integer)
    except RecursionError:  # nesting orjson reads and Python's parser does not: as orjson read it
        return value, False
    if wide and type(exact) is list:
        exact = Widened(exact)
    return exact, bool(wide)


def wide_paths(value: Any, path: str = "") -> Iterator[str]:
    """Where `value` holds a `WideInteger`: `a.b[2]`."""
    if type(value) is WideInteger:
        yield path
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from wide_paths(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from wide_paths(v, f"{path}[{i}]")


def noted(properties: Mapping[str, Any]) -> Mapping[str, Any]:
    """`properties`, with `WIDE_NOTE` naming the values that are integers beyond 64 bits."""
    paths = list(wide_paths(properties))
    if not paths:
        return properties
    said = f"{', '.join(paths)}: integers beyond 64 bits, kept exact as text"
    return {**properties, WIDE_NOTE: said}


def noted_batch(batch: SourceBatch, records: list[Any]) -> SourceBatch:
    """`batch`, its properties noting their integers beyond 64 bits where its `records` (as
    parsed) hold some."""
    if isinstance(records, Widened):
        batch.properties = list(map(noted, batch.properties))
    return batch
