"""The encoding of text that does not declare one, or declares it wrongly (CSV, some XML).

A UTF-8 BOM is the only reliable statement. Strict UTF-8 comes next: text in another encoding
almost never decodes as UTF-8 by accident. Only then is the encoding guessed.
"""

from __future__ import annotations

import codecs

import charset_normalizer

__all__ = ["detect_encoding"]

_WESTERN = "cp1252"
"""Preferred when the evidence does not decide: charset_normalizer ranks code pages that decode
the bytes identically, or equally plausibly (short text), in no useful order (cp1250 or even
cp1006 for German text), and cp1252, ISO-8859-1 with more printable characters, is what
Western European exports are written in."""


def detect_encoding(data: bytes) -> str | None:
    """The Python codec name for `data`, or None when it is not text.

    "utf-8-sig" with a BOM, "utf-8" when it decodes as UTF-8, else charset_normalizer's guess
    (such as "cp1252"). `data` may be the head of a file, cut anywhere: a character cut at
    the end does not count against UTF-8.
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" not in data:  # NUL is not text in UTF-8 or any single-byte code page
        try:
            data.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data":
                return "utf-8"
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    name = codecs.lookup(best.encoding).name
    if b"\x00" in data and not name.startswith(("utf-16", "utf-32")):
        return None
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    if any(_WESTERN in m.could_be_from_charset for m in tied):
        try:
            data.decode(_WESTERN)  # charset_normalizer judges samples of large data
            return _WESTERN
        except UnicodeDecodeError:
            pass
    return name
