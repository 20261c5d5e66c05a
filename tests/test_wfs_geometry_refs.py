"""WFS features whose geometry property is an xlink:href to a geometry elsewhere in the same
response (GML 3.2 allows it; deegree and INSPIRE services write a shared geometry once): the
real MapServer's GML 3.2 page of `parkplaetze`, rewritten so, served by the fault proxy in its
place. A `#id` is the geometry it names (before or after it in the response); a remote href or
an id no geometry has rejects the feature with its reason, nothing fetched; an href of another
property stays its value; references that would bring in far more than the response holds are
refused. Expected shapes are the sample file's."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import requests
from lxml import etree
from servers.facts import FONTS, PARKPLAETZE
from servers.faults import answer
from servers.reading import NS, PARSER
from test_wfs_mapserver import expected, harvested

from citypipe.connectors.base import Query
from citypipe.connectors.gml_xlinks import XlinkBudgetError
from citypipe.connectors.wfs_gml import read_feature_collection
from citypipe.connectors.wfs_gml_refs import GeometryRefs
from citypipe.connectors.wfs_whole import BATCH
from citypipe.core.ingest import ingest

XLINK = "{http://www.w3.org/1999/xlink}href"
REMOTE = "http://example.org/wfs?REQUEST=GetFeature#geometry.7"
NONE = "which no geometry of the response has"
CODE_LIST = "http://inspire.ec.europa.eu/codelist/ParkingKindValue/surface"


def _page(url: str) -> etree._Element:
    """MapServer's whole `parkplaetze` layer as one GML 3.2 page."""
    asked = f"{url}?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=ms:parkplaetze&COUNT=500"
    return etree.fromstring(requests.get(asked, timeout=30).content, PARSER)


def _refer(feature: etree._Element, href: str) -> None:
    """The feature's geometry property, holding `href` instead of its geometry."""
    prop = feature.find(f"{{{NS['ms']}}}msGeometry")
    for child in list(prop):
        prop.remove(child)
    prop.set(XLINK, href)


def test_geometries_given_by_xlink_href_are_read_from_the_response(
    mapserver_wfs, fault_proxy, lake
) -> None:
    root = _page(mapserver_wfs.url)
    gml, ms = NS["gml32"], NS["ms"]
    features = list(root.iter(f"{{{ms}}}parkplaetze"))
    ids = [f.get(f"{{{gml}}}id") for f in features]
    geometry_ids = [f.find(f"{{{ms}}}msGeometry")[0].get(f"{{{gml}}}id") for f in features]
    assert len(set(geometry_ids)) == len(features) == PARKPLAETZE.with_geometry  # the premise
    same_as = {ids[0]: ids[1]}  # forward: the first names the second's polygon
    _refer(features[0], f"#{geometry_ids[1]}")
    for k in range(3, 40, 2):  # backward: every other one names the one before it
        _refer(features[k], f"#{geometry_ids[k - 1]}")
        same_as[ids[k]] = ids[k - 1]
    _refer(features[50], REMOTE)
    _refer(features[51], "#nothing.here")
    kind = etree.SubElement(features[52], f"{{{ms}}}art")
    kind.set(XLINK, CODE_LIST)  # a code list's href: a property's value, never a geometry
    page = etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(answer(page, "text/xml; subtype=gml/3.2"), match="COUNT=", times=0)
    query = Query(layer=PARKPLAETZE.name)
    url = f"{proxy.url}?SERVICE=WFS&VERSION=2.0.0"
    report = ingest(url, "parking", lake, options={"query": query}, validate=False)

    assert report.records == PARKPLAETZE.with_geometry
    rejects = dict(report.reasons)
    assert sum(rejects.values()) == 2
    assert any(f"xlink:href {REMOTE}, outside the response: never fetched" in r for r in rejects)
    assert any(f"xlink:href #nothing.here, {NONE}" in r for r in rejects)
    table = pq.read_table(
        lake.partition("features", "parking"), columns=["source_id", "properties"]
    )
    props = dict(zip(*table.to_pydict().values(), strict=True))
    assert json.loads(props[ids[52]])["art"] == CODE_LIST
    read, want = harvested(lake, "parking"), expected(PARKPLAETZE)
    assert set(read) == set(ids) - {ids[50], ids[51]}
    for sid, shape in read.items():
        assert shape.equals_exact(want[same_as.get(sid, sid)], 1e-7), sid


def test_references_to_geometries_of_earlier_and_later_batches_are_resolved(
    mapserver_wfs, fault_proxy, lake
) -> None:
    """MapServer's WFS 1.1 answer of all 1988 `fonts`, read as it streams in batches of
    `wfs_whole.BATCH` (1000), its points given gml:ids (as deegree writes them): a feature of
    the first batch names a point of the second, one of the second a point of the first, one
    an id no point has; the same in batches of one feature; nothing fetched."""
    asked = f"{mapserver_wfs.url}?SERVICE=WFS&VERSION=1.1.0&REQUEST=GetFeature&TYPENAME=fonts"
    root = etree.fromstring(requests.get(asked, timeout=30).content, PARSER)
    gml, ms = NS["gml"], NS["ms"]
    features = list(root.iter(f"{{{ms}}}fonts"))
    assert len(features) == FONTS.with_geometry > BATCH  # the premise: two batches
    ids = [f.get(f"{{{gml}}}id") for f in features]
    for k, feature in enumerate(features):
        feature.find(f"{{{ms}}}msGeometry")[0].set(f"{{{gml}}}id", f"point.{k}")
    same_as = {ids[5]: ids[1500], ids[1510]: ids[3]}
    for sid, target in same_as.items():
        _refer(features[ids.index(sid)], f"#point.{ids.index(target)}")
    _refer(features[1600], "#point.none")
    page = etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    for batch in (BATCH, 1):
        read = list(read_feature_collection(page, wfs_version="1.1.0", batch_size=batch))
        assert sum(map(len, read)) == len(features)
        errors = [e for b in read for e in b.errors if e]
        assert errors == [f"its geometry is xlink:href #point.none, {NONE}"]
    proxy = fault_proxy(mapserver_wfs.url)
    proxy.inject(answer(page, "text/xml; subtype=gml/3.1.1"), match="TYPENAME=fonts$", times=0)
    url = f"{proxy.url}?SERVICE=WFS&VERSION=1.1.0"
    report = ingest(url, "fonts", lake, options={"query": Query(layer="fonts")}, validate=False)
    assert report.records == len(features) and report.rejects == 1
    read, want = harvested(lake, "fonts"), expected(FONTS)
    assert set(read) == set(ids) - {ids[1600]}
    for sid, shape in read.items():
        assert shape.equals_exact(want[same_as.get(sid, sid)], 1e-7), sid


def test_references_that_bring_in_far_more_than_the_response_holds_are_refused() -> None:
    """One polygon of 400 positions named by 3000 features: 3000 times its coordinates."""
    ring = " ".join(f"{48 + k * 1e-4:.4f} {9 + (k % 2) * 1e-4:.4f}" for k in range(399))
    ring += " 48.0000 9.0000"
    polygon = (
        '<app:g><gml:Polygon gml:id="big" srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior>'
        f"<gml:LinearRing><gml:posList>{ring}</gml:posList></gml:LinearRing></gml:exterior>"
        "</gml:Polygon></app:g>"
    )
    members = [f'<wfs:member><app:T gml:id="t.0">{polygon}</app:T></wfs:member>']
    members += [
        f'<wfs:member><app:T gml:id="t.{k}"><app:g xlink:href="#big"/></app:T></wfs:member>'
        for k in range(1, 3001)
    ]
    data = (
        '<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" '
        'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:app="http://example.org/app" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink">{"".join(members)}</wfs:FeatureCollection>'
    ).encode()
    with pytest.raises(XlinkBudgetError, match="geometry xlink:hrefs bring in"):
        list(read_feature_collection(data, wfs_version="2.0.0"))
    fewer = data.replace(b'<app:g xlink:href="#big"/>', b"", 2990)  # 10 references: fine
    read = [g for b in read_feature_collection(fewer, wfs_version="2.0.0") for g in b.geometries]
    assert sum(g is not None for g in read) == 11


def _batch(start: int, hrefs: list[str]) -> list[etree._Element]:
    """WFS 2.0 features `start`.. with a polygon given a gml:id each, and one property holding
    only an xlink:href each (`hrefs`), as INSPIRE services write code-list values."""
    members = "".join(
        f'<app:T gml:id="t.{start + k}"><app:kind xlink:href="{href}"/><app:g>'
        f'<gml:Polygon gml:id="p.{start + k}"><gml:exterior><gml:LinearRing><gml:posList>'
        "0 0 1 0 1 1 0 0</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></app:g>"
        "</app:T>"
        for k, href in enumerate(hrefs)
    )
    root = etree.fromstring(
        '<wfs:member xmlns:wfs="http://www.opengis.net/wfs/2.0" '
        'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:app="http://example.org/app" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink">{members}</wfs:member>'
    )
    return list(root)


@pytest.mark.parametrize("refers", [False, None])
def test_hrefs_to_other_documents_keep_no_geometry(refers: bool | None) -> None:
    """Every feature naming a code list by href (the common INSPIRE case), in a response whose
    bytes hold no `href="#` (False) or a stream (None): no geometry is kept for references
    past its batch, the hrefs stay values; in the stream, a first `#id` then names a polygon
    of the batch before it."""
    gml_id = f"{{{NS['gml32']}}}id"
    refs = GeometryRefs(gml_id, refers)
    is_polygon = f"{{{NS['gml32']}}}Polygon".__eq__
    for start in range(0, 50, 10):
        features = _batch(start, [CODE_LIST] * 10)
        for k, feature in enumerate(features):
            refs.refer(k, feature[0], CODE_LIST)
        assert [t for _, _, t in refs.resolve(features, is_polygon, False)] == [None] * 10
        assert refs.kept == 0
    if refers is None:
        features = _batch(50, ["#p.45"])
        refs.refer(0, features[0][0], "#p.45")
        ((_, _, found),) = refs.resolve(features, is_polygon, True)
        assert found.get(gml_id) == "p.45"


def test_a_feature_placed_by_one_reference_is_not_held_for_another() -> None:
    """Read in batches of two: t.1's first geometry property names p.0 of its batch, its second
    p.3 of the next batch. Its geometry is p.0's square, handed over with its batch (not held
    to the next, its first reference resolved and charged again); the second stays its href."""
    polygon = (
        '<app:g><gml:Polygon gml:id="p.{0}" srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior>'
        "<gml:LinearRing><gml:posList>0 0 {0}.5 0 {0}.5 {0}.5 0 {0}.5 0 0</gml:posList>"
        "</gml:LinearRing></gml:exterior></gml:Polygon></app:g>"
    )
    features = [
        polygon.format(0),
        '<app:g xlink:href="#p.0"/><app:g xlink:href="#p.3"/>',
        polygon.format(2),
        polygon.format(3),
    ]
    members = "".join(
        f'<wfs:member><app:T gml:id="t.{k}">{body}</app:T></wfs:member>'
        for k, body in enumerate(features)
    )
    data = (
        '<wfs:FeatureCollection xmlns:wfs="http://www.opengis.net/wfs/2.0" '
        'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:app="http://example.org/app" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink">{members}</wfs:FeatureCollection>'
    ).encode()
    first, *_ = read_feature_collection(data, wfs_version="2.0.0", batch_size=2)
    assert first.source_ids == ["t.0", "t.1"]
    assert first.geometries[1].equals(first.geometries[0])
    assert first.properties[1] == {"g": "#p.3"}
