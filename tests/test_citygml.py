"""CityGML 1.0 / 2.0 / 3.0: one row per CityObject, places, xlinks, the 2.0/3.0 pairs, bad input.

Expected values are read from the files here with lxml (element counts, gml:ids, heights,
generic attributes, which objects have an lod2Solid) or taken from the corpus MANIFEST (counts,
places); never from citypipe's own output. The corpus is ingested once per module.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from conftest import CORPUS, SAMPLES, data_files
from lxml import etree

from citypipe.connectors import registry
from citypipe.connectors.citygml import CityGMLConnector
from citypipe.connectors.gml import GML_NAMESPACES, GeometryReader
from citypipe.connectors.gml_polygons import oriented
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo.errors import DataError, UnknownCRS

GML_IDS = [f"{{{ns}}}id" for ns in GML_NAMESPACES]
CLASSES = {
    "Building", "BuildingPart", "Storey", "BuildingUnit", "BuildingRoom", "ReliefFeature",
    "TINRelief", "Road", "Section", "Intersection", "TrafficSpace", "AuxiliaryTrafficSpace",
}  # fmt: skip
"""The CityObject classes of the corpus that are rows (thematic surfaces are not)."""

# counts as the MANIFEST states them
MANIFEST_COUNTS = {
    "nrw_LoD2_32_326_5727_1_NW.gml": {"Building": 194, "BuildingPart": 70},
    "munich_LOD2_4424_5482_solid_citygml1.gml": {"Building": 111},
    "denhaag_1BwBP_citygml1.gml": {"Building": 1, "BuildingPart": 6},
    "plateau_tokyo_53394517_bldg_6697_op_citygml2.gml": {"Building": 1},
    "plateau_tokyo_53394517_bldg_6697_op_CityGML3.gml": {"Building": 1},
    "sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml": {"Building": 1, "BuildingPart": 1},
    "sig3d_v3_Building_and_garage_LOD2-EPSG25832.gml": {"Building": 1, "BuildingPart": 1},
    "historicalSuccession_CityGML_3.0_LOD2_Versioning.gml": {"Building": 4, "BuildingPart": 5},
    "melbourne_citygml3_roads_4wayintersection.gml": {
        "Road": 2,
        "Section": 4,
        "Intersection": 1,
        "TrafficSpace": 91,
        "AuxiliaryTrafficSpace": 158,
    },
    "BuildingUnits_Storeys_xlink.gml": {"Storey": 2},
    "JeffersonBuilding_CityGML3.0_LOD1_with_xAL3_CommonTypes.gml": {"Building": 1},
}

GERMANY = (5.8, 47.2, 15.1, 55.1)
# file -> (lon, lat, tolerance in degrees) of the place it describes
PLACES = {
    "nrw_LoD2_32_326_5727_1_NW.gml": (6.49, 51.67, 0.05),  # UTM32 tile 326/5727 (Wesel)
    # The MANIFEST calls it Munich; tile 4424/5482 km of Gauss-Krueger zone 4 and its xAL
    # addresses (Fuerth) put it in Fuerth, near Nuremberg.
    "munich_LOD2_4424_5482_solid_citygml1.gml": (10.96, 49.48, 0.05),
    "denhaag_1BwBP_citygml1.gml": (4.3, 52.08, 0.05),
    "plateau_tokyo_53394517_bldg_6697_op_citygml2.gml": (139.72, 35.68, 0.02),
    "plateau_tokyo_53394517_bldg_6697_op_CityGML3.gml": (139.72, 35.68, 0.02),
    "historicalSuccession_CityGML_3.0_LOD2_Versioning.gml": (4.83, 45.77, 0.05),  # Lyon 1er
    "melbourne_citygml3_roads_4wayintersection.gml": (144.96, -37.81, 0.03),
    "JeffersonBuilding_CityGML3.0_LOD1_with_xAL3_CommonTypes.gml": (-77.0, 38.89, 0.01),
    # the address point the file gives (48.036 N, 11.873 E, Moosach)
    "Building_CityGML3.0_LOD2_with_several_attributes.gml": (11.87, 48.04, 0.02),
    "Building_CityGML3.0_with_Dynamizer_and_inline_Timeseries.gml": (11.87, 48.04, 0.02),
}
LOCAL_CRS = {"sig3d_v2_Building_LOD1-LocalEngineeringCRS.gml", "LocalCRS_CityGML3.gml"}
"""Files in a CRS they define themselves (#local-CRS-1), anchored in EPSG:25832 (MANIFEST)."""
PAIRS = [
    ("sig3d_v2_Building_LOD1-EPSG25832.gml", "sig3d_v3_Building_LOD1-EPSG25832.gml"),
    ("sig3d_v2_Building_LOD2-EPSG25832.gml", "sig3d_v3_Building_LOD2-EPSG25832.gml"),
    (
        "sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml",
        "sig3d_v3_Building_and_garage_LOD2-EPSG25832.gml",
    ),
    (
        "plateau_tokyo_53394517_bldg_6697_op_citygml2.gml",
        "plateau_tokyo_53394517_bldg_6697_op_CityGML3.gml",
    ),
]


def _corpus_files() -> list[Path]:
    if not (CORPUS / "MANIFEST.md").exists():
        return []
    return sorted([*CORPUS.glob("citygml/*.gml"), *CORPUS.glob("citygml3/*.gml")])


FILES = _corpus_files()


def _local(elem) -> str:
    return etree.QName(elem).localname


def _elements(path: Path):
    return etree.parse(str(path)).iter(etree.Element)


def _gml_id(elem) -> str | None:
    return next((elem.get(k) for k in GML_IDS if elem.get(k)), None)


def _objects(path: Path) -> dict[str, str]:
    """gml:id -> class of every CityObject of the row classes, read with lxml."""
    return {_gml_id(e): _local(e) for e in _elements(path) if _local(e) in CLASSES}


def _geoms(table, column: str = "geometry_3d") -> np.ndarray:
    return shapely.from_wkb(table.column(column).to_numpy(zero_copy_only=False))


def _props(table) -> dict[str, dict]:
    ids = table.column("source_id").to_pylist()
    return dict(zip(ids, map(json.loads, table.column("properties").to_pylist()), strict=False))


def _read(lake: Lake, kind: str, source: str):
    """The rows of a source's table, None when it has none."""
    part = lake.partition(kind, source)
    table = pq.read_table(part) if any(part.glob("*.parquet")) else None
    return table if table is not None and table.num_rows else None


def _anchored(path: Path) -> str:
    """The document's engineering CRS as pyproj can read it: UTM zone 32 (EPSG:25832, the
    anchor's codeSpace) moved so that its origin is the anchor point the file gives, as WKT
    (citypipe takes no PROJ strings from its inputs)."""
    anchor = next(e for e in _elements(path) if _local(e) in ("anchorPoint", "anchorDefinition"))
    assert "EPSG::25832" in anchor.get("codeSpace")
    x, y, _ = map(float, anchor.text.split())
    return pyproj.CRS(
        f"+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0={500000 - x} +y_0={-y} "
        "+ellps=GRS80 +towgs84=0,0,0 +units=m +no_defs +type=crs"
    ).to_wkt()


@pytest.fixture(scope="module")
def corpus_lake(tmp_path_factory) -> dict[str, tuple]:
    """Every CityGML file of the corpus ingested once: name -> (features, rejects or None).

    Without the validation suite, which the samples' tests run: it costs more than reading.
    """
    lake = Lake(tmp_path_factory.mktemp("citygml") / "lake")
    out = {}
    for i, path in enumerate(FILES):
        source = f"f{i}"
        try:
            ingest(path, source, lake, validate=False)
        except UnknownCRS:  # refused whole: the local CRS files, placed by their anchor
            assert path.name in LOCAL_CRS
            ingest(path, source, lake, crs=_anchored(path), validate=False)
        out[path.name] = (_read(lake, "features", source), _read(lake, "rejects", source))
    return out


def _by_name(name: str) -> Path:
    return next(p for p in FILES if p.name == name)


# -- rows ----------------------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_one_row_per_cityobject(path, corpus_lake):
    objects = _objects(path)
    features, rejects = corpus_lake[path.name]
    rows = Counter(features.column("feature_class").to_pylist()) if features else Counter()
    if rejects is not None:
        rows.update(objects[sid] for sid in rejects.column("source_id").to_pylist())
    assert rows == Counter(objects.values())
    for cls, n in MANIFEST_COUNTS.get(path.name, {}).items():
        assert rows[cls] == n, cls
    ids = (features.column("source_id").to_pylist() if features else []) + (
        rejects.column("source_id").to_pylist() if rejects is not None else []
    )
    assert sorted(ids) == sorted(objects)  # source_id is the gml:id


@pytest.mark.corpus
@pytest.mark.parametrize(
    "path", [p for p in FILES if p.name not in LOCAL_CRS], ids=lambda p: p.name
)
def test_every_geometry_inside_its_place(path, corpus_lake):
    features, rejects = corpus_lake[path.name]
    assert rejects is None
    lon, lat, tol = PLACES.get(path.name, (None, None, None))
    g3, g2 = _geoms(features), _geoms(features, "geometry")
    has_3d = ~shapely.is_missing(g3)
    assert has_3d.any() and not shapely.is_missing(g2[has_3d]).any()
    for geoms in (g2, g3):
        xy = shapely.get_coordinates(geoms)
        if lon is None:  # the SIG3D examples: somewhere in Germany
            assert (xy.min(axis=0) > GERMANY[:2]).all() and (xy.max(axis=0) < GERMANY[2:]).all()
        else:
            assert (abs(xy[:, 0] - lon) < tol).all() and (abs(xy[:, 1] - lat) < tol).all()


@pytest.mark.corpus
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_solid_is_lost_to_xlinks(path, corpus_lake):
    """Every object with an lod2Solid in the file has a non-empty geometry_3d."""
    # object -> the number of faces its lod2Solid lists (inline or as xlinks)
    faces = {
        _gml_id(e.getparent()): len(list(e.iter("{*}surfaceMember"))) for e in _elements(path)
        if _local(e) == "lod2Solid"
    }  # fmt: skip
    features, _ = corpus_lake[path.name]
    if path.name in LOCAL_CRS or not faces:
        return
    geoms = dict(zip(features.column("source_id").to_pylist(), _geoms(features), strict=False))
    assert all(geoms[s] is not None and not shapely.is_empty(geoms[s]) for s in faces)
    assert {s: shapely.get_num_geometries(geoms[s]) for s in faces} == faces


@pytest.mark.corpus
def test_heights_and_ids_read_from_the_file(corpus_lake):
    path = _by_name("nrw_LoD2_32_326_5727_1_NW.gml")
    tree = etree.parse(str(path))
    measured = {_gml_id(e.getparent()): float(e.text) for e in tree.iter("{*}measuredHeight")}
    features, _ = corpus_lake[path.name]
    heights = dict(
        zip(
            features.column("source_id").to_pylist(),
            features.column("height_m").to_pylist(),
            strict=False,
        )
    )
    assert measured and {k: heights[k] for k in measured} == measured


@pytest.mark.corpus
def test_generic_attributes_and_codes_are_properties(corpus_lake):
    path = _by_name("munich_LOD2_4424_5482_solid_citygml1.gml")
    building = next(etree.parse(str(path)).iter("{*}Building"))
    attribute = next(building.iter("{*}stringAttribute"))
    value = next(attribute.iter("{*}value")).text
    function = next(building.iter("{*}function")).text
    props = _props(corpus_lake[path.name][0])[_gml_id(building)]
    assert props[attribute.get("name")] == value
    assert props["function"] == function
    assert props["measuredHeight"]["uom"] == "urn:adv:uom:m"


@pytest.mark.corpus
@pytest.mark.parametrize("v2, v3", PAIRS, ids=lambda n: n[:30])
def test_the_same_building_in_citygml_2_and_3(v2, v3, corpus_lake):
    a, b = corpus_lake[_by_name(v2).name][0], corpus_lake[_by_name(v3).name][0]
    assert a.num_rows == b.num_rows
    ids = a.column("source_id").to_pylist()
    assert sorted(ids) == sorted(b.column("source_id").to_pylist())
    order = [b.column("source_id").to_pylist().index(i) for i in ids]
    bounds_a = shapely.bounds(_geoms(a))
    bounds_b = shapely.bounds(_geoms(b))[order]
    assert np.allclose(bounds_a, bounds_b, atol=1e-6, equal_nan=True)
    # the heights are what the files say: measuredHeight in 2.0, con:height/con:Height/con:value
    # in 3.0, on the same objects
    measured = {
        _gml_id(e.getparent()): float(e.text)
        for e in _elements(_by_name(v2)) if _local(e) == "measuredHeight"
    }  # fmt: skip
    height = {
        _gml_id(e.getparent()): float(next(e.iter("{*}value")).text)
        for e in _elements(_by_name(v3)) if _local(e) == "height"
    }  # fmt: skip
    assert measured and measured == height
    for table in (a, b):
        heights = dict(
            zip(
                table.column("source_id").to_pylist(),
                table.column("height_m").to_pylist(),
                strict=False,
            )
        )
        assert {k: heights[k] for k in measured} == measured


@pytest.mark.corpus
def test_appearance_ade_and_versions_are_kept(corpus_lake):
    plateau = _by_name("plateau_tokyo_53394517_bldg_6697_op_CityGML3.gml")
    tree = etree.parse(str(plateau))
    targets = {t.text.lstrip("#") for t in tree.iter("{*}target")}
    (props,) = _props(corpus_lake[plateau.name][0]).values()
    (texture,) = props["citygml:appearance"]
    assert texture["type"] == "ParameterizedTexture" and set(texture["targets"]) == targets
    survey = next(tree.iter("{*}surveyYear")).text
    assert props["uro:buildingDetails"]["uro:surveyYear"] == survey

    versions = _by_name("historicalSuccession_CityGML_3.0_LOD2_Versioning.gml")
    members = Counter(
        e.get("{http://www.w3.org/1999/xlink}href").lstrip("#")
        for e in etree.parse(str(versions)).iter("{*}versionMember")
        if e.get("{http://www.w3.org/1999/xlink}href")
    )
    props = _props(corpus_lake[versions.name][0])
    assert {k: len(props[k]["citygml:versions"]) for k in members} == dict(members)


# -- the bundled samples -------------------------------------------------------------------------


def test_samples_are_detected_as_citygml():
    for path in sorted((SAMPLES / "citygml").glob("*.gml")):
        assert registry.detect(path) is CityGMLConnector, path.name


def test_building_parts_point_to_their_building(sample, lake, read_lake):
    path = sample("citygml/sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml")
    tree = etree.parse(str(path))
    building = next(tree.iter("{*}Building"))
    part = next(tree.iter("{*}BuildingPart"))
    ingest(path, "garage", lake)
    table = read_lake("garage")
    parents = dict(
        zip(
            table.column("source_id").to_pylist(),
            table.column("parent_id").to_pylist(),
            strict=False,
        )
    )
    assert parents[_gml_id(part)] == f"garage/{_gml_id(building)}"
    assert parents[_gml_id(building)] is None


def test_address_and_attributes_of_citygml_3(sample, lake, read_lake):
    path = sample("citygml/Building_CityGML3.0_LOD2_with_several_attributes.gml")
    tree = etree.parse(str(path))
    ingest(path, "attrs", lake)
    (props,) = _props(read_lake("attrs")).values()
    xal = {
        _local(e.getparent()) + "/" + _local(e): e.text
        for e in tree.iter("{*}NameElement", "{*}Number")
    }
    address = props["address"]
    assert address["street"] == xal["Thoroughfare/NameElement"]
    assert address["number"] == xal["Thoroughfare/Number"]
    assert address["city"] == xal["Locality/NameElement"]
    assert address["postcode"] == next(tree.iter("{*}Identifier")).text
    for attribute in tree.iter("{*}StringAttribute"):
        name, value = (next(attribute.iter(f"{{*}}{k}")).text for k in ("name", "value"))
        assert props[name] == value
    assert props["creationDate"] == next(tree.iter("{*}creationDate")).text
    height = next(next(tree.iter("{*}Height")).iter("{*}value"))
    assert read_lake("attrs").column("height_m")[0].as_py() == float(height.text)


@pytest.mark.parametrize("name", sorted(LOCAL_CRS))
def test_a_local_engineering_crs_is_never_guessed(name, sample, lake):
    """The source is refused whole naming the CRS, although its coordinates (0 to 24 m) would
    pass for longitude/latitude; nothing is written. A --crs that says what the document
    defines (UTM 32 moved to the anchor point) puts the building where its EPSG:25832 twin is."""
    path = sample(f"citygml/{name}")
    with pytest.raises(UnknownCRS, match="#local-CRS-1.*--crs") as refused:
        ingest(path, "local", lake, validate=False)
    assert str(path) in str(refused.value)
    assert not lake.root.exists() or not data_files(lake.root)

    report = ingest(path, "local", lake, crs=_anchored(path), validate=False)
    assert report.rejects == 0 and report.features == len(_objects(path))
    twin = sample("citygml/sig3d_v2_Building_LOD1-EPSG25832.gml")
    ingest(twin, "twin", lake, validate=False)
    placed, expected = (
        shapely.total_bounds(_geoms(pq.read_table(lake.partition("features", s)), "geometry"))
        for s in ("local", "twin")
    )
    assert placed == pytest.approx(expected, abs=1e-7)  # about a centimetre


# -- bad input -----------------------------------------------------------------------------------

HEAD = (
    '<CityModel xmlns="http://www.opengis.net/citygml/2.0" xmlns:gml="http://www.opengis.net/gml">'
    "<gml:name>&{entity};</gml:name></CityModel>"
)
ATTACKS = {
    "billion_laughs.gml": '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 9)
    )
    + "]>"
    + HEAD.format(entity="lol8"),
    "xxe.gml": '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + HEAD.format(entity="xxe"),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_dtds_and_entities_are_refused(name, tmp_path, lake):
    path = tmp_path / name
    path.write_text('<?xml version="1.0"?>\n' + ATTACKS[name], encoding="utf-8")
    with pytest.raises(DataError, match="DTD/entities are not allowed") as e:
        ingest(path, "attack", lake)
    assert name in str(e.value)
    assert not lake.partition("features", "attack").exists()


def test_truncated_file_leaves_the_lake_as_it_was(sample, tmp_path, lake, read_lake):
    path = sample("citygml/denhaag_1BwBP_citygml1.gml")
    ingest(path, "dh", lake, validate=False)
    before = read_lake("dh")
    cut = tmp_path / "truncated.gml"
    cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DataError, match="truncated.gml"):
        ingest(cut, "dh", lake, validate=False)
    assert read_lake("dh").equals(before)


def _edited(sample, tmp_path, name: str, old: str, new: str) -> Path:
    text = sample(f"citygml/{name}").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / f"edited_{name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_dangling_xlink_rejects_its_object(sample, tmp_path, lake, read_lake):
    path = _edited(
        sample, tmp_path, "sig3d_v2_Building_LOD2-EPSG25832.gml",
        'xlink:href="#GML_d3981803-d4b0-4b5b-969c-53f657594757"', 'xlink:href="#nowhere"',
    )  # fmt: skip
    report = ingest(path, "dangling", lake, validate=False)
    rejects = read_lake("dangling", "rejects")
    assert rejects.column("source_id").to_pylist() == ["GML_7b1a5a6f-ddad-4c3d-a507-3eb9ee0a8e68"]
    assert "dangling xlink" in rejects.column("reason")[0].as_py()
    assert "nowhere" in rejects.column("reason")[0].as_py()
    assert "<bldg:Building" in rejects.column("record")[0].as_py()
    assert report.features == 2  # the relief is untouched


def test_ring_that_is_not_closed_is_closed_and_its_object_kept(sample, tmp_path, lake, read_lake):
    """The ground slab's last position 1 m from its first: an open ring, closed as GDAL does."""
    path = _edited(
        sample, tmp_path, "sig3d_v2_Building_LOD2-EPSG25832.gml",
        "112.0 458875.0 5438350.0 112.0 </gml:posList>",
        "112.0 458875.0 5438351.0 112.0 </gml:posList>",
    )  # fmt: skip
    report = ingest(path, "open", lake, validate=False)
    assert (report.features, report.rejects) == (report.records, 0)
    props = _props(read_lake("open"))["GML_7b1a5a6f-ddad-4c3d-a507-3eb9ee0a8e68"]
    assert props["citypipe:geometry_repaired"] == "closed 1 open ring"


def test_parts_stay_in_the_batch_of_their_building(sample):
    path = sample("citygml/denhaag_1BwBP_citygml1.gml")
    batches = list(CityGMLConnector(path, batch_size=1).read())
    assert [len(b) for b in batches] == [7]


def test_orientable_surface_minus_turns_the_polygon_over():
    gml = GML_NAMESPACES[0]
    doc = etree.fromstring(
        f'<gml:MultiSurface xmlns:gml="{gml}" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<gml:surfaceMember><gml:Polygon gml:id="p"><gml:exterior><gml:LinearRing><gml:posList>'
        "0 0 0 1 0 0 1 1 0 0 0 0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
        '</gml:surfaceMember><gml:surfaceMember><gml:OrientableSurface orientation="-">'
        '<gml:baseSurface xlink:href="#p"/></gml:OrientableSurface></gml:surfaceMember>'
        "</gml:MultiSurface>"
    )
    reader = GeometryReader(gml)
    handles, missing = reader.resolve(reader.read(doc).polygons)
    polygons = reader.build().polygons
    assert not missing and handles == [0, ~0]
    given, turned = oriented(polygons, np.array(handles))
    assert shapely.is_ccw(given.exterior) and not shapely.is_ccw(turned.exterior)
    assert shapely.get_coordinates(turned.exterior, include_z=True).tolist() == [
        [0, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0],
    ]  # fmt: skip


def _surface(pos_list: str, dimension: str = "") -> str:
    return (
        f'<gml:MultiSurface xmlns:gml="{GML_NAMESPACES[1]}"><gml:surfaceMember><gml:Polygon>'
        f"<gml:exterior><gml:LinearRing><gml:posList{dimension}>{pos_list}</gml:posList>"
        "</gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface>"
    )


@pytest.mark.parametrize(
    "gml, reason",
    [
        (_surface("0 0 0 1 0 0 1 1 x 0 0 0"), "not numbers"),
        (_surface("0 0 0 1 0 0 1 1 0 0 0"), "not a multiple of srsDimension"),
    ],
)
def test_polygons_that_cannot_be_built_say_why(gml, reason):
    reader = GeometryReader(GML_NAMESPACES[1])
    (handle,) = reader.read(etree.fromstring(gml)).polygons
    built = reader.build()
    assert built.polygons[handle] is None and reason in built.reasons[handle]


@pytest.mark.parametrize(
    "pos_list, closed, dropped",
    [
        ("0 0 0 1 0 0 1 1 0 0 1 0", [0, 1, 0, 0], False),  # left open: closed
        ("0 0 0 1 0 0 1 1 0 1e-12 0 0", [1, 0, 0, 0], False),  # closed within noise
        ("0 0 0 1 0 0 1 1 0", [0, 1, 0, 0], False),  # a triangle left open
        ("0 0 0 1 0 0 0 0 0", [0, 0, 0, 1], True),  # two distinct positions
        ("0 0 0 1 0 0 1 0 0 0 0 0", [0, 0, 0, 1], True),
        ("", [0, 0, 0, 1], True),  # no positions at all
    ],
)
def test_rings_are_closed_and_polygons_without_area_dropped(pos_list, closed, dropped):
    reader = GeometryReader(GML_NAMESPACES[1])
    (handle,) = reader.read(etree.fromstring(_surface(pos_list))).polygons
    built = reader.build()
    assert not built.reasons and built.repairs[handle].tolist() == closed
    assert (built.polygons[handle] is None) == dropped
    if not dropped:
        assert built.polygons[handle].exterior.is_closed and built.polygons[handle].area > 0


def test_two_dimensional_rings_make_two_dimensional_polygons():
    reader = GeometryReader(GML_NAMESPACES[1])
    reader.read(etree.fromstring(_surface("0 0 1 0 1 1 0 0", ' srsDimension="2"')))
    reader.read(etree.fromstring(_surface("0 0 5 1 0 5 1 1 5 0 0 5")))
    built = reader.build()
    (flat, solid), reasons = built.polygons, built.reasons
    assert not reasons and not shapely.has_z(flat) and shapely.has_z(solid)
    assert shapely.get_coordinates(flat).tolist() == [[0, 0], [1, 0], [1, 1], [0, 0]]
    assert shapely.get_coordinates(solid, include_z=True)[:, 2].tolist() == [5, 5, 5, 5]


# -- the buildings view --------------------------------------------------------------------------


def test_buildings_view_holds_buildings_not_their_storeys_units_and_rooms(sample, lake):
    """One Building with 2 Storeys, 2 BuildingUnits and 3 BuildingRooms (MANIFEST): the view has
    the Building alone, and the total footprint is the area of its own GroundSurface."""
    from citypipe.core import warehouse

    path = sample("citygml/BuildingUnits_Storeys_xlink.gml")
    classes = Counter(_objects(path).values())
    assert classes["Building"] == 1 and classes["Storey"] == 2 and classes["BuildingUnit"] == 2
    ingest(path, "units", lake, validate=False)
    warehouse.refresh(lake)
    (ground,) = [e for e in _elements(path) if _local(e) == "GroundSurface"]
    xyz = np.array([p.text.split() for p in ground.iter("{*}pos")], float)
    area = shapely.Polygon(xyz[:, :2]).area  # the file's CRS is UTM 32: metres
    _, rows = warehouse.query(lake, "SELECT feature_id, footprint_area_m2 FROM buildings")
    assert [r[0] for r in rows] == ["units/building_unit_example_1"]
    _, ((total,),) = warehouse.query(lake, "SELECT sum(footprint_area_m2) FROM buildings")
    assert total == pytest.approx(area, rel=1e-6)
    _, nested = warehouse.query(
        lake, "SELECT feature_class, count(*) FROM features WHERE parent_id IS NOT NULL GROUP BY 1"
    )
    assert dict(nested) == {"Storey": 2, "BuildingUnit": 2, "BuildingRoom": 3}


def test_batches_held_by_the_caller_keep_their_records_xml(sample, tmp_path):
    """Members leave the document once their batch is written; a caller that holds every
    batch (as a list does) still gets each record's own XML."""
    text = sample("citygml/sig3d_v2_Building_LOD1-EPSG25832.gml").read_text(encoding="utf-8")
    start = text.index("<cityObjectMember>")
    end = text.rindex("</cityObjectMember>") + len("</cityObjectMember>")
    copy = text[start:end].replace('gml:id="GML_', 'gml:id="COPY_')
    path = tmp_path / "twice.gml"
    path.write_text(text[:end] + copy + text[end:], encoding="utf-8")
    batches = list(CityGMLConnector(path, batch_size=1).read())
    # the Building, then the ReliefFeature with its TINRelief, twice
    assert [len(b) for b in batches] == [1, 2, 1, 2]
    for batch in batches:
        for i, source_id in enumerate(batch.source_ids):
            assert f'gml:id="{source_id}"' in batch.records[i].split(">", 1)[0]
    assert batches[2].source_ids[0] == "COPY_7b1a5a6f-ddad-4c3d-a507-3eb9ee0a8e68"
