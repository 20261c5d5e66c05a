"""Every class of the city-model standards has a theme; only the standards' catch-alls are `other`.

The class lists are the standards' own (tests/standard_classes.yaml names where each comes
from); documents built here from those lists check the way a class name travels from a file
through its connector to the theme, and the corpus files show no real object left in `other`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import CORPUS, ROOT

from citypipe import schemas
from citypipe.core.ingest import ingest
from citypipe.geo.errors import UnknownCRS

STANDARDS: dict = yaml.safe_load(
    (ROOT / "tests" / "standard_classes.yaml").read_text(encoding="utf-8")
)
CLASSES = [
    (standard, module, spec.get("prefix"), name)
    for standard, content in STANDARDS.items()
    for module, spec in content["modules"].items()
    for name in spec["classes"]
]
CATCH_ALL = {name for content in STANDARDS.values() for name in content["catch_all"]}


@pytest.mark.parametrize(("standard", "module", "prefix", "name"), CLASSES)
def test_every_class_of_the_standards_has_a_theme(standard, module, prefix, name):
    theme = schemas.class_theme(name)
    if name in CATCH_ALL:
        assert theme == "other", f"{standard} {module}: {name} means 'anything else'"
    else:
        assert theme != "other", f"{standard} {module}: {name} lands in 'other'"
    assert theme in schemas.themes()
    # as the class reaches the lookup: prefixed (a WFS, JSON-FG featureType), any case
    spelled = [name.upper(), name.lower(), *([f"{prefix}:{name}"] if prefix else [])]
    assert {schemas.class_theme(s) for s in spelled} == {theme}


def test_a_namespace_in_clark_notation_is_dropped_too():
    assert schemas.class_theme("{http://www.opengis.net/citygml/tunnel/3.0}HollowSpace") == "tunnel"


def test_the_lists_are_the_standards_and_not_empty():
    """The numbers of classes per standard, counted in the standards' own lists."""
    per_standard = Counter(standard for standard, *_ in CLASSES)
    # CityJSON 2.0 spec section 2: 13 first-level entries (Transportation standing for its four
    # types) and 17 second-level ones
    assert per_standard["CityJSON 2.0"] == 12 + 4 + 17
    # CityGML 3.0 XSDs: Transportation's 15 concrete classes, Construction's 13
    modules3 = STANDARDS["CityGML 3.0"]["modules"]
    assert len(modules3["transportation"]["classes"]) == 15
    assert len(modules3["construction"]["classes"]) == 13
    # CityGML 2.0 building.xsd: 17 concrete _CityObject elements
    assert len(STANDARDS["CityGML 2.0"]["modules"]["building"]["classes"]) == 17


def test_only_catch_alls_are_mapped_to_other():
    """Nothing real is parked in `other` in the theme table: its `other` entries are exactly
    the standards' catch-all classes."""
    table = yaml.safe_load((ROOT / "schemas" / "themes.yaml").read_text(encoding="utf-8"))
    assert {name for name, theme in table["classes"].items() if theme == "other"} == CATCH_ALL


def test_feature_classes_that_are_never_rows_get_no_theme():
    never_rows = {name for content in STANDARDS.values() for name in content["not_city_objects"]}
    assert {"CityModel", "Appearance", "Dynamizer", "Version"} <= never_rows
    assert not {n.lower() for n in never_rows} & set(schemas.class_themes())


def test_an_extension_type_is_other_unless_the_catalog_says():
    assert schemas.class_theme("+NoiseBarrier") == "other"
    assert schemas.class_theme("+Building") == "other"  # an Extension's type is its own


def _square(i: int) -> list[list[list[int]]]:
    """One MultiSurface face: a 1 m square, the i-th along x (vertex indices)."""
    return [[[4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]]]


def _cityjson(path: Path, types: list[str]) -> dict[str, str]:
    """A CityJSON 2.0 document with one object of each type (second-level ones get a parent of
    their family); returns id -> type."""
    first = {"Building", "Bridge", "Tunnel"}
    objects: dict[str, dict] = {}
    vertices: list[list[int]] = []
    for i, kind in enumerate(types):
        vertices += [
            [i * 2000, 0, 0],
            [i * 2000 + 1000, 0, 0],
            [i * 2000 + 1000, 1000, 0],
            [i * 2000, 1000, 0],
        ]
        obj: dict = {
            "type": kind,
            "geometry": [{"type": "MultiSurface", "lod": "1", "boundaries": _square(i)}],
        }
        family = next((f for f in first if kind.startswith(f) and kind != f), None)
        if family:
            obj["parents"] = [f"id-{family}"]
            objects[f"id-{family}"].setdefault("children", []).append(f"id-{kind}")
        if kind == "CityObjectGroup":
            obj["children"] = [f"id-{types[0]}"]
        objects[f"id-{kind}"] = obj
    doc = {
        "type": "CityJSON", "version": "2.0",
        "transform": {"scale": [0.001, 0.001, 0.001], "translate": [85000.0, 446000.0, 0.0]},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/7415"},
        "CityObjects": objects, "vertices": vertices,
    }  # fmt: skip
    path.write_text(json.dumps(doc), encoding="utf-8")
    return {k: o["type"] for k, o in objects.items()}


def test_every_cityjson_2_0_type_reaches_its_theme(tmp_path, lake, read_lake):
    listed = [n for *_, n in (c for c in CLASSES if c[0] == "CityJSON 2.0")]
    # parents first, so that their children can name them
    types = sorted(listed, key=lambda t: t not in {"Building", "Bridge", "Tunnel"}) + [
        "+NoiseBarrier"
    ]
    expected = _cityjson(tmp_path / "all.city.json", types)
    report = ingest(tmp_path / "all.city.json", "all", lake, validate=False)
    assert report.features == len(expected) and report.rejects == 0
    table = read_lake("all").to_pylist()
    got = {r["source_id"]: (r["feature_class"], r["theme"]) for r in table}
    assert {k: c for k, (c, _) in got.items()} == expected
    for kind, theme in got.values():
        if kind in CATCH_ALL or kind.startswith("+"):
            assert theme == "other", kind
        else:
            assert theme != "other", kind


def _member(element: str, gid: str, x: int, inner: str = "") -> str:
    ring = f"{x} 0 0 {x + 1} 0 0 {x + 1} 1 0 {x} 0 0"
    return (
        f'<{element} gml:id="{gid}"><core:lod2MultiSurface><gml:MultiSurface><gml:surfaceMember>'
        f"<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{ring}</gml:posList>"
        f"</gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface>"
        f"</core:lod2MultiSurface>{inner}</{element}>"
    )


def test_citygml_3_0_classes_reach_the_lookup_by_their_local_names(tmp_path, lake, read_lake):
    """Namespaced elements of several 3.0 modules (the tunnel's part nested in it)."""
    ns = {
        "tun": "tunnel", "frn": "cityfurniture", "wtr": "waterbody", "veg": "vegetation",
        "tran": "transportation", "gen": "generics", "con": "construction",
    }  # fmt: skip
    part = f"<tun:tunnelPart>{_member('tun:TunnelPart', 'tp', 2)}</tun:tunnelPart>"
    members = [
        _member("tun:Tunnel", "t", 0, part),
        _member("frn:CityFurniture", "f", 4),
        _member("wtr:WaterBody", "w", 6),
        _member("veg:SolitaryVegetationObject", "v", 8),
        _member("tran:Waterway", "ww", 10),
        _member("gen:GenericOccupiedSpace", "g", 12),
        _member("con:OtherConstruction", "o", 14),
    ]
    doc = (
        '<core:CityModel xmlns:core="http://www.opengis.net/citygml/3.0" '
        'xmlns:gml="http://www.opengis.net/gml/3.2" '
        + " ".join(f'xmlns:{p}="http://www.opengis.net/citygml/{m}/3.0"' for p, m in ns.items())
        + '><gml:boundedBy><gml:Envelope srsName="EPSG:25832" srsDimension="3"/></gml:boundedBy>'
        + "".join(f"<core:cityObjectMember>{m}</core:cityObjectMember>" for m in members)
        + "</core:CityModel>"
    )
    (tmp_path / "m.gml").write_text(doc, encoding="utf-8")
    ingest(tmp_path / "m.gml", "m", lake, crs="EPSG:25832", validate=False)
    themes = {r["feature_class"]: r["theme"] for r in read_lake("m").to_pylist()}
    assert themes == {
        "Tunnel": "tunnel", "TunnelPart": "tunnel", "CityFurniture": "street_furniture",
        "WaterBody": "water", "SolitaryVegetationObject": "vegetation", "Waterway": "transport",
        "GenericOccupiedSpace": "other", "OtherConstruction": "other",
    }  # fmt: skip


def _corpus_models() -> list[Path]:
    if not (CORPUS / "MANIFEST.md").exists():
        return []
    return sorted([*CORPUS.glob("citygml*/*.gml"), *CORPUS.glob("cityjson/*.city.json*")])


# Dutch 3D models that declare no CRS (the MANIFEST): RD New + NAP, as the rest of 3D BAG
UNDECLARED = {
    "3dbag_multi_lod_v2.0.city.json": "EPSG:7415",
    "denhaag_DH_01_subset_v1.1.city.json": "EPSG:7415",
}


@pytest.mark.corpus
@pytest.mark.parametrize("path", _corpus_models(), ids=lambda p: p.name)
def test_no_object_of_the_corpus_is_other_but_a_generic_one(path, lake):
    try:
        ingest(path, "m", lake, crs=UNDECLARED.get(path.name), validate=False)
    except UnknownCRS:  # a CRS defined in the document: other tests' business
        pytest.skip(f"{path.name} is in a local engineering CRS")
    table = pq.read_table(lake.partition("features", "m"), columns=["feature_class", "theme"])
    other = Counter(c for c, t in zip(*table.to_pydict().values(), strict=False) if t == "other")
    # the MANIFEST: Delft's 54 GenericCityObjects are the only catch-all objects of the corpus
    assert other == ({"GenericCityObject": 54} if path.name == "delft_v2.0.city.json" else {})
