"""The encoding of text that does not declare one, or declares it wrongly (CSV, some XML).

A UTF-8 BOM is the only reliable statement. Strict UTF-8 comes next: text in another encoding
almost never decodes as UTF-8 by accident. Only then is the encoding guessed.

A file's encoding is decided from all of it, never from where a byte falls: `file_encoding`
reads it through once and weighs every line that is not ASCII.
"""

from __future__ import annotations

import codecs
import io
import re
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import charset_normalizer
import numpy as np

from citypipe.connectors.codepage import plausible_codepage
from citypipe.geo.errors import ConfigurationError

__all__ = [
    "MARK_PATTERN",
    "MarkedUTF8",
    "Rewriting",
    "TextEncoding",
    "detect_encoding",
    "file_encoding",
    "marked_bytes",
    "option_codec",
    "rare",
    "shown",
]

_WESTERN = "cp1252"
"""Preferred when the evidence does not decide: charset_normalizer ranks code pages that decode
the bytes identically, or equally plausibly (short text), in no useful order (cp1250 or even
cp1006 for German text; big5 for one "é" before an "a", with no language in sight), and
cp1252, ISO-8859-1 with more printable characters, is what Western European exports are
written in. Among the code pages that decode the text, the one whose words read as words is
taken (`codepage.plausible_codepage`)."""
_ANY_BYTE = "latin-1"
"""Decodes every byte: the last resort for text that is neither UTF-8 nor the guessed code page."""
_BLOCK = 1 << 20
_MARK = 0x10FF00
"""A byte that is not UTF-8, in a file read as UTF-8, becomes the private use character
U+10FF00 + the byte, which no text holds: its record can be found, rejected and shown as read."""
MARK_PATTERN = "[\\x{10FF00}-\\x{10FFFF}]"
"""The marks, as a pyarrow (RE2) pattern."""
_MARKS = re.compile("[\U0010ff00-\U0010ffff]")
_EVIDENCE = 1 << 18
"""Bytes of the lines that are not UTF-8 from which a code page is guessed."""


def rare(count: int, size: int) -> bool:
    """Whether `count` bytes that text does not hold (NUL, other controls) among `size` are
    damage, to be rejected with their records, rather than the sign of UTF-16 or binary content:
    up to 8, or 1 %, so that a file does not stop being text for being short."""
    return count <= max(8, size // 100)


@dataclass(frozen=True)
class TextEncoding:
    """How a whole file is decoded."""

    codec: str
    """Python codec name: "utf-8", "utf-8-sig" (with a BOM), a code page such as "cp1252"."""
    undecodable: int = 0
    """Lines of a file read as UTF-8 that are not UTF-8: their records are rejected."""
    nul: bool = False
    """Whether the file holds a NUL byte (text never does: its records are rejected)."""


def detect_encoding(data: bytes, whole: bool = False) -> str | None:
    """The Python codec name for `data`, or None when it is not text.

    "utf-8-sig" with a BOM, "utf-8" when it decodes as UTF-8, else the code page among
    charset_normalizer's candidates whose words read as words (such as "cp1252"). `data` may
    be the head of a file, cut anywhere: a character cut at the end does not count against
    UTF-8, unless `data` is `whole` (a file's last word "Vilijampolė" in cp1257 ends in a byte
    that begins a UTF-8 character). A few NUL bytes (damage) do not decide anything. UTF-16
    and -32 without a BOM are taken only where NUL bytes show them (the ASCII of delimiters,
    digits and names holds one in each character): charset_normalizer names them for a few
    bytes of a code page ("Užupis" in cp1257 as the three characters "嗾異楳").
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    nul = data.count(b"\x00") if b"\x00" in data else 0  # found at memchr's speed: 40x count's
    if nul and rare(nul, len(data)):
        data, nul = data.replace(b"\x00", b""), 0
    if not nul:  # NUL is not text in UTF-8 or any single-byte code page
        try:
            data.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data" and not whole:
                return "utf-8"
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    name = codecs.lookup(best.encoding).name
    if _wide(name) and nul:
        return name
    if nul:
        return None
    candidates = [m.encoding for m in matches if not _wide(codecs.lookup(m.encoding).name)]
    found = plausible_codepage(data, candidates, _WESTERN)
    return found or (None if _wide(name) else name)


def _wide(codec: str) -> bool:
    """Whether `codec` (Python's name) writes a character in two or four bytes."""
    return codec.startswith(("utf-16", "utf-32"))


def option_codec(path: Path, encoding: str) -> str:
    """Python's name for the codec an `encoding` option names; ConfigurationError for none."""
    try:
        return codecs.lookup(encoding).name
    except LookupError as e:
        raise ConfigurationError(f"{path}: unknown encoding {encoding!r}") from e


def file_encoding(f: BinaryIO) -> TextEncoding | None:
    """The encoding of the whole file `f` (read from its start), or None when it is not text.

    UTF-8 when it has a BOM, or when at least as many of its lines that are not ASCII are UTF-8
    as are not (the others are then rejected record by record); else the code page guessed from
    the lines that are not UTF-8, if it decodes the whole file, else ISO-8859-1. UTF-16 and -32,
    which a few lines cannot be cut from, are taken from the head.
    """
    head = f.read(_BLOCK)
    guess = detect_encoding(head, whole=len(head) < _BLOCK)
    if guess is None or _wide(guess):
        return TextEncoding(guess) if guess else None
    utf8 = other = kept = at = 0
    nul = False
    evidence: list[bytes] = []
    valid: list[tuple[int, int]] = []  # blocks of UTF-8, their lines counted only if need be
    for block in _lines(f, head):
        at += len(block)
        nul = nul or b"\x00" in block
        if block.isascii():
            continue
        try:
            block.decode("utf-8")
            valid.append((at - len(block), len(block)))
            continue
        except UnicodeDecodeError:
            pass
        for line in block.splitlines():
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                utf8 += 1
            except UnicodeDecodeError:
                other += 1
                if kept < _EVIDENCE:
                    evidence.append(line)
                    kept += len(line)
    bom = head.startswith(codecs.BOM_UTF8)
    if other and not bom:
        for start, size in valid:
            f.seek(start)
            utf8 += _lines_not_ascii(f.read(size))
    if bom or utf8 >= other:
        return TextEncoding("utf-8-sig" if bom else "utf-8", other, nul)
    codec = detect_encoding(b"\n".join(sorted(evidence)), whole=True) or _ANY_BYTE  # not in order
    return TextEncoding(codec if _decodes(f, codec) else _ANY_BYTE, 0, nul)


def _lines(f: BinaryIO, head: bytes) -> Iterator[bytes]:
    """The file from its start in blocks of whole lines (a line longer than a block is cut after
    an ASCII byte, which ends a character in UTF-8 and in every code page)."""
    rest = b""
    f.seek(len(head))
    for block in _blocks(f, head):
        data = rest + block
        cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if cut < 0:
            ascii_at = np.flatnonzero(np.frombuffer(data, np.uint8) < 0x80)
            cut = int(ascii_at[-1]) if ascii_at.size else len(data) - 1
        yield data[: cut + 1]
        rest = data[cut + 1 :]
    if rest:
        yield rest


def _blocks(f: BinaryIO, head: bytes) -> Iterator[bytes]:
    yield head
    while block := f.read(_BLOCK):
        yield block


def _lines_not_ascii(block: bytes) -> int:
    """How many lines of `block` hold a byte that is not ASCII."""
    a = np.frombuffer(block, np.uint8)
    starts = np.flatnonzero((a == 10) | (a == 13)) + 1
    starts = np.concatenate(([0], starts[starts < a.size]))
    return int(np.count_nonzero(np.maximum.reduceat(a, starts) >= 0x80))


def _decodes(f: BinaryIO, codec: str) -> bool:
    """Whether the whole file decodes in `codec`."""
    decoder = codecs.getincrementaldecoder(codec)()
    f.seek(0)
    try:
        for block in _blocks(f, b""):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _mark(e: UnicodeError) -> tuple[str, int]:
    assert isinstance(e, UnicodeDecodeError)
    return "".join(chr(_MARK + b) for b in e.object[e.start : e.end]), e.end


codecs.register_error("citypipe.mark", _mark)


class Rewriting(io.RawIOBase):
    """The open `file` rewritten as it is read, a block at a time (`_more`), for a reader
    (pyarrow's CSV reader) that takes a binary file: any read size gives the same bytes."""

    _block = _BLOCK
    """About how many bytes of the file to rewrite at a time."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self._file = file
        self._pending = b""

    @abstractmethod
    def _more(self) -> bytes:
        """The next rewritten bytes, b"" at the end of the file only."""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            more = self._more()
            if not more:
                break
            self._pending += more
        size = len(self._pending) if size < 0 else size
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def close(self) -> None:
        self._file.close()
        super().close()


class MarkedUTF8(Rewriting):
    """The open `file` read as UTF-8, a mark for each byte that is not (see `_MARK`)."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self._decoder = codecs.getincrementaldecoder("utf-8")("citypipe.mark")

    def _more(self) -> bytes:
        while block := self._file.read(self._block):
            if text := self._decoder.decode(block):  # "" for a block that ends mid-character
                return text.encode()
        return self._decoder.decode(b"", final=True).encode()


def marked_bytes(text: str) -> bytes:
    """The bytes that were not UTF-8 in `text` read by `MarkedUTF8`."""
    return bytes(ord(c) - _MARK for c in _MARKS.findall(text))


def shown(text: str) -> str:
    """`text` as read, with its marks and NUL bytes written as `\\xNN`."""
    return _MARKS.sub(lambda m: f"\\x{ord(m[0]) - _MARK:02x}", text).replace("\x00", "\\x00")
