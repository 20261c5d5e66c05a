"""Each source's validation report page: what it states (from the source file, read here with
plain json), that it needs nothing from a network, and what headless Chromium shows of it
offline."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import shapely
from browser import chromium_binary, png_size, screenshot
from conftest import SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

from citypipe.core import preview
from citypipe.core.checks import check_specs
from citypipe.core.ingest import ChecksFailed, ingest
from citypipe.core.lake import Lake
from citypipe.core.report_page import page_path

FOUNTAINS = "barcelona_drinking_fountains.geojson"


def _points(name: str) -> list[list[float]]:
    features = json.loads((SAMPLES / name).read_bytes())["features"]
    return [f["geometry"]["coordinates"] for f in features]


def _fetches(page: str) -> list[str]:
    """Every reference in `page` a browser could fetch: links and sources outside the report
    folder, CSS url(), and any address but the SVG namespace."""
    refs = re.findall(r'(?:src|href)="([^"]*)"', page) + re.findall(r"url\(([^)]*)\)", page)
    outside = [r for r in refs if not re.fullmatch(r"[\w.-]+\.html", r)]
    addresses = set(re.findall(r"\w+://[^\s\"'<>]*", page)) - {"http://www.w3.org/2000/svg"}
    return outside + sorted(addresses)


def test_the_page_states_the_run_and_maps_every_fountain(lake: Lake, sample) -> None:
    points = _points(FOUNTAINS)
    ingest(sample(FOUNTAINS), "fountains", lake)
    page = page_path(lake.docs, "fountains").read_text(encoding="utf-8")
    assert "landed, every check passed" in page
    assert f"<td>features</td><td>{len(points)}</td>" in page
    assert all(f"<code>{spec.name}</code>" in page for spec in check_specs())
    assert page.count("<circle") == len(points) == 1988  # every fountain drawn (under 4000)
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    assert f"lon {min(lons):.5f} .. {max(lons):.5f}, lat {min(lats):.5f} .. {max(lats):.5f}" in page
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page
    assert _fetches(page) == []
    index = (lake.docs / "sources" / "index.html").read_text(encoding="utf-8")
    assert '<a href="fountains.html">' in index


def test_a_refused_run_says_why_and_the_index_keeps_every_source(
    lake: Lake, sample, tmp_path: Path
) -> None:
    ingest(sample(FOUNTAINS), "fountains", lake)
    source = json.loads((SAMPLES / FOUNTAINS).read_bytes())
    source["totalFeatures"] = len(source["features"]) + 5  # the server said 5 more than it sent
    short = tmp_path / "short.geojson"
    short.write_text(json.dumps(source))
    with pytest.raises(ChecksFailed):
        ingest(short, "short", lake)
    page = page_path(lake.docs, "short").read_text(encoding="utf-8")
    assert "refused: a blocking check failed; the previous output is kept" in page
    row = re.search(r"<code>matches_declared_count</code></td><td class=\"(\w+)\">(\w+)<", page)
    assert row is not None and row.groups() == ("fail", "failed")
    assert f"<td>count the source declares</td><td>{len(source['features']) + 5}</td>" in page
    index = (lake.docs / "sources" / "index.html").read_text(encoding="utf-8")
    assert index.count("<li>") == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-179.9, 179.9), st.floats(-89.9, 89.9)), min_size=1, max_size=50)
)
def test_every_shape_is_drawn_inside_the_picture(coords: list[tuple[float, float]]) -> None:
    svg = preview.map_svg(shapely.points(coords))
    assert svg is not None
    width, height = map(float, re.search(r'viewBox="0 0 (\S+) (\S+)"', svg).groups())
    assert width == preview.WIDTH and height <= preview.WIDTH + 18
    xs = [float(x) for x in re.findall(r'cx="([^"]+)"', svg)]
    ys = [float(y) for y in re.findall(r'cy="([^"]+)"', svg)]
    assert len(xs) == len(ys) == len(coords)
    assert all(0 <= x <= width for x in xs) and all(0 <= y <= height for y in ys)


def test_lines_and_collections_are_drawn_too() -> None:
    # a street (TrafficFlowObserved's location is a LineString) once failed the whole ingest
    shapes = shapely.from_wkt(
        [
            "LINESTRING (4.70 41.60, 4.71 41.61)",
            "MULTILINESTRING ((4.70 41.60, 4.72 41.60), (4.70 41.62, 4.72 41.62))",
            "GEOMETRYCOLLECTION (POINT (4.70 41.61), LINESTRING (4.70 41.60, 4.71 41.60))",
            "POLYGON ((4.70 41.60, 4.71 41.60, 4.71 41.61, 4.70 41.60))",
        ]
    )
    svg = preview.map_svg(shapes)
    assert svg is not None
    assert svg.count("<polyline") == 4 and svg.count("<circle") == 1 and "<path" in svg


def test_each_district_is_one_path_inside_the_picture() -> None:
    """Barcelona's 10 districts (polygons and a multipolygon) drawn from their coordinate
    arrays: one path each, every ring closed, every position in the picture."""
    features = json.loads((SAMPLES / "barcelona_districtes.geojson").read_bytes())["features"]
    shapes = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    svg = preview.map_svg(shapes)
    assert svg is not None
    width, height = map(float, re.search(r'viewBox="0 0 (\S+) (\S+)"', svg).groups())
    paths = re.findall(r'<path [^>]* d="([^"]+)"', svg)
    assert len(paths) == len(features) == 10
    parts = sum(
        len(f["geometry"]["coordinates"]) for f in features if "Multi" in f["geometry"]["type"]
    )
    assert sum(p.count("M ") for p in paths) >= parts + sum(
        "Multi" not in f["geometry"]["type"] for f in features
    )
    assert all(p.count("M ") == p.count(" z") for p in paths)
    xy = [tuple(map(float, c.split(","))) for p in paths for c in re.findall(r"[\d.]+,[\d.]+", p)]
    assert all(0 <= x <= width and 0 <= y <= height for x, y in xy)


def test_large_sources_are_drawn_from_an_even_sample(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    lons = [i / 1000 for i in range(10_000)]
    wkb = shapely.to_wkb(shapely.points([(x, 0.0) for x in lons]))
    pq.write_table(pa.table({"geometry": pa.array(wkb, pa.binary())}), tmp_path / "f.parquet")
    drawn = preview.read_geometries(tmp_path / "f.parquet", limit=100)
    assert len(drawn) == 100
    assert shapely.get_x(drawn[0]) == lons[0] and shapely.get_x(drawn[-1]) == lons[-1]


def test_chromium_shows_the_report_and_its_map_offline(lake: Lake, sample, tmp_path: Path) -> None:
    if chromium_binary() is None:
        why = "chromium is not installed: `make setup` as root installs it"
        if os.environ.get("CITYPIPE_REQUIRE_SERVERS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    ingest(sample(FOUNTAINS), "fountains", lake)
    page = page_path(lake.docs, "fountains")
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    shot, empty = screenshot(page, tmp_path / "report.png"), screenshot(blank, tmp_path / "e.png")
    assert png_size(shot) == png_size(empty) == (1000, 1400)
    # a blank page compresses to almost nothing; text, tables and 1988 dots do not
    assert shot.stat().st_size > 20 * empty.stat().st_size


def test_the_pages_are_written_after_the_run_landed_and_their_failure_fails_nothing(
    lake: Lake, sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report pages show the lake: they are written once the run has committed and freed
    the source's lock, and a page that cannot be written leaves the landed run as it is."""
    from citypipe.core import report_page

    seen: list[bool] = []

    def broken(report, docs, blocking):
        seen.append(lake.landed_file("features", report.source).exists())
        seen.append(not any(lake.staging.iterdir()) if lake.staging.exists() else True)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_page, "write", broken)
    report = ingest(sample("jena_parking.geojson"), "jena", lake)
    assert seen == [True, True]  # landed, and nothing staged any more
    expected = len(json.loads((SAMPLES / "jena_parking.geojson").read_bytes())["features"])
    assert report.features == expected == 103
    [(warning, n)] = report.warnings.items()
    assert "validation report could not be written" in warning and "No space" in warning
    assert n == 103
