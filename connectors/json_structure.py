"""Where the structure of JSON bytes is: its brackets (and commas) outside strings, found with
numpy a window at a time, with no Python per byte.

Whether a window starts inside a string, or right after an odd run of backslashes, is carried
from the window before (`Strings`), so that a string longer than a window costs what other
bytes cost, and escaped quotes are found from the ends of backslash runs, as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SEPARATORS", "Strings", "outside_strings", "structure"]

_INTERESTING = b'{}[]"'
SEPARATORS = _INTERESTING + b","


@dataclass
class Strings:
    """Where a window starts with respect to strings: inside one or not, and after an odd run of
    backslashes (its first byte escaped). Carried from window to window, so that a string longer
    than a window costs no more than other bytes."""

    inside: bool = False
    odd_backslashes: bool = False


def _escaped_quotes(a: np.ndarray, quotes: np.ndarray, state: Strings) -> np.ndarray:
    """Which of the quotes at `quotes` follow an odd run of backslashes, found from the runs'
    ends with array operations: a string of a million escaped quotes costs no Python per quote."""
    after = a[np.maximum(quotes - 1, 0)] == 92
    after[quotes == 0] = state.odd_backslashes
    if not after.any():
        return after
    slashes = np.flatnonzero(a == 92)
    if not slashes.size:  # only a first quote, escaped by the window before
        return after
    step = np.diff(slashes) != 1
    starts = slashes[np.concatenate([[True], step])]
    ends = slashes[np.concatenate([step, [True]])]
    length = ends - starts + 1
    if starts[0] == 0:  # the run goes on from the window before
        length[0] += state.odd_backslashes
    escaped = np.zeros(len(a) + 1, bool)  # the byte after an odd run is escaped
    escaped[ends[length % 2 == 1] + 1] = True
    escaped[0] = state.odd_backslashes
    return escaped[quotes]


def outside_strings(a: np.ndarray, state: Strings, wanted: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Positions and bytes of the `wanted` characters (quotes aside) outside strings in `a`;
    `state` says where `a` starts, and is updated to where the next window starts."""
    at = np.flatnonzero(_any_of(a, wanted))
    chars = a[at]
    quote = chars == 34
    if quote.any():
        quote[np.flatnonzero(quote)[_escaped_quotes(a, at[quote], state)]] = False
    opened = np.cumsum(quote) + state.inside  # quotes so far: odd inside a string
    keep = (opened & 1 == 0) & ~quote
    if len(opened):
        state.inside = bool(opened[-1] & 1)
    if len(a) and a[-1] == 92:  # the run of backslashes the window ends with
        tail = a[::-1] != 92
        run = int(tail.argmax()) if tail.any() else len(a) + state.odd_backslashes
        state.odd_backslashes = run % 2 == 1
    else:
        state.odd_backslashes = False
    return at[keep], chars[keep]


def _any_of(a: np.ndarray, wanted: bytes) -> np.ndarray:
    """Where `a` holds one of `wanted`, as booleans: comparisons run at memory speed, where a
    look-up table's gather and a nonzero over bytes took 4x as long."""
    found = a == wanted[0]
    for c in wanted[1:]:
        found |= a == c
    return found


def structure(a: np.ndarray, state: Strings) -> tuple[np.ndarray, np.ndarray]:
    """Positions of brackets outside strings in `a`, and +1/-1."""
    pos, chars = outside_strings(a, state, _INTERESTING)
    opening = (chars == 123) | (chars == 91)
    return pos, np.where(opening, 1, -1).astype(np.int8)
