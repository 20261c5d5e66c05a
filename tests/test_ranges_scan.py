"""The compiled range scan (ranges_scan.pyx) tells what the Python scan tells, on any bytes.

Generated documents (members with xlinks to ids of their own or of another member, comments,
CDATA, appearances, versions, prefixes or none) scanned in windows of any size; bytes made of
the scan's own tokens, windows starting and ending anywhere; and the corpus's CityGML files,
cut in ranges at their members.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.connectors import citygml_members
from citypipe.connectors.citygml_ranges import plan, self_contained

ranges_scan = pytest.importorskip("citypipe.connectors.ranges_scan")

HEAD = (
    '<?xml version="1.0"?>\n<core:CityModel xmlns:core="http://www.opengis.net/citygml/2.0" '
    'xmlns:gml="http://www.opengis.net/gml" xmlns:xlink="http://www.w3.org/1999/xlink">\n'
)
EXTRAS = [
    "",
    "<!-- a comment -->",
    "<![CDATA[<core:cityObjectMember>]]>",
    "<app:appearanceMember><app:Appearance/></app:appearanceMember>",
    "<vers:Version/>",
    "<core:featureMember/>",
]
TOKENS = [*"<>=\"'# \n\tab", "</", "core:", "x.y-z:", "cityObjectMember", "href", ":id"]
TOKENS += ["<!", "Version", "Appearance", "featureMember"]


@st.composite
def members(draw: st.DrawFn) -> str:
    """A member: its ids, links to its own ids or to another member's, an extra now and then."""
    n = draw(st.integers(0, 4))
    ids = [f"m{draw(st.integers(0, 3))}_{k}" for k in range(n)]
    links = draw(st.lists(st.sampled_from([*ids, "m9_0", ""]), max_size=3))
    prefix = draw(st.sampled_from(["core:", "", "c-1.x:"]))
    body = "".join(
        f'<gml:Polygon gml:id="{i}"><gml:posList>1 2 3</gml:posList></gml:Polygon>' for i in ids
    )
    body += "".join(f"<bldg:lod2Solid xlink:href='#{t}'/>" for t in links)
    body += draw(st.sampled_from(EXTRAS)) if draw(st.integers(0, 5)) == 0 else ""
    return f"<{prefix}cityObjectMember>{body}</{prefix}cityObjectMember>\n"


def _verdicts(path: Path, count: int) -> list[bool]:
    ranges = plan(path, count) or []
    return [self_contained(r) for r in ranges]


def _both(path: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bool], ...]:
    compiled = _verdicts(path, count)
    with monkeypatch.context() as patched:
        patched.setattr(citygml_members, "_compiled_alone", None)
        return compiled, _verdicts(path, count)


@settings(max_examples=300, deadline=None)
@given(st.lists(members(), min_size=2, max_size=12), st.integers(1, 600), st.integers(2, 4))
def test_generated_documents_get_the_same_verdicts(tmp_path_factory, docs, window, count) -> None:
    path = tmp_path_factory.mktemp("doc") / "d.gml"
    path.write_text(HEAD + "".join(docs) + "</core:CityModel>\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(citygml_members, "SCAN_BYTES", window)
        compiled, python = _both(path, count, patched)
    assert compiled == python


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.data())
def test_any_bytes_any_window(tokens, data) -> None:
    """Windows starting and ending anywhere (mid-tag, mid-link) in bytes of the scan's tokens."""
    text = "".join(tokens).encode()
    begin = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(begin, len(text)))
    words = data.draw(st.sampled_from([citygml_members._NOT_ALONE, citygml_members._NOT_ALONE[:2]]))
    links = data.draw(st.booleans())
    expected = citygml_members._alone(text, begin, end, words, links)
    assert ranges_scan.alone(text, begin, end, words, links) == expected


@pytest.mark.parametrize("path", sorted((CORPUS / "citygml").glob("*.gml")), ids=lambda p: p.name)
def test_the_corpus_files_get_the_same_verdicts(path, monkeypatch) -> None:
    """Cut in three ranges, and whole: the links checked from the head on too."""
    compiled, python = _both(path, 3, monkeypatch)
    assert compiled == python
    data, words = path.read_bytes(), citygml_members._NOT_ALONE
    expected = citygml_members._alone(data, 0, len(data), words, True)
    assert ranges_scan.alone(data, 0, len(data), words, True) == expected


@pytest.mark.parametrize("begin", range(12))
def test_a_window_starting_inside_a_member_tag_looks_for_words_from_its_start(begin) -> None:
    """The member whose start tag the window starts inside has its links checked from the
    tag's `<`, but its words only from the window's start (a prefix may hold one)."""
    text = b"<Versionx:cityObjectMember><a gml:id='b'/><c xlink:href='#b'/></x:cityObjectMember>"
    words = citygml_members._NOT_ALONE
    expected = citygml_members._alone(text, begin, len(text), words, True)
    assert ranges_scan.alone(text, begin, len(text), words, True) == expected
    # Version is in the window from its first two bytes; from the member's name on, only the
    # member's end tag is
    assert expected == (2 <= begin <= 10)
