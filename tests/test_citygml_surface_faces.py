"""CityGML's semantic surfaces named as faces of their object's solid (`Solids.surface_faces`).

A lod2Solid lists its faces as xlinks to the polygons of the thematic surfaces; the reader then
says which face each surface is, so the pipeline measures and transforms each polygon once."""

from __future__ import annotations

import re

import pytest
import shapely
from lxml import etree

from citypipe.connectors.citygml import CityGMLConnector
from citypipe.core.ingest import ingest

_XLINK = "{http://www.w3.org/1999/xlink}href"
_GML_ID = re.compile(r"\{http://www\.opengis\.net/gml[^}]*\}id")


def _local(elem) -> str:
    return etree.QName(elem).localname


def _solid_links_and_surface_polygons(path) -> tuple[set[str], set[str]]:
    """From the XML: the polygons the solids list by xlink, and those of the thematic surfaces
    (the Polygons under each boundedBy)."""
    tree = etree.parse(str(path))
    links = {
        e.get(_XLINK).lstrip("#")
        for e in tree.iter(etree.Element)
        if _local(e) == "surfaceMember" and e.get(_XLINK)
    }
    polygons = {
        value
        for bounded in tree.iter(etree.Element)
        if _local(bounded) == "boundedBy"
        for p in bounded.iter(etree.Element)
        if _local(p) == "Polygon"
        for key, value in p.attrib.items()
        if _GML_ID.fullmatch(key)
    }
    return links, polygons


@pytest.mark.parametrize(
    "name",
    [
        "denhaag_1BwBP_citygml1.gml",
        "sig3d_v2_Building_LOD2-EPSG25832.gml",
        "sig3d_v2_Building_and_garage_LOD2-EPSG25832.gml",
    ],
)
def test_each_surface_is_named_as_the_face_of_its_solid_that_is_its_polygon(sample, name):
    path = sample(f"citygml/{name}")
    links, polygons = _solid_links_and_surface_polygons(path)
    assert polygons and polygons <= links  # every surface's polygon is a face of a solid
    for batch in CityGMLConnector(path).read():
        solids = batch.solids
        assert solids is not None and solids.surfaces is not None
        assert solids.surface_faces is not None and solids.faces is not None  # handed on
        for shape, surfaces, faces in zip(
            solids.built().geometry_3d, solids.surfaces, solids.surface_faces, strict=True
        ):
            if not surfaces:
                continue
            named = shapely.get_parts(shape)[faces]
            assert [p.wkb for p in named] == [p.wkb for _, p in surfaces]


def test_a_surface_its_solid_does_not_list_leaves_the_batch_without_faces(sample, tmp_path):
    path = sample("citygml/sig3d_v2_Building_LOD2-EPSG25832.gml")
    links, polygons = _solid_links_and_surface_polygons(path)
    dropped = min(polygons & links)
    text = path.read_text(encoding="utf-8")
    # the solid's surfaceMember that names the polygon goes; the thematic surface stays
    member = re.compile(rf'<gml:surfaceMember xlink:href="#{re.escape(dropped)}"\s*/>')
    assert len(member.findall(text)) == 1
    changed = tmp_path / "unlisted.gml"
    changed.write_text(member.sub("", text), encoding="utf-8")
    (batch,) = CityGMLConnector(changed).read()
    assert batch.solids is not None and batch.solids.surfaces is not None
    assert sum(len(s) for s in batch.solids.surfaces if s) == len(polygons)
    assert batch.solids.surface_faces is None


def test_surfaces_that_are_no_faces_are_measured_and_placed_as_those_that_are(
    sample, tmp_path, lake, read_lake
):
    """The same thematic surfaces, once faces of their solid and once not (a surfaceMember
    dropped, so the batch's surfaces are no faces: each measured and placed from its own
    polygon): the same polygons, so the same areas, tilts, azimuths and CRS84 bytes."""
    path = sample("citygml/sig3d_v2_Building_LOD2-EPSG25832.gml")
    links, polygons = _solid_links_and_surface_polygons(path)
    dropped = min(polygons & links)
    text = path.read_text(encoding="utf-8")
    member = re.compile(rf'<gml:surfaceMember xlink:href="#{re.escape(dropped)}"\s*/>')
    changed = tmp_path / "unlisted.gml"
    changed.write_text(member.sub("", text), encoding="utf-8")
    ingest(path, "faces", lake, validate=False)
    ingest(changed, "polygons", lake, validate=False)
    faces, loose = (read_lake(s, "surfaces") for s in ("faces", "polygons"))
    assert faces.num_rows == loose.num_rows == len(polygons)
    for column in ("surface_type", "area_m2", "tilt_deg", "azimuth_deg", "geometry_3d"):
        assert faces[column].equals(loose[column]), column
