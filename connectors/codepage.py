"""Which single-byte code page reads text as words: the choice among those that decode it.

charset_normalizer ranks code pages by statistics that short text (a feature's few names, a
CSV of ten rows) cannot carry: it reads Catalan Latin-1 as Vietnamese cp1258 ("Gl̀ries"),
Spanish as Baltic cp775 ("Pe±alver"), and "Plaça" as Mac Icelandic ("PlaÁa"). A wrong code
page shows in the words themselves: a symbol or a combining mark inside a word, a capital
after a small letter, scripts mixed in one word, or a Latin word made mostly of accented
letters (Cyrillic or Greek read as Latin-1), or a word whose accented letters no one language
writes together: Czech "Náměstí" read as cp1252 is "Námìstí" (an Italian ì among Spanish á and
í), Lithuanian "Šnipiškės" as cp1252 "Ðnipiðkës"; and letters no language the code page is
made for writes. The code page whose words show fewest of these is taken, the Western one
(what Western European exports are written in) when it is as good.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["implausible", "plausible_codepage"]

_COMMON = (
    "cp1250", "iso8859-2", "cp1251", "cp1253", "cp1254", "cp1257", "iso8859-13", "iso8859-4"
)  # fmt: skip
"""Windows code pages of Central Europe, Cyrillic, Greek, Turkish and the Baltic, and ISO's for
Central Europe and the Baltic (whose letters sit elsewhere, or which have „quotes“ the Windows
page has not), tried after the Western one whether or not charset_normalizer names them."""
_LANGUAGES = {
    "de": "äöüß",
    "fr": "àâæçéèêëîïôœùûüÿ",
    "es": "áéíñóúü",  # Spanish, Galician, Irish
    "ca": "àçèéíïòóúü",
    "pt": "áâãàçéêíóôõú",
    "it": "àèéìíîòóù",
    "nl": "áéëíïóöúü",
    "da": "æøåéóàü",  # Danish, Norwegian
    "sv": "åäöéü",
    "fi": "åäöšž",
    "is": "áðéíóúýþæö",
    "fo": "áðíóúýæø",
    "et": "äöõüšž",
    "cs": "áčďéěíňóřšťúůýž",
    "sk": "áäčďéíĺľňóôŕšťúýž",
    "pl": "ąćęłńóśźż",
    "hu": "áéíóöőúüű",
    "hr": "čćđšž",  # Slovene, Croatian, Bosnian, Serbian
    "ro": "ăâîșțşţ",
    "sq": "çë",
    "lt": "ąčęėįšųūž",
    "lv": "āčēģīķļņšūž",
    "tr": "çğıöşüâî",
}
_ALPHABETS = tuple(frozenset(letters) for letters in _LANGUAGES.values())
"""The accented Latin letters of the languages written in the Windows and ISO code pages: a
word's accented letters are all of one of them."""
_ALPHABETS_OF = {
    codecs.lookup(name).name: tuple(frozenset(_LANGUAGES[code]) for code in languages.split())
    for names, languages in (
        ("cp1252 latin-1 iso8859-15", "de fr es ca pt it nl da sv fi is fo et sq"),
        ("cp1250 iso8859-2", "cs sk pl hu hr ro sq de"),
        ("cp1257 iso8859-13 iso8859-4", "lt lv et pl de"),
        ("cp1254 iso8859-9", "tr"),
    )
    for name in names.split()
}
"""The alphabets of the languages each code page is made for: a word read in it is written in
one of them (Lithuanian read as cp1250, "Paąilaičiai", has a Polish "ą" beside a Czech "č")."""
_WRITTEN_IN = {name: frozenset().union(*alphabets) for name, alphabets in _ALPHABETS_OF.items()}
"""The accented Latin letters of the languages each code page is made for, which one file may
mix (Catalan and Swedish names in one cp1252 file)."""
_MISPLACED = re.compile(r"(?<![bdfmnptvBDFMNPTV])[ěĚ]")
"""Czech, the one language that writes "ě", writes it only after b, d, f, m, n, p, t or v:
Lithuanian "ė" read in Czech's ISO page is "ě" after any letter ("Šnipiškěs")."""
_SCORED = 1 << 16
"""Characters whose words are weighed (a sample of the lines of longer text): the letters a
code page misreads show in a few lines as in all."""
_NEUTRAL = frozenset("ªºµ")
_LEGACY = re.compile(r"(mac|hp)-.*|cp(?!874)[4-8]\d\d|cp1006|cp1125|kz1048|ptcp154")
"""DOS, Mac and HP code pages (Python's names)."""
_WORD = re.compile(r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f\s]+")
"""A run of letters, digits and characters that are not ASCII, between ASCII punctuation or
spaces."""
_IN_WORDS = {"Pd", "Pi", "Pf"}
"""Dashes and quotes, which words hold ("l’Eixample", "Rhein‐Main"), as Catalan's "l·l" does its
middle dot."""


def _script(c: str) -> str:
    """The script of letter `c` as its Unicode name begins ("LATIN", "CYRILLIC", "GREEK"...);
    below U+0250 every letter is Latin, the ordinals "ª" "º" and "µ" among them."""
    return "LATIN" if c < "\u0250" else unicodedata.name(c, "?").split(" ", 1)[0]


def _word_faults(word: str, alphabets: tuple[frozenset[str], ...] = _ALPHABETS) -> int:
    """The faults of one word read in a code page whose languages write `alphabets`."""
    faults = len(_MISPLACED.findall(word))
    scripts = set()
    ascii_letters = accented = 0
    for i, c in enumerate(word):
        category = unicodedata.category(c)
        if c.isascii():
            ascii_letters += c.isalpha()
            scripts.add("LATIN" if c.isalpha() else "")
            continue
        if category[0] == "M" or category == "Cc":
            faults += 1  # code pages hold composed letters, not combining marks; no controls
        elif category[0] != "L":
            # a symbol between letters ("¿ó³æ") or before them ("£ódĽ")
            inner = 0 < i < len(word) - 1 or (i == 0 and category[0] == "S" and len(word) > 1)
            faults += inner and category not in _IN_WORDS and c != "·"
        else:
            scripts.add(_script(c))
            accented += _script(c) == "LATIN"
            faults += category == "Lu" and i > 0 and word[i - 1].islower()  # "PlaÁa"
    scripts.discard("")
    faults += len(scripts) > 1
    if scripts == {"LATIN"} and not _one_language(word, alphabets):  # "Námìstí"
        faults += 1 + (accented > 2 * ascii_letters and len(word) > 3)  # "Ìîñêâà", not "Łódź"
    return faults


def _one_language(word: str, alphabets: tuple[frozenset[str], ...]) -> bool:
    """Whether the accented Latin letters of `word` are all of one of `alphabets`."""
    accented = {c for c in word.lower() if not c.isascii() and c.isalpha()} - _NEUTRAL
    return not accented or any(accented <= alphabet for alphabet in alphabets)


def _foreign_letters(text: str, name: str) -> int:
    """How many of the accented Latin letters of `text` no language the code page `name`
    (Python's codec name) is made for writes: Latvian read as Turkish cp1254 has a Spanish
    "í", a French "ï" and "è" among Turkish letters ("Íengarags", "Pïavnieki", "Èiekurkalns"),
    one in each word."""
    alphabet = _WRITTEN_IN.get(name)
    if alphabet is None:
        return 0
    accented = {c for c in text.lower() if not c.isascii() and c.isalpha()} - _NEUTRAL
    return sum(_script(c) == "LATIN" for c in accented - alphabet)


def implausible(text: str, codepage: str | None = None) -> int:
    """How many faults the words of `text` that are not ASCII show (0 for plausible text),
    and, read in `codepage`, the letters no language it is made for writes."""
    name = codecs.lookup(codepage).name if codepage else ""
    alphabets = _ALPHABETS_OF.get(name, _ALPHABETS)
    words = sum(_word_faults(w, alphabets) for w in _WORD.findall(text) if not w.isascii())
    return words + (_foreign_letters(text, name) if name else 0)


def _sample(text: str) -> str:
    """About `_SCORED` characters of `text`: every n-th of its lines where it is longer."""
    if len(text) <= _SCORED:
        return text
    lines = text.splitlines()
    return "\n".join(lines[:: -(-len(text) // _SCORED)])


def plausible_codepage(data: bytes, candidates: Iterable[str], western: str) -> str | None:
    """The code page among `western`, the common ones and `candidates` (in this order of
    preference) that decodes `data` with the fewest faults, or None when none decodes it.

    DOS, Mac and HP code pages are taken only when no other decodes `data`: exports are rarely
    written in them, and one odd word in the source ("lÀngel") must not turn a file to them."""
    names = dict.fromkeys(codecs.lookup(c).name for c in (western, *_COMMON, *candidates))
    best: tuple[int, str] | None = None
    for name in sorted(names, key=lambda n: bool(_LEGACY.fullmatch(n))):
        if best is not None and _LEGACY.fullmatch(name):
            break
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        faults = implausible(_sample(text), name)
        if best is None or faults < best[0]:
            best = (faults, name)
        if faults == 0:
            break
    return None if best is None else best[1]
