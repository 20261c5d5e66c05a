"""The listener's write-ahead log: a line a kill tore mid-write is cut off when the log opens.

Segments written by hand as a killed listener leaves them (complete lines, then part of one
whose sync never returned), cut at every kind of offset (hypothesis).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.core.notification_log import NotificationLog

_NOTES = st.lists(
    st.dictionaries(st.text(max_size=8), st.text(max_size=40), max_size=4), max_size=12
)


@settings(max_examples=200, deadline=None)
@given(notes=_NOTES, cut=st.floats(0, 1))
def test_reopening_keeps_exactly_the_whole_lines(notes: list[dict], cut: float) -> None:
    lines = [orjson.dumps(n) + b"\n" for n in notes]
    data = b"".join(lines)
    torn = data[: round(cut * len(data))]
    whole = torn[: torn.rfind(b"\n") + 1]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / f"{1:012d}.jsonl").write_bytes(torn)
        log = NotificationLog(folder)
        log.append(b'{"after": "reopening"}')
        closed = log.rotate()
        log.close()
        assert b"".join(p.read_bytes() for p in closed) == whole + b'{"after": "reopening"}\n'


def test_a_tail_without_any_newline_longer_than_a_read_block(tmp_path: Path) -> None:
    segment = tmp_path / f"{7:012d}.jsonl"
    segment.write_bytes(b'{"whole": 1}\n' + b"x" * 200_000)
    NotificationLog(tmp_path).close()
    assert segment.read_bytes() == b'{"whole": 1}\n'
