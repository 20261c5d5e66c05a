"""Short text in a code page: read in the code page whose words read as words.

A feature or a few rows carry too little text for charset_normalizer's statistics: Catalan
names in Latin-1 were read as Vietnamese cp1258 ("Gl̀ries"), Baltic cp775 ("Pe±alver") or Mac
Icelandic ("PlaÁa"). Each Barcelona fountain with a name that is not ASCII, alone in a file
written in Latin-1 and in cp1252, must read back as the sample spells it.
"""

from __future__ import annotations

import json

import pytest

from citypipe.connectors.codepage import implausible
from citypipe.connectors.geojson import GeoJSONConnector
from citypipe.connectors.text import detect_encoding
from citypipe.core.ingest import ingest
from citypipe.geo.errors import DataError

FOUNTAINS = "barcelona_drinking_fountains.geojson"


def _one_feature(properties: dict) -> str:
    feature = {"type": "Feature", "properties": properties, "geometry": None}
    return json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False)


@pytest.mark.parametrize("codec", ["latin-1", "cp1252"])
def test_each_fountain_alone_in_a_western_code_page_reads_as_written(sample, codec):
    doc = json.loads(sample(FOUNTAINS).read_text(encoding="utf-8"))
    texts = [
        _one_feature({k: v for k, v in f["properties"].items() if isinstance(v, str)})
        for f in doc["features"]
    ]
    texts = [t for t in texts if not t.isascii()]
    assert len(texts) > 100  # Plaça, Glòries, Paral·lel, nº5 ...
    misread = [t for t in texts if (b := t.encode(codec)).decode(detect_encoding(b)) != t]
    assert misread == []


def test_a_latin1_geojson_of_one_fountain_lands_with_its_name(sample, lake, read_lake):
    """Through the whole ingest, as a user's file of one feature would go."""
    doc = json.loads(sample(FOUNTAINS).read_text(encoding="utf-8"))
    feature = next(f for f in doc["features"] if "Glòries" in json.dumps(f, ensure_ascii=False))
    path = sample(FOUNTAINS).with_name("one.geojson")
    text = json.dumps({"type": "FeatureCollection", "features": [feature]}, ensure_ascii=False)
    path.write_bytes(text.encode("latin-1"))
    report = ingest(path, "one", lake)
    assert report.features == 1
    [props] = read_lake("one").column("properties").to_pylist()
    names = {k: v for k, v in feature["properties"].items() if isinstance(v, str)}
    assert names.items() <= json.loads(props).items()


@pytest.mark.parametrize(
    ("text", "codec", "misread_as"),
    [
        ("Plac Wolności; Kraków; Gdańsk; Wrocław", "cp1250", "cp1252"),  # "Wroc³aw"
        ("Москва, улица Тверская", "cp1251", "cp1252"),  # "Ìîñêâà"
        ("Θεσσαλονίκη πλατεία Αριστοτέλους", "cp1253", "cp1252"),  # "Èåóóáëïíßêç"
        ("Calle Peñalver; Logroño; Constitución", "latin-1", "cp775"),  # "Pe±alver"
        ("Plaça de les Glòries", "latin-1", "cp1258"),  # "Gl̀ries"
    ],
)
def test_a_wrong_code_page_shows_in_the_words(text, codec, misread_as):
    data = text.encode(codec)
    assert implausible(data.decode(codec)) == 0
    assert implausible(data.decode(misread_as)) > 0
    assert data.decode(detect_encoding(data)) == text


PLACES = {
    "Prague": "Náměstí Míru; Žižkov; Křižíkova; Řeporyje; Čakovice; Ďáblice; Hlavní nádraží",
    "Warsaw": "Plac Zbawiciela; Żoliborz; Świętokrzyska; Dworzec Gdański; Śródmieście; Łazienki",
    "Budapest": "Erzsébetváros; Józsefváros; Óbuda; Újpest; Kőbánya; Hűvösvölgy; Rákosmente",
    "Vilnius": "Šnipiškės; Žvėrynas; Užupis; Antakalnis; Pašilaičiai; Karoliniškės",
    "Riga": "Brīvības iela; Ķengarags; Pļavnieki; Čiekurkalns; Āgenskalns; Mežaparks; Šampēteris",
}
"""Districts and streets of each city as the city writes them."""


@pytest.mark.parametrize(
    ("city", "codec"),
    [
        ("Prague", "cp1250"), ("Prague", "iso8859-2"), ("Warsaw", "cp1250"),
        ("Warsaw", "iso8859-2"), ("Budapest", "cp1250"), ("Budapest", "iso8859-2"),
        ("Vilnius", "cp1257"), ("Vilnius", "iso8859-13"), ("Riga", "cp1257"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("form", ["csv", "geojson"])
def test_central_european_and_baltic_code_pages_read_as_written(
    tmp_path, lake, read_lake, city, codec, form
):
    """A city's names in its Windows or ISO code page, a row or feature each: read as cp1252
    ("Námìstí Míru", "Ðnipiðkës", "Brîvîbas"), or as the Turkish cp1254 ("Meşaparks") or the
    Windows page for the ISO one ("®iľkov"), they land as the city writes them."""
    names = PLACES[city].split("; ")
    if form == "csv":
        text = "\n".join(["name;lon;lat", *(f"{n};{i}.5;{i}.25" for i, n in enumerate(names))])
    else:
        features = [
            {"type": "Feature", "properties": {"name": n},
             "geometry": {"type": "Point", "coordinates": [i + 0.5, i + 0.25]}}
            for i, n in enumerate(names)
        ]  # fmt: skip
        text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)
    path = tmp_path / f"places.{form}"
    path.write_bytes(text.encode(codec))
    report = ingest(path, "places", lake)
    assert (report.features, report.rejects) == (len(names), 0)
    landed = [json.loads(p)["name"] for p in read_lake("places").column("properties").to_pylist()]
    assert sorted(landed) == sorted(names)


@pytest.mark.parametrize("codec", ["latin-1", "cp1252"])
def test_fountains_together_in_a_western_code_page_read_as_written(sample, codec):
    """Barcelona's fountains in one file, Catalan and Spanish names side by side ("Làmina",
    "Muñoz"): no one language writes both "à" and "ñ", Spain does."""
    text = sample(FOUNTAINS).read_text(encoding="utf-8")
    data = text.encode(codec)
    assert data.decode(detect_encoding(data)) == text


@pytest.mark.parametrize("streamed", [False, True])
def test_the_encoding_option_names_a_json_documents_code_page(
    tmp_path, lake, read_lake, streamed, monkeypatch
):
    """Two Riga streets in cp1257 read as well in a Western code page ("Brîvîbas iela"): the
    catalog's `encoding` says which, for a document parsed whole or streamed. A byte the named
    code page leaves undefined refuses the document."""
    names = ["Brīvības iela", "Vecrīga"]
    features = [{"type": "Feature", "properties": {"name": n}, "geometry": None} for n in names]
    text = json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)
    path = tmp_path / "riga.geojson"
    path.write_bytes(text.encode("cp1257"))
    if streamed:
        monkeypatch.setattr(GeoJSONConnector, "batch_bytes", 64)
    ingest(path, "riga", lake, options={"encoding": "cp1257"})
    landed = [json.loads(p)["name"] for p in read_lake("riga").column("properties").to_pylist()]
    assert sorted(landed) == sorted(names)
    path.write_bytes(path.read_bytes().replace(b"iela", b"iel\x81"))  # 0x81: none in cp1257
    with pytest.raises(DataError, match="not cp1257 as its encoding option says"):
        ingest(path, "riga", lake, options={"encoding": "cp1257"})


def test_western_names_of_several_languages_in_one_file_stay_western():
    """Catalan, Swedish, Icelandic and German names in one cp1252 file: no one language writes
    "ò" and "å", and read as cp1250 ("Glňries", "Ĺre") each word is Slovak; a cp1252 file
    mixes the languages it is made for."""
    text = "Plaça de les Glòries; Åre; Þingvellir; Königstraße; Malmö"
    data = text.encode("cp1252")
    assert data.decode(detect_encoding(data)) == text


BALTIC = {
    "Kaunas": "Aleksotas; Šančiai; Žaliakalnis; Petrašiūnai; Šilainiai; Vilijampolė",
    "Tallinn": "Põhja-Tallinn; Lasnamäe; Nõmme; Kesklinn; Mustamäe; Haabersti; Pirita",
    "Liepāja": "Karosta; Ezerkrasts; Vecliepāja; Jaunliepāja; Zaļā birze; Tosmare",
}
"""More districts, as the cities write them: Lithuanian, Estonian, Latvian."""


@pytest.mark.parametrize(
    ("city", "codec"),
    [
        ("Vilnius", "iso8859-4"), ("Riga", "iso8859-4"), ("Riga", "iso8859-13"),
        ("Kaunas", "cp1257"), ("Kaunas", "iso8859-13"), ("Kaunas", "iso8859-4"),
        ("Tallinn", "cp1257"), ("Tallinn", "iso8859-4"), ("Liepāja", "iso8859-4"),
    ],
)  # fmt: skip
def test_baltic_iso_code_pages_read_as_written(tmp_path, lake, read_lake, city, codec):
    """ISO-8859-4 (Latin-4) and ISO-8859-13 (Latin-7), the Baltic ISO pages: read as Czech's
    ISO page, Lithuanian "ė" is a Czech "ě" after letters Czech never writes it after
    ("Šnipiškěs"); read in the Windows Baltic page, Latin-4's letters sit elsewhere."""
    names = {**PLACES, **BALTIC}[city].split("; ")
    text = "\n".join(["name;lon;lat", *(f"{i}.5;{i}.25;{n}" for i, n in enumerate(names))])
    path = tmp_path / "places.csv"
    path.write_bytes(text.replace("name;lon;lat", "lon;lat;name").encode(codec))
    report = ingest(path, "places", lake)
    assert (report.features, report.rejects) == (len(names), 0)
    landed = [json.loads(p)["name"] for p in read_lake("places").column("properties").to_pylist()]
    assert sorted(landed) == sorted(names)


def test_lithuanian_quotes_in_latin_7_read_as_written():
    """ISO-8859-13 writes Lithuanian „quotes“ where cp1257 has no character: the text is
    Latin-7's, not a page that reads every byte as something else."""
    text = "Gedimino pr. 9; „Vilniaus vandenys“; Šnipiškių seniūnija; Žvėryno tiltas"
    data = text.encode("iso8859-13")
    assert data.decode(detect_encoding(data, whole=True)) == text


@pytest.mark.parametrize(
    ("word", "codec"),
    [("Užupis", "cp1257"), ("Žižkov", "cp1250"), ("Čakovice", "iso8859-2"), ("Ülejõe", "cp1257")],
)
def test_a_short_word_is_not_taken_for_utf16(word, codec):
    """Six or eight bytes of a code page, no NUL among them: charset_normalizer names UTF-16
    ("Užupis" as "嗾異楳"), which would hold a NUL in each ASCII character."""
    data = word.encode(codec)
    assert not detect_encoding(data, whole=True).startswith(("utf-16", "utf-32"))


def test_a_whole_text_ending_in_a_code_page_letter_is_not_utf8():
    """Lithuanian "Vilijampolė" in cp1257 ends in 0xEB, which begins a three-byte UTF-8
    character: in a head cut anywhere that is a character cut short, in a whole file it is
    not UTF-8."""
    data = "Vilnius; Vilijampolė".encode("cp1257")
    assert detect_encoding(data) == "utf-8"  # a head: the rest may follow
    assert detect_encoding(data, whole=True) not in ("utf-8", "utf-8-sig")


@pytest.mark.parametrize(
    ("word", "codec", "misread"),
    [("Šampēteris", "cp1257", "Ðampçteris"), ("Řeporyje", "cp1250", "Øeporyje")],
)
def test_one_word_that_reads_in_two_pages_is_named_by_the_encoding_option(
    tmp_path, lake, read_lake, word, codec, misread
):
    """One word reads as well in two code pages (Latvian "Šampēteris" in cp1257 is a
    plausible Icelandic-looking word in cp1252's letters, Czech "Řeporyje" a Danish-looking
    one): the bytes cannot tell, and the `encoding` option says which."""
    path = tmp_path / "one.csv"
    path.write_bytes(f"lon;lat;name\n24.1;56.9;{word}\n".encode(codec))
    assert word.encode(codec).decode("cp1252") in (misread, misread.replace("ç", "ç"))
    ingest(path, "one", lake, options={"encoding": codec})
    [props] = read_lake("one").column("properties").to_pylist()
    assert json.loads(props)["name"] == word
