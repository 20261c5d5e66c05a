"""WFS GetFeature responses made for the tests of tests/test_wfs_gml*.py: a FeatureCollection
as each WFS version writes it, its members, a point property; reading one batch back."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import HealthCheck, settings

from citypipe.connectors.wfs_gml import read_feature_collection

__all__ = [
    "GML2",
    "GML3",
    "SETTINGS",
    "lonlat_bounds",
    "one_batch",
    "point_property",
    "wfs_doc",
    "wfs_member",
]

GML2, GML3 = "http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2"


def wfs_doc(members: str, version: str = "2.0.0", attrs: str = "") -> bytes:
    """A FeatureCollection of `members` as a WFS `version` server writes it."""
    if version == "2.0.0":
        ns = f'xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:gml="{GML3}"'
    else:
        ns = f'xmlns:wfs="http://www.opengis.net/wfs" xmlns:gml="{GML2}"'
        attrs += (
            ' xsi:schemaLocation="http://www.opengis.net/wfs '
            f'http://schemas.opengis.net/wfs/{version}/wfs.xsd"'
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<wfs:FeatureCollection {ns} '
        'xmlns:app="http://example.org/app" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"{attrs}>{members}'
        "</wfs:FeatureCollection>"
    ).encode()


def wfs_member(version: str, body: str, gid: str = "f.1", kind: str = "app:Thing") -> str:
    if version == "1.0.0":
        return f'<gml:featureMember><{kind} fid="{gid}">{body}</{kind}></gml:featureMember>'
    tag = "wfs:member" if version == "2.0.0" else "gml:featureMember"
    return f'<{tag}><{kind} gml:id="{gid}">{body}</{kind}></{tag}>'


def point_property(srs: str, position: str, tag: str = "pos") -> str:
    """A geometry property holding a gml:Point."""
    return (
        f'<app:g><gml:Point srsName="{srs}"><gml:{tag}>{position}</gml:{tag}></gml:Point></app:g>'
    )


def one_batch(data: bytes, **kw):
    batches = list(read_feature_collection(data, **kw))
    assert len(batches) == 1
    return batches[0]


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def lonlat_bounds(table) -> np.ndarray:
    """The total bounds of a lake table's geometries (lon/lat)."""
    geoms = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    return shapely.total_bounds(geoms)
