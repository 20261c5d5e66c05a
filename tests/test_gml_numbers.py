"""Coordinate text parsed in C (gml_walk.parse_numbers) reads what Arrow reads.

Every value must be the double Python's float() and Arrow give (the nearest one), bit for bit;
every text of finite decimal numbers must be read in C (else the fast path is never taken); and
anything else (a token that is no number, nan, inf, 1e309, non-ASCII text) must fall back to
Arrow, so that gml_polygons.parse answers the same with the compiled module and without it.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import CORPUS, SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from citypipe.connectors import gml_polygons
from citypipe.connectors.gml_compiled import compiled

pytestmark = pytest.mark.skipif(compiled is None, reason="gml_walk did not build")

FILES = sorted(
    [*(CORPUS / "citygml").glob("*.gml"), *(CORPUS / "citygml3").glob("*.gml")]
    + [*(SAMPLES / "citygml").glob("*.gml")]
)


def _both(texts: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[tuple, tuple]:
    blank = [i for i, t in enumerate(texts) if not t or t.isspace()]
    fast = gml_polygons.parse(texts, blank)
    with monkeypatch.context() as m:
        m.setattr(gml_polygons, "compiled", None)
        slow = gml_polygons.parse(texts, blank)
    return fast, slow


def _same(fast: tuple, slow: tuple) -> None:
    values, numbers, finite, sizes = fast
    assert values.view(np.int64).tolist() == slow[0].view(np.int64).tolist()  # bit for bit
    assert numbers.tolist() == slow[1].tolist()
    assert finite.tolist() == slow[2].tolist()
    assert sizes.tolist() == slow[3].tolist()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_corpus_coordinate_is_read_in_c_as_arrow_reads_it(path, monkeypatch):
    tree = etree.parse(str(path))
    texts = [e.text or "" for e in tree.iter("{*}posList", "{*}pos", "{*}textureCoordinates")]
    blank = [i for i, t in enumerate(texts) if not t or t.isspace()]
    assert compiled.parse_numbers(texts, blank) is not None
    _same(*_both(texts, monkeypatch))


_FORMATS = (repr, "{:.17g}".format, "{:.15g}".format, "{:.16e}".format, "{:.6f}".format)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_decimal = st.builds(
    lambda sign, digits, point, exponent: f"{sign}{digits[:point]}.{digits[point:]}e{exponent}",
    st.sampled_from(["", "-", "+"]),
    st.text("0123456789", min_size=1, max_size=24),
    st.integers(0, 24),
    st.integers(-345, 310),
)


def _rounded_as_float(tokens: list[str], separator: str) -> None:
    """The tokens' values are float()'s, bit for bit; where one is not finite (1e309, or a
    float written to fewer digits that rounds past the largest), Arrow reads the batch."""
    values = [float(t) for t in tokens]
    parsed = compiled.parse_numbers([separator.join(tokens)], [])
    if not np.isfinite(values).all():
        assert parsed is None
        return
    assert parsed is not None
    assert parsed[1].tolist() == [len(tokens)]
    assert [struct.pack("<d", v) for v in parsed[0].tolist()] == [
        struct.pack("<d", v) for v in values
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_finite, st.sampled_from(_FORMATS)), min_size=1, max_size=40))
def test_finite_numbers_are_the_doubles_float_gives(numbers):
    _rounded_as_float([fmt(x) for x, fmt in numbers], " ")


@settings(max_examples=300, deadline=None)
@given(st.lists(_decimal, min_size=1, max_size=40))
def test_decimal_strings_of_any_length_and_exponent_round_as_float_does(tokens):
    _rounded_as_float(tokens, "\n")


_long_fraction = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}.{fraction}{exponent}",
    st.sampled_from(["", "-"]),
    st.from_regex(r"0|[1-9][0-9]{0,12}", fullmatch=True),
    st.text("0123456789", min_size=7, max_size=13),
    st.sampled_from(["", "e-3", "E12"]),
)
"""Coordinates as GML writes them to ten digits (Melbourne's `321202.7094000664`): a fraction
of eight digits or more is read eight at a time where no digit of the eight is dropped."""


@settings(max_examples=300, deadline=None)
@given(st.lists(_long_fraction, min_size=1, max_size=40))
def test_long_fractions_round_as_float_does(tokens):
    _rounded_as_float(tokens, " ")


_token = st.one_of(
    _finite.map(repr),
    _decimal,
    st.sampled_from(["nan", "inf", "-inf", "1e309", "1e", ".", "-", "1.2.3", "0x10", "1,5"]),
    st.text(st.characters(codec="utf-8"), max_size=4),
)
_space = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\xa0", "\u2003"])
_text = st.builds(
    lambda parts: "".join(t + s for t, s in parts), st.lists(st.tuples(_token, _space))
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_text, min_size=1, max_size=8))
def test_any_text_is_parsed_as_without_the_compiled_module(texts):
    """Junk, blank rings, Unicode spaces: the C path or its fallback answers as Arrow does."""
    _same(*_both(texts, pytest.MonkeyPatch()))
