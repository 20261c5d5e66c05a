"""Only safe, usable CRSs from inputs (README "CRS and axis order", "Security").

A CRS an input names reaches PROJ only as an authority code, URN, OGC URI, alias, or WKT /
PROJJSON without files; PROJ strings and file references are refused before PROJ sees them.
CRSs that place nothing on longitude/latitude (geocentric, vertical only, engineering, another
body's) are refused naming what they are: the source whole (exit 2, one line) where a file
declares them, a ConfigurationError where `--crs` or `crs:` names them.

The inputs are generated here; what each CRS is comes from pyproj (checked first), never from
citypipe.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pyproj
import pytest
import shapely
from conftest import ROOT, SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_crs_rule import FAR, _cityjson, _csv, _features, _geojson, _nothing_written, _point

from citypipe.cli import main
from citypipe.core.catalog import load_catalog
from citypipe.core.ingest import ingest
from citypipe.core.lake import Lake
from citypipe.geo import crs as crslib
from citypipe.geo.errors import CitypipeError, ConfigurationError, UnknownCRS

GEOCENTRIC = "EPSG:4978"  # WGS 84 geocentric: X, Y, Z from the Earth's centre
MARS = "IAU_2015:49900"  # Mars (2015) geographic, in PROJ's IAU database
HEIGHTS = "EPSG:5783"  # DHHN92 height: vertical only
SITE_GRID = (
    'ENGCRS["site grid",EDATUM["site"],CS[Cartesian,2],'
    'AXIS["x",east,ORDER[1],LENGTHUNIT["metre",1]],AXIS["y",north,ORDER[2],LENGTHUNIT["metre",1]]]'
)
NO_GRID = "citypipe_no_such_grid.gsb"
MISSING_GRID = f"+proj=longlat +ellps=clrk66 +nadgrids={NO_GRID} +no_defs"
UTM32 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
EAST, NORTH = 513_000.5, 5_402_000.25
"""A position in UTM zone 32 (near Stuttgart), for the sources that are accepted."""

UNUSABLE = {
    GEOCENTRIC: "a geocentric CRS",
    MARS: "another celestial body (Mars",
    HEIGHTS: "a vertical CRS",
    SITE_GRID: "an engineering CRS",
    MISSING_GRID: f"a PROJ string (+nadgrids={NO_GRID})",
    "+init=epsg:4326": "a PROJ string (+init=epsg:4326)",
    "+proj=pipeline +step +proj=hgridshift +grids=x.tif": "+grids=x.tif",
}
"""Declarations that cannot place coordinates, and what their refusal names."""


def test_the_unusable_crss_are_what_they_say():
    """The premises, from pyproj: the kind of each CRS, and that the grid is not installed."""
    assert pyproj.CRS(GEOCENTRIC).is_geocentric
    mars = pyproj.CRS(MARS)
    assert mars.is_geographic and "Mars" in mars.ellipsoid.name
    assert pyproj.CRS(HEIGHTS).is_vertical and not pyproj.CRS(HEIGHTS).is_compound
    assert pyproj.CRS(SITE_GRID).is_engineering
    assert not any(
        Path(d, NO_GRID).exists() for d in pyproj.datadir.get_data_dir().split(os.pathsep)
    )


# -- a file's declaration, through ingest() -----------------------------------------------------


def _geojson_declaring(path: Path, crs: str, *xyz: float) -> Path:
    """A point at `xyz` (2D or 3D; by default EAST, NORTH) in a file whose `crs` member names
    `crs`."""
    point = _point(EAST, NORTH)
    point["geometry"]["coordinates"] = list(xyz or (EAST, NORTH))
    return _geojson(path, [point], crs={"type": "name", "properties": {"name": crs}})


@pytest.mark.parametrize("declared", UNUSABLE)
def test_a_geojson_crs_member_that_cannot_place_refuses_the_source(tmp_path, lake, declared):
    path = _geojson_declaring(tmp_path / "g.geojson", declared)
    with pytest.raises(UnknownCRS) as refused:
        ingest(path, "g", lake, validate=False)
    message = str(refused.value)
    assert str(path) in message and UNUSABLE[declared] in message and "--crs" in message
    assert "\n" not in message
    assert _nothing_written(lake)


def test_geocentric_3d_coordinates_are_refused_too(tmp_path, lake):
    """X, Y, Z of a point in Stuttgart (what pyproj makes of 9.18 E, 48.78 N, 250 m)."""
    xyz = pyproj.Transformer.from_crs("EPSG:4979", GEOCENTRIC, always_xy=True).transform(
        9.18, 48.78, 250.0
    )
    path = _geojson_declaring(tmp_path / "xyz.geojson", GEOCENTRIC, *xyz)
    with pytest.raises(UnknownCRS, match="a geocentric CRS"):
        ingest(path, "xyz", lake, validate=False)
    assert _nothing_written(lake)


@pytest.mark.parametrize("declared", [GEOCENTRIC, MARS, SITE_GRID, MISSING_GRID])
def test_a_cityjson_reference_system_that_cannot_place_refuses_the_source(tmp_path, lake, declared):
    path = _cityjson(tmp_path / "c.city.json", [FAR], crs=declared)
    with pytest.raises(UnknownCRS) as refused:
        ingest(path, "c", lake, validate=False)
    assert str(path) in str(refused.value) and UNUSABLE[declared] in str(refused.value)
    assert _nothing_written(lake)


# -- every format that declares a CRS, through the CLI, over a previous output ------------------


def _citygml(path: Path, srs: str) -> Path:
    """The SIG3D LoD1 building (UTM 32 + DHHN92 heights) with its srsName replaced."""
    text = (SAMPLES / "citygml" / "sig3d_v2_Building_LOD1-EPSG25832.gml").read_text("utf-8")
    declared = 'srsName="urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783"'
    assert text.count(declared) == 1
    path.write_text(text.replace(declared, f"srsName={json.dumps(srs)}"), encoding="utf-8")
    return path


def _jsonfg(path: Path, srs: str) -> Path:
    """A JSON-FG feature whose place is in `srs` (an OGC URI, as JSON-FG writes CRSs)."""
    doc = {
        "type": "Feature",
        "conformsTo": ["http://www.opengis.net/spec/json-fg-1/1.0/conf/core"],
        "geometry": None,
        "coordRefSys": srs,
        "place": {"type": "Point", "coordinates": [EAST, NORTH]},
        "properties": {"name": "p"},
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _geoparquet(path: Path, srs: str, keep_id: bool = True) -> Path:
    """GeoParquet of one point whose `crs` is the PROJJSON pyproj writes for `srs`, with or
    without its `id` (then only the definition says what the CRS is)."""
    gpd.GeoDataFrame({"name": ["p"]}, geometry=[shapely.Point(EAST, NORTH)]).to_parquet(path)
    table = pq.read_table(path)
    geo = json.loads(table.schema.metadata[b"geo"])
    projjson = pyproj.CRS(srs).to_json_dict()
    if not keep_id:
        projjson.pop("id")
    geo["columns"]["geometry"]["crs"] = projjson
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo)}), path)
    return path


DECLARING: dict[str, tuple[Callable[[Path, str], Path], str, str]] = {
    # format: (maker, a CRS it is read in, a CRS it is refused for)
    "geojson": (_geojson_declaring, "urn:ogc:def:crs:EPSG::25832", GEOCENTRIC),
    "cityjson": (lambda p, c: _cityjson(p, [FAR], crs=c), "EPSG:7415", MARS),
    "citygml": (_citygml, "urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783", HEIGHTS),
    "citygml-proj": (_citygml, "EPSG:25832", MISSING_GRID),
    "jsonfg": (_jsonfg, "http://www.opengis.net/def/crs/EPSG/0/25832", GEOCENTRIC),
    "geoparquet": (_geoparquet, "EPSG:25832", GEOCENTRIC),
    "geoparquet-no-id": (lambda p, c: _geoparquet(p, c, keep_id=False), "EPSG:25832", GEOCENTRIC),
}


@pytest.mark.parametrize("fmt", DECLARING)
def test_cli_refuses_a_declared_unusable_crs_in_one_line_and_keeps_the_output(
    tmp_path, capsys, fmt
):
    make, good, bad = DECLARING[fmt]
    lake = Lake(tmp_path / "lake")
    ingest(make(tmp_path / "good", good), "s", lake, validate=False)
    before = pq.read_table(lake.partition("features", "s"))
    assert before.num_rows >= 1
    path = make(tmp_path / "bad", bad)
    capsys.readouterr()
    code = main(["ingest", str(path), "--source", "s", "--lake", str(lake.root)])
    err = capsys.readouterr().err
    [line] = err.splitlines()
    assert code == 2 and line.startswith("citypipe: error: ") and "Traceback" not in err
    assert str(path) in line and UNUSABLE[bad] in line and "--crs" in line
    assert pq.read_table(lake.partition("features", "s")).equals(before)


# -- --crs and crs: ---------------------------------------------------------------------------


@pytest.mark.parametrize("given_crs", [*UNUSABLE, "EPSG:999998", "FOO:1", "WGS 84"])
def test_crs_flag_that_cannot_place_is_a_configuration_error(tmp_path, lake, capsys, given_crs):
    path = _csv(tmp_path / "xy.csv", "x;y", [(EAST, NORTH)])
    with pytest.raises(ConfigurationError, match="^--crs: ") as refused:
        ingest(path, "xy", lake, crs=given_crs, validate=False)
    assert UNUSABLE.get(given_crs, "CRS") in str(refused.value)
    code = main(
        ["ingest", str(path), "--source", "xy", "--crs", given_crs, "--lake", str(lake.root)]
    )
    err = capsys.readouterr().err
    [line] = err.splitlines()
    assert code == 2 and line.startswith("citypipe: error: --crs: ") and "Traceback" not in err
    assert _nothing_written(lake)


def test_catalog_crs_that_cannot_place_refuses_the_entry_in_one_line(tmp_path):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(f"sources:\n  cells:\n    path: x.csv\n    crs: '{HEIGHTS}'\n", "utf-8")
    with pytest.raises(ConfigurationError) as refused:
        load_catalog(catalog).get("cells")
    message = str(refused.value)
    assert "\n" not in message and "source 'cells'" in message
    assert f"crs: CRS '{HEIGHTS}' refused: a vertical CRS" in message


# -- accepted: codes, compound CRSs, WKT and PROJJSON without files ----------------------------


@pytest.mark.parametrize(
    "given_crs",
    [
        "EPSG:25832+5783",
        pyproj.CRS("EPSG:25832").to_wkt(pretty=True),
        json.dumps({k: v for k, v in pyproj.CRS("EPSG:25832").to_json_dict().items() if k != "id"}),
        # a Helmert shift is numbers, no file: WKT1 with TOWGS84 (a BOUNDCRS)
        pyproj.CRS("+proj=utm +zone=32 +ellps=GRS80 +towgs84=0,0,0 +units=m +type=crs").to_wkt(
            "WKT1_GDAL"
        ),
    ],
)
def test_codes_compounds_wkt_and_projjson_without_files_are_accepted(tmp_path, lake, given_crs):
    path = _csv(tmp_path / "xy.csv", "x;y", [(EAST, NORTH)])
    assert ingest(path, "xy", lake, crs=given_crs, validate=False).features == 1
    [point] = _features(lake, "xy").values()
    assert (point.x, point.y) == pytest.approx(UTM32.transform(EAST, NORTH), abs=1e-7)


# -- no file access from input -----------------------------------------------------------------


def _fifo_vectors(fifo: Path) -> dict[str, str]:
    """Every way found for a CRS definition to make PROJ open a file, aimed at `fifo`."""
    grid = pyproj.CRS("+proj=longlat +ellps=GRS80 +nadgrids=PLACEHOLDER +type=crs")
    mercator = pyproj.CRS("EPSG:3395").to_wkt("WKT1_GDAL")
    return {
        "nadgrids": f"+proj=longlat +ellps=GRS80 +nadgrids={fifo} +no_defs",
        "init": f"+init={fifo}:x",
        "parameterfile": grid.to_wkt().replace("PLACEHOLDER", str(fifo)),
        "projjson file": grid.to_json().replace("PLACEHOLDER", str(fifo)),
        "extension": mercator[:-1] + f',EXTENSION["PROJ4","+proj=merc +nadgrids={fifo}"]]',
        "remark": pyproj.CRS("EPSG:3395").to_wkt()[:-1]
        + f',REMARK["PROJ CRS string: +proj=merc +nadgrids={fifo}"]]',
        # pyproj reads a JSON object with `proj` or `init` as a PROJ string
        "json init": json.dumps({"init": f"{fifo}:x"}),
        "json proj": json.dumps({"proj": "longlat", "ellps": "GRS80", "nadgrids": str(fifo)}),
        # PROJ takes text as WKT only where `[` follows its first keyword after C whitespace;
        # else it finds ` +init=` anywhere
        "not wkt": f"GEOGCS( +init={fifo}:x",
        "no-break space": f"GEOGCRS\u00a0[ +init={fifo}:x",
        "epoch": f"WGS 84 +init={fifo}:x @ 2020.0",
        "proj method": (
            'GEOGCRS["g",BASEGEOGCRS["WGS 84",DATUM["World Geodetic System 1984",'
            'ELLIPSOID["WGS 84",6378137,298.257223563]]],'
            f'DERIVINGCONVERSION["c",METHOD["PROJ hgridshift grids={fifo}"]],CS[ellipsoidal,2],'
            'AXIS["lon",east,ANGLEUNIT["degree",0.0174532925199433]],'
            'AXIS["lat",north,ANGLEUNIT["degree",0.0174532925199433]]]'
        ),
    }


def _finish(targets: list[Callable[[], None]], seconds: float) -> list[int | None]:
    """The exit codes of `targets`, each run in a forked child, None for those still running
    after `seconds` (blocked opening the FIFO), which are then killed."""
    children = [multiprocessing.get_context("fork").Process(target=t) for t in targets]
    for child in children:
        child.start()
    deadline = time.monotonic() + seconds
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
    codes = [None if child.is_alive() else child.exitcode for child in children]
    for child in children:
        child.kill()
        child.join()
    return codes


def _opened_for_reading(fifo: Path, seconds: float) -> bool:
    """Whether something opens `fifo` for reading within `seconds`: only then does opening its
    other end without blocking succeed (which also lets the reader go on)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError:  # ENXIO: no reader yet
            time.sleep(0.05)
    return False


def test_the_fifo_vectors_do_make_pyproj_open_the_file(tmp_path):
    """The premise: given to pyproj as they are, each definition opens its FIFO."""
    opened = {}
    for name in _fifo_vectors(tmp_path):
        fifo = tmp_path / name.replace(" ", "_")
        os.mkfifo(fifo)
        definition = _fifo_vectors(fifo)[name]
        child = multiprocessing.get_context("fork").Process(
            target=lambda d=definition: pyproj.Transformer.from_crs(pyproj.CRS(d), "OGC:CRS84")
        )
        child.start()
        opened[name] = _opened_for_reading(fifo, 60)
        child.kill()
        child.join()
    assert opened == dict.fromkeys(opened, True)


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "grid.gsb"
    os.mkfifo(path)
    return path


def test_no_crs_from_input_makes_proj_open_a_file(tmp_path, fifo, capsys):
    """Each vector as a GeoJSON `crs` member, and one as `--crs`: refused within seconds (the
    FIFO's open would block for ever), exit 2 with the reason, the previous output kept."""
    lake = Lake(tmp_path / "lake")
    good = _geojson_declaring(tmp_path / "good.geojson", "EPSG:25832")
    # a run that lands first; it also imports, once, what the children's runs use
    assert main(["ingest", str(good), "--source", "s", "--lake", str(lake.root)]) == 0
    before = pq.read_table(lake.partition("features", "s"))
    vectors = _fifo_vectors(fifo)
    runs = {
        name: ["ingest", str(_geojson_declaring(tmp_path / f"{k}.geojson", definition))]
        for k, (name, definition) in enumerate(vectors.items())
    }
    csv = _csv(tmp_path / "xy.csv", "x;y", [(EAST, NORTH)])
    runs["--crs"] = ["ingest", str(csv), "--crs", vectors["nadgrids"]]
    for name, argv in runs.items():
        err = tmp_path / "err.txt"

        def run(argv=argv, err=err) -> None:
            with open(err, "w") as f, contextlib.redirect_stderr(f):
                code = main([*argv, "--source", "s", "--lake", str(lake.root)])
            os._exit(code)

        assert _finish([run], 30) == [2], name
        [line] = err.read_text().splitlines()
        assert "refused" in line and str(fifo) in line, name
    assert pq.read_table(lake.partition("features", "s")).equals(before)


# -- PROJ's network --------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "enabled"), [(None, False), ("ON", True)])
def test_proj_network_is_off_unless_proj_network_is_on(setting, enabled):
    env = {k: v for k, v in os.environ.items() if k != "PROJ_NETWORK"}
    if setting:
        env["PROJ_NETWORK"] = setting
    probe = "import citypipe.geo.crs, pyproj.network; print(pyproj.network.is_network_enabled())"
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(enabled)


# -- any string ------------------------------------------------------------------------------

_KEYS = [
    "proj",
    "init",
    "nadgrids",
    "geoidgrids",
    "grids",
    "file",
    "ellps",
    "towgs84",
    "zone",
    "step",
]
PROJ_STRINGS = st.lists(
    st.tuples(st.sampled_from(_KEYS), st.text("abcxyz019./:@-,", max_size=12)),
    min_size=1,
    max_size=5,
).map(lambda kv: " ".join(f"+{k}={v}" for k, v in kv))
CODES = st.sampled_from(
    [f"EPSG:{c}" for c in sorted(pyproj.database.get_codes("EPSG", "CRS", allow_deprecated=True))]
    + [f"IAU_2015:{c}" for c in sorted(pyproj.database.get_codes("IAU_2015", "CRS"))]
    + [f"ESRI:{c}" for c in sorted(pyproj.database.get_codes("ESRI", "CRS"))]
)
NAMED = st.one_of(
    st.from_regex(r"(EPSG|OGC|IAU_2015|ESRI|FOO):[0-9A-Za-z]{1,7}(\+[0-9]{1,6})?", fullmatch=True),
    st.from_regex(r"urn:ogc:def:crs:EPSG:[0-9.]{0,4}:[0-9]{1,6}", fullmatch=True),
    st.from_regex(r"https?://www\.opengis\.net/def/crs/EPSG/0/[0-9]{1,6}", fullmatch=True),
)
WKT_LIKE = st.tuples(
    st.sampled_from(
        [
            "GEOGCRS[",
            "PROJCS[",
            "ENGCRS[",
            "BOUNDCRS[",
            "VERTCRS[",
            "LOCAL_CS[",
            "GEOGCS(",
            "GEOGCRS\u00a0[",
        ]
    ),
    st.text(max_size=80),
).map("".join)
JSON_LIKE = st.recursive(
    st.none() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["type", "name", "method", "parameters", "value", "remarks", "proj", "init"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
).map(json.dumps)
ANY_CRS = st.one_of(CODES, NAMED, PROJ_STRINGS, WKT_LIKE, JSON_LIKE, st.text(max_size=60))


@settings(max_examples=400, deadline=None)
@given(ANY_CRS)
def test_any_crs_string_is_accepted_and_placeable_or_refused_with_a_citypipe_error(text):
    try:
        resolved = crslib.resolve(text)
    except CitypipeError:
        return
    for order in ("xy", "authority"):
        if not crslib.is_lonlat(resolved, order):
            crslib.to_crs84(resolved, order)(np.array([[EAST, NORTH, 0.0]]))


@settings(max_examples=100, deadline=None)
@given(PROJ_STRINGS)
def test_a_proj_string_is_never_accepted(text):
    with pytest.raises(ConfigurationError, match="a PROJ string"):
        crslib.resolve(text)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ANY_CRS)
def test_any_crs_flag_ingests_or_exits_2(tmp_path, text):
    """Through the CLI's ingest: accepted (rejects are records), or refused; never a crash."""
    path = tmp_path / "xy.csv"
    if not path.exists():
        _csv(path, "x;y", [(EAST, NORTH)])
    lake = Lake(tmp_path / "lake")
    try:
        report = ingest(path, "xy", lake, crs=text, validate=False)
    except CitypipeError:
        return
    assert report.features + report.rejects == report.records == 1
